/**
 * The command line's rule options, parsed in one place for every command that runs the engine:
 * `--notrack RULE` and `--nat RULE` (both repeatable, in the kernel oracle's syntax). Each bad
 * rule stops the command with a message naming the option, the rule and what is wrong.
 */
import type { ConntrackRules } from '../processors/conntrack/rules';
import { parseNat } from '../processors/conntrack/rules/nat';
import { parseNotrack } from '../processors/conntrack/rules/notrack';

export interface RuleOptions {
  notrack?: string[];
  nat?: string[];
}

export const NOTRACK_HELP = "make matching packets UNTRACKED, like the raw table's notrack: PROTO/PORT (either side, e.g. tcp/80) or an nft match such as 'ip saddr 198.18.0.9' (repeatable)";
export const NAT_HELP = 'NAT new connections (IPv4): snat:SRC_CIDR->ADDR, masquerade:SRC_CIDR->ADDR, dnat:PROTO/ADDR:PORT->ADDR:PORT (repeatable)';

export function parseRuleOptions(o: RuleOptions): ConntrackRules {
  const rules: ConntrackRules = {};
  const notrack = o.notrack ?? [];
  const nat = o.nat ?? [];
  if (notrack.length) rules.notrack = notrack.map((text) => withOption('--notrack', () => parseNotrack(text)));
  if (nat.length) rules.nat = nat.map((text) => withOption('--nat', () => parseNat(text)));
  return rules;
}

/** Both kinds together (the config file's and the flags' rules apply side by side). */
export function mergeRules(a: ConntrackRules, b: ConntrackRules): ConntrackRules {
  const out: ConntrackRules = {};
  const notrack = [...(a.notrack ?? []), ...(b.notrack ?? [])];
  const nat = [...(a.nat ?? []), ...(b.nat ?? [])];
  if (notrack.length) out.notrack = notrack;
  if (nat.length) out.nat = nat;
  return out;
}

function withOption<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new Error(`${option}: ${(err as Error).message}`);
  }
}
