/**
 * NOTRACK rules: the raw table's `... notrack` (priority -300, before conntrack at -200). A packet
 * one of them matches never reaches nf_conntrack_in: it gets the untracked template, so its
 * ctstate is UNTRACKED, it creates and updates no entry and it is counted nowhere in
 * `conntrack -S` (ctflow counts it apart, see ConntrackEngine.untracked). Like the raw table, a
 * rule sees the packet after reassembly and only by its own header fields: an ICMP error about
 * an untracked flow is not untracked by a port rule (it is ICMP), and then, finding no flow to
 * relate to, is INVALID.
 */
import type { IpPacket } from '../../packet';
import type { PacketMatch } from './match';
import { describeMatch, matchesPacket, parsePort, parsePrefix, parseProto, parseProtoPort } from './match';

export interface NotrackRule {
  match: PacketMatch;
}

/** The rules as the engine checks them: in order, the first match wins (they all do the same). */
export class NotrackRules {
  constructor(readonly rules: readonly NotrackRule[]) {}

  matches(ip: IpPacket, zone: number): boolean {
    for (const r of this.rules) if (matchesPacket(r.match, ip, zone)) return true;
    return false;
  }

  describe(): string[] {
    return this.rules.map((r) => `notrack ${describeMatch(r.match)}`);
  }
}

/** Transport protocols whose `sport`/`dport` nft understands in a notrack expression. */
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp']);

/**
 * A command-line NOTRACK rule, in either of the oracle's two forms:
 *  - `PROTO/PORT` (`tcp/80`): that port on either side (the oracle adds `dport` and `sport` rules);
 *  - an nft match expression, the subset a notrack rule needs: `ip saddr PREFIX`, `ip daddr`,
 *    `ip6 saddr`/`daddr`, `tcp dport N` (also sport; udp, udplite, sctp, dccp), `meta l4proto P`,
 *    `ip protocol P`, `ip6 nexthdr P`, `meta nfproto ipv4|ipv6`; several are ANDed, as in nft.
 * Throws naming the part that is not understood.
 */
export function parseNotrack(text: string): NotrackRule {
  const t = text.trim();
  if (/^[^\s/]+\/[^\s/]*$/.test(t)) {
    const { proto, port } = parseProtoPort(t);
    return { match: { proto, port } };
  }
  const words = t.split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new Error(`'${text}' is empty: want PROTO/PORT (tcp/80) or an nft match such as 'ip saddr 198.18.0.9'`);
  const m: PacketMatch = {};
  const set = <K extends keyof PacketMatch>(key: K, value: PacketMatch[K], what: string): void => {
    if (m[key] !== undefined && m[key] !== value) throw new Error(`'${text}': ${what} conflicts with an earlier part of the expression`);
    m[key] = value;
  };
  for (let k = 0; k < words.length; k += 3) {
    const [a, b, c] = [words[k], words[k + 1], words[k + 2]];
    if (c === undefined) throw new Error(`'${text}': '${words.slice(k).join(' ')}' is incomplete (want e.g. 'ip saddr 198.18.0.9' or 'tcp dport 80')`);
    const where = `'${a} ${b} ${c}'`;
    if ((a === 'ip' || a === 'ip6') && (b === 'saddr' || b === 'daddr')) {
      const p = parsePrefix(c);
      if (p.family !== (a === 'ip' ? 4 : 6)) throw new Error(`'${text}': ${where}: ${c} is not an ${a === 'ip' ? 'IPv4' : 'IPv6'} prefix`);
      set('family', p.family, where);
      set(b === 'saddr' ? 'src' : 'dst', p, where);
    } else if (PORT_PROTOCOLS.has(a) && (b === 'sport' || b === 'dport')) {
      set('proto', parseProto(a), where);
      set(b, parsePort(c), where);
    } else if ((a === 'meta' && b === 'l4proto') || (a === 'ip' && b === 'protocol') || (a === 'ip6' && b === 'nexthdr')) {
      if (a !== 'meta') set('family', a === 'ip' ? 4 : 6, where);
      set('proto', parseProto(c), where);
    } else if (a === 'meta' && b === 'nfproto' && (c === 'ipv4' || c === 'ipv6')) {
      set('family', c === 'ipv4' ? 4 : 6, where);
    } else {
      throw new Error(`'${text}': ${where} is not a match ctflow knows (ip|ip6 saddr|daddr PREFIX, tcp|udp|udplite|sctp|dccp sport|dport N, meta l4proto P, ip protocol P, ip6 nexthdr P, meta nfproto ipv4|ipv6)`);
    }
  }
  return { match: m };
}
