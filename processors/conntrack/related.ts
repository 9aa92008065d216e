/**
 * ICMP and ICMPv6 errors (nf_conntrack_icmpv4_error / icmpv6_error and nf_conntrack_inet_error):
 * an error quoting a tracked flow is RELATED to it, in that flow's direction; one quoting nothing
 * we track is INVALID. IPv6 neighbour discovery and MLD are never tracked (UNTRACKED). Returns
 * null for messages that are not errors, which then go through the ICMP tracker.
 */
import type { IcmpHeader, IpPacket } from '../packet';
import { IPPROTO } from '../packet';
import type { CtState, Direction } from '../flow';
import type { Conn } from './conn';
import { invertPorts, tuplePorts } from './tuple';

export interface RelatedVerdict {
  ctstate: CtState;
  dir: Direction | null;
  reason?: string;
  flowId?: number;
  state?: string;
}

interface Lookup {
  find(zone: number, proto: number, family: 4 | 6, src: string, dst: string, ports: number): { conn: Conn; dir: 0 | 1 } | undefined;
  stateOf(conn: Conn): string | undefined;
}

/** The highest ICMPv4 type the kernel knows (NR_ICMP_TYPES); above it a message is INVALID. */
const NR_ICMP_TYPES = 18;
const ICMP_ERRORS = new Set([3, 4, 5, 11, 12]);
/** MLD and neighbour discovery: the kernel marks them untracked (noct_valid_new). */
const ICMPV6_UNTRACKED = new Set([130, 131, 132, 133, 134, 135, 136, 143]);

export function relateIcmpError(ip: IpPacket, zone: number, table: Lookup): RelatedVerdict | null {
  const icmp = ip.l4 as IcmpHeader | undefined;
  if (!icmp) return { ctstate: 'INVALID', dir: null, reason: `${ip.proto === IPPROTO.ICMP ? 'icmp' : 'icmpv6'}_short_packet` };
  if (ip.proto === IPPROTO.ICMP) {
    if (icmp.type > NR_ICMP_TYPES) return { ctstate: 'INVALID', dir: null, reason: 'icmp_unknown_type' };
    if (!ICMP_ERRORS.has(icmp.type)) return null;
  } else {
    if (ICMPV6_UNTRACKED.has(icmp.type)) return { ctstate: 'UNTRACKED', dir: null, reason: 'icmpv6_neighbour_discovery' };
    if (icmp.type >= 128) return null;
  }
  const prefix = ip.proto === IPPROTO.ICMP ? 'icmp' : 'icmpv6';
  const inner = icmp.inner;
  const quoted = { sport: 0, dport: 0 };
  const wanted = { sport: 0, dport: 0 };
  if (!inner || !tuplePorts(inner, quoted) || !invertPorts(inner.proto, quoted.sport, quoted.dport, wanted)) {
    return { ctstate: 'INVALID', dir: null, reason: `${prefix}_error_bad_quote` };
  }
  // The quote is the packet as it was sent; the flow it belongs to is found by its inverse.
  const found = table.find(zone, inner.proto, inner.family, inner.dst, inner.src, ((wanted.sport << 16) | wanted.dport) >>> 0);
  if (!found) return { ctstate: 'INVALID', dir: null, reason: `${prefix}_error_unknown_flow` };
  const { conn, dir } = found;
  const expectedDst = dir === 0 ? conn.orig.dst : conn.reply.dst;
  if (expectedDst !== ip.dst) return { ctstate: 'INVALID', dir: null, reason: `${prefix}_error_outer_daddr_mismatch` };
  const v: RelatedVerdict = { ctstate: 'RELATED', dir: dir === 0 ? 'original' : 'reply', flowId: conn.id };
  const state = table.stateOf(conn);
  if (state !== undefined) v.state = state;
  return v;
}
