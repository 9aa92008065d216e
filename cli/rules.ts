/**
 * The command line's rule options, parsed in one place for every command that runs the engine:
 * `--notrack RULE` and `--nat RULE` (both repeatable, in the kernel oracle's syntax). Each bad
 * rule stops the command with a message naming the option, the rule and what is wrong. The
 * config file's richer rules (engine.rules, see docs/config.md) are turned into the same rules
 * here, each error naming the rule by its index.
 */
import type { ConntrackRules } from '../processors/conntrack/rules';
import type { PacketMatch } from '../processors/conntrack/rules/match';
import { parsePort, parsePrefix, parseProto } from '../processors/conntrack/rules/match';
import { canonicalAddress, parseNat } from '../processors/conntrack/rules/nat';
import type { NatKind, NatRule } from '../processors/conntrack/rules/nat';
import { parseNotrack } from '../processors/conntrack/rules/notrack';
import { parseHelperOption } from './helperOptions';

export interface RuleOptions {
  notrack?: string[];
  nat?: string[];
  /** `--helper NAME:PROTO/PORT` (cli/helperOptions.ts). */
  helper?: string[];
}

export const NOTRACK_HELP = "make matching packets UNTRACKED, like the raw table's notrack: PROTO/PORT (either side, e.g. tcp/80) or an nft match such as 'ip saddr 198.18.0.9' (repeatable)";
export const NAT_HELP = 'NAT new connections (IPv4): snat:SRC_CIDR->ADDR, masquerade:SRC_CIDR->ADDR, dnat:PROTO/ADDR:PORT->ADDR:PORT (repeatable)';

export function parseRuleOptions(o: RuleOptions): ConntrackRules {
  const rules: ConntrackRules = {};
  const notrack = o.notrack ?? [];
  const nat = o.nat ?? [];
  if (notrack.length) rules.notrack = notrack.map((text) => withOption('--notrack', () => parseNotrack(text)));
  if (nat.length) rules.nat = nat.map((text) => withOption('--nat', () => parseNat(text)));
  if (o.helper?.length) rules.helpers = o.helper.map(parseHelperOption); // its errors name --helper already
  return rules;
}

/** Both sets together: `a`'s rules, then `b`'s (the config file's, then the flags'). */
export function mergeRules(a: ConntrackRules, b: ConntrackRules): ConntrackRules {
  const out: ConntrackRules = {};
  const notrack = [...(a.notrack ?? []), ...(b.notrack ?? [])];
  const nat = [...(a.nat ?? []), ...(b.nat ?? [])];
  const helpers = [...(a.helpers ?? []), ...(b.helpers ?? [])];
  if (notrack.length) out.notrack = notrack;
  if (nat.length) out.nat = nat;
  if (helpers.length) out.helpers = helpers;
  return out;
}

function withOption<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new Error(`${option}: ${(err as Error).message}`);
  }
}

/** A rule's match as the config file writes it (engine.rules.notrack[i], engine.rules.nat[i]). */
export interface MatchConfig {
  proto?: string | number;
  family?: 'ipv4' | 'ipv6';
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  port?: number;
  zone?: number;
}

export interface NatConfig extends MatchConfig {
  kind: NatKind;
  /** The address the source (snat, masquerade) or destination (dnat) becomes. */
  to: string;
  /** The translated port: one (8080) or a range ('1024-2047'). */
  toPort?: number | string;
}

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp'].map((p) => parseProto(p)));

/** The rules of the config file; every error names the rule (`engine.rules.nat[1]`) and the problem. */
export function rulesFromConfig(c: { notrack?: MatchConfig[]; nat?: NatConfig[] }): ConntrackRules {
  const rules: ConntrackRules = {};
  if (c.notrack?.length) rules.notrack = c.notrack.map((r, i) => withOption(`engine.rules.notrack[${i}]`, () => ({ match: matchFromConfig(r) })));
  if (c.nat?.length) rules.nat = c.nat.map((r, i) => withOption(`engine.rules.nat[${i}]`, () => natFromConfig(r)));
  return rules;
}

function matchFromConfig(r: MatchConfig): PacketMatch {
  const m: PacketMatch = {};
  if (r.family !== undefined) m.family = r.family === 'ipv4' ? 4 : 6;
  if (r.proto !== undefined) m.proto = parseProto(String(r.proto));
  for (const side of ['src', 'dst'] as const) {
    const text = r[side];
    if (text === undefined) continue;
    const p = parsePrefix(text);
    if (m.family !== undefined && p.family !== m.family) throw new Error(`${side} ${text} is not an ${m.family === 4 ? 'IPv4' : 'IPv6'} prefix (family ${r.family})`);
    m.family = p.family;
    m[side] = p;
  }
  for (const key of ['sport', 'dport', 'port'] as const) {
    const v = r[key];
    if (v === undefined) continue;
    if (m.proto === undefined || !PORT_PROTOCOLS.has(m.proto)) throw new Error(`${key} needs proto tcp, udp, udplite, sctp or dccp (ports belong to a protocol, as in nft)`);
    m[key] = parsePort(String(v));
  }
  if (r.zone !== undefined) {
    if (!Number.isInteger(r.zone) || r.zone < 0 || r.zone > 65535) throw new Error(`zone ${r.zone} is not a conntrack zone (0-65535)`);
    m.zone = r.zone;
  }
  return m;
}

function natFromConfig(r: NatConfig): NatRule {
  const { kind, to, toPort, ...matchPart } = r;
  const match = matchFromConfig(matchPart);
  const addr = canonicalAddress(to);
  if (match.family !== undefined && match.family !== addr.family) throw new Error(`to ${to} is not of the family the rule matches (IPv${match.family})`);
  match.family = addr.family;
  const rule: NatRule = { kind, match, family: addr.family, toAddr: addr.text };
  if (toPort !== undefined) {
    if (match.proto === undefined || !PORT_PROTOCOLS.has(match.proto)) throw new Error('toPort needs proto tcp, udp, udplite, sctp or dccp');
    const range = /^(\d+)(?:-(\d+))?$/.exec(String(toPort));
    if (!range) throw new Error(`toPort '${toPort}' is not a port or a range such as 1024-2047`);
    const min = parsePort(range[1]);
    const max = range[2] === undefined ? min : parsePort(range[2]);
    if (max < min) throw new Error(`toPort '${toPort}': the range ends before it starts`);
    rule.toPorts = { min, max };
  }
  return rule;
}
