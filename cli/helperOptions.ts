/**
 * `--helper NAME:PROTO/PORT` (repeatable), the command line's `ct helper set`: new connections
 * of PROTO to PORT get helper NAME, as the kernel oracle's `--helper` (and its
 * `--ftp-helper-port N`, which is `--helper ftp:tcp/N`) assign one. The configuration file's
 * richer form (engine.rules.helpers) is checked here too, so both give the same errors.
 */
import { HELPERS } from '../processors/conntrack/helpers';
import type { HelperName, HelperRule } from '../processors/conntrack/helpers';
import type { PacketMatch } from '../processors/conntrack/rules/match';
import { PROTO_NUMBERS, parsePort, parsePrefix, parseProto, parseProtoPort } from '../processors/conntrack/rules/match';

const NAMES = Object.keys(HELPERS) as HelperName[];

const protoNameOf = (proto: number): string => Object.keys(PROTO_NUMBERS).find((k) => PROTO_NUMBERS[k] === proto) ?? `protocol ${proto}`;

function helperNamed(text: string, where: string): HelperName {
  if (!(NAMES as string[]).includes(text)) throw new Error(`${where}: unknown helper '${text}' (ctflow has ${NAMES.join(', ')})`);
  return text as HelperName;
}

/** The kernel registers each helper for one protocol; a rule for another could never apply. */
function checkProto(helper: HelperName, proto: number, where: string): void {
  const wanted = HELPERS[helper].proto;
  if (proto !== wanted) throw new Error(`${where}: the ${helper} helper tracks ${protoNameOf(wanted)}, not ${protoNameOf(proto)}`);
}

/** One `--helper` value: `ftp:tcp/21`, `tftp:udp/69`. */
export function parseHelperOption(text: string): HelperRule {
  const where = `--helper ${text}`;
  const colon = text.indexOf(':');
  if (colon < 0) throw new Error(`${where}: expected NAME:PROTO/PORT, such as ftp:tcp/21 or tftp:udp/69`);
  const helper = helperNamed(text.slice(0, colon), where);
  let proto: number, port: number;
  try {
    ({ proto, port } = parseProtoPort(text.slice(colon + 1)));
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  checkProto(helper, proto, where);
  return { helper, match: { proto, dport: port }, name: where };
}

/** A helper rule of the configuration file, as zod has checked its shape. */
export interface HelperRuleConfig {
  helper: string;
  proto?: string;
  dport?: number;
  sport?: number;
  src?: string;
  dst?: string;
  zone?: number;
  family?: 'ipv4' | 'ipv6';
}

/** engine.rules.helpers[i] to a rule; errors name the rule and the problem. */
export function helperRuleOfConfig(r: HelperRuleConfig, index: number): HelperRule {
  const where = `engine.rules.helpers[${index}]`;
  const helper = helperNamed(r.helper, where);
  const match: PacketMatch = {};
  try {
    match.proto = r.proto === undefined ? HELPERS[helper].proto : parseProto(r.proto);
    if (r.dport !== undefined) match.dport = parsePort(String(r.dport));
    if (r.sport !== undefined) match.sport = parsePort(String(r.sport));
    if (r.src !== undefined) match.src = parsePrefix(r.src);
    if (r.dst !== undefined) match.dst = parsePrefix(r.dst);
  } catch (err) {
    throw new Error(`${where} (${r.helper}): ${(err as Error).message}`);
  }
  checkProto(helper, match.proto, `${where} (${r.helper})`);
  if (r.zone !== undefined) match.zone = r.zone;
  if (r.family !== undefined) match.family = r.family === 'ipv4' ? 4 : 6;
  for (const [key, p] of [['src', match.src], ['dst', match.dst]] as const) {
    if (p && match.family !== undefined && p.family !== match.family) throw new Error(`${where} (${r.helper}): ${key} ${p.text} is not ${r.family}`);
  }
  if (match.src && match.dst && match.src.family !== match.dst.family) throw new Error(`${where} (${r.helper}): src and dst are of different address families`);
  return { helper, match, name: where };
}

