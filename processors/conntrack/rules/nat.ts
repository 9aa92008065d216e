/**
 * NAT rules: the nat table's `snat to`, `masquerade` and `dnat to`, as they bind a connection on
 * its first packet (nf_nat_setup_info, before confirmation). DNAT rules sit at prerouting and see
 * the packet as it came in; SNAT and MASQUERADE rules sit at postrouting and see it after DNAT
 * (its new destination). In each chain the first matching rule decides. What the binding does
 * with a rule (the reply tuple, the port choice) is in ../nat.ts.
 *
 * ctflow has no interfaces, so a MASQUERADE rule names the address it masquerades to; the
 * kernel then treats it as SNAT to that one address (nf_nat_masquerade_ipv4 builds the same
 * range). `persistent` only matters for address ranges, which ctflow does not take: a rule
 * translates to one address.
 */
import { isIP } from 'node:net';
import { ipv6Groups, parsePort, parsePrefix, parseProto } from './match';
import type { PacketMatch } from './match';
import { describeMatch } from './match';

export type NatKind = 'snat' | 'masquerade' | 'dnat';

export interface NatRule {
  kind: NatKind;
  match: PacketMatch;
  /** The family the rule's table belongs to (ip or ip6 nat): the family of `toAddr`. */
  family: 4 | 6;
  /** The address the source (snat, masquerade) or destination (dnat) becomes, in the decoder's text form. */
  toAddr: string;
  /**
   * The ports the translated port must lie in (the kernel's NF_NAT_RANGE_PROTO_SPECIFIED). Absent:
   * SNAT keeps the source port when it can, else picks one in its class; DNAT keeps the port.
   */
  toPorts?: { min: number; max: number };
}

/** Whether the rule rewrites the source (postrouting) rather than the destination (prerouting). */
export const isSourceNat = (r: NatRule): boolean => r.kind !== 'dnat';

/** An address in the text form the packet decoder gives (RFC 5952 for IPv6), so tuples compare as text. */
export function canonicalAddress(text: string): { family: 4 | 6; text: string } {
  const family = isIP(text);
  if (family === 4) return { family: 4, text: text.split('.').map(Number).join('.') };
  if (family !== 6) throw new Error(`'${text}' is not an IP address`);
  const g = ipv6Groups(text);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (bestLen < 2) return { family: 6, text: g.map((x) => x.toString(16)).join(':') };
  // inet_ntop's dotted tail for IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
    const quad = `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
    return { family: 6, text: bestLen === 6 ? `::${quad}` : `::ffff:${quad}` };
  }
  const head = g.slice(0, best).map((x) => x.toString(16)).join(':');
  const tail = g.slice(best + bestLen).map((x) => x.toString(16)).join(':');
  return { family: 6, text: `${head}::${tail}` };
}

const NAT_SYNTAX = 'snat:SRC_CIDR->ADDR, masquerade:SRC_CIDR->ADDR or dnat:PROTO/ADDR:PORT->ADDR:PORT';

/**
 * A command-line NAT rule, in the oracle's syntax (IPv4 only, as the oracle's `ip` nat table):
 * `snat:SRC_CIDR->ADDR`, `masquerade:SRC_CIDR->ADDR`, `dnat:PROTO/ADDR:PORT->ADDR:PORT`.
 */
export function parseNat(text: string): NatRule {
  const m = /^(snat|masquerade|dnat):(.+)->(.+)$/.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not KIND:MATCH->TO (${NAT_SYNTAX})`);
  const [, kind, from, to] = m;
  if (kind === 'dnat') {
    const d = /^([A-Za-z0-9]+)\/([\d.]+):(\d+)$/.exec(from);
    const t = /^([\d.]+):(\d+)$/.exec(to);
    if (!d || !t) throw new Error(`'${text}': a DNAT rule is dnat:PROTO/ADDR:PORT->ADDR:PORT (IPv4), such as dnat:tcp/198.18.100.1:80->198.18.0.2:8080`);
    const dst = parsePrefix(d[2]);
    const toAddr = canonicalAddress(t[1]);
    if (dst.family !== 4 || dst.bits !== 32 || toAddr.family !== 4) throw new Error(`'${text}': the command line's DNAT takes IPv4 addresses (the config file takes IPv6 too)`);
    const port = parsePort(t[2]);
    return { kind, match: { family: 4, proto: parseProto(d[1]), dst, dport: parsePort(d[3]) }, family: 4, toAddr: toAddr.text, toPorts: { min: port, max: port } };
  }
  const src = parsePrefix(from);
  const toAddr = canonicalAddress(to);
  if (src.family !== 4 || toAddr.family !== 4) throw new Error(`'${text}': the command line's ${kind.toUpperCase()} takes IPv4 (the config file takes IPv6 too)`);
  return { kind: kind as NatKind, match: { family: 4, src }, family: 4, toAddr: toAddr.text };
}

export function describeNat(r: NatRule): string {
  const ports = r.toPorts ? (r.toPorts.min === r.toPorts.max ? `:${r.toPorts.min}` : `:${r.toPorts.min}-${r.toPorts.max}`) : '';
  const to = r.family === 6 && ports ? `[${r.toAddr}]${ports}` : `${r.toAddr}${ports}`;
  return `${describeMatch(r.match)} ${r.kind === 'dnat' ? 'dnat to' : r.kind === 'snat' ? 'snat to' : 'masquerade to'} ${to}`;
}
