/**
 * Tuples as the kernel builds them (nf_ct_get_tuple / nf_ct_invert_tuple), in the packed form the
 * table keys on: ports, or ICMP id and type<<8|code; GRE carries the PPTP call id. Also the shard key.
 */
import type { IpPacket } from '../packet';
import { IPPROTO } from '../packet';

/** ICMP query types and their answers (the kernel's invmap); anything else cannot start an entry. */
const ICMP_INVERSE: Readonly<Record<number, number>> = { 8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17 };
const ICMPV6_INVERSE: Readonly<Record<number, number>> = { 128: 129, 129: 128, 139: 140, 140: 139 };

function isPortProtocol(proto: number): boolean {
  return (
    proto === IPPROTO.TCP ||
    proto === IPPROTO.UDP ||
    proto === IPPROTO.UDPLITE ||
    proto === IPPROTO.SCTP ||
    proto === IPPROTO.ICMP ||
    proto === IPPROTO.ICMPV6 ||
    proto === IPPROTO.GRE
  );
}

/** The ports (or ICMP id and type<<8|code) of a packet's tuple, without allocating; false when the header is missing. */
export function tuplePorts(ip: IpPacket, out: { sport: number; dport: number }): boolean {
  const l4 = ip.l4;
  switch (l4?.kind) {
    case 'tcp':
    case 'udp':
    case 'udplite':
    case 'sctp':
      out.sport = l4.sport;
      out.dport = l4.dport;
      return true;
    case 'icmp':
    case 'icmpv6':
      out.sport = l4.id;
      out.dport = (l4.type << 8) | l4.code;
      return true;
    case 'gre':
      out.sport = 0;
      out.dport = l4.version === 1 ? (l4.key ?? 0) & 0xffff : 0;
      return true;
    case 'dccp':
    case 'generic':
      out.sport = out.dport = 0;
      return true;
    default:
      out.sport = out.dport = 0;
      return !isPortProtocol(ip.proto);
  }
}

/** The reply side's ports for an original tuple's ports (ICMP: the answer's type), or false when it cannot be inverted. */
export function invertPorts(proto: number, sport: number, dport: number, out: { sport: number; dport: number }): boolean {
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    const table = proto === IPPROTO.ICMPV6 ? ICMPV6_INVERSE : ICMP_INVERSE;
    const type = table[dport >> 8];
    if (type === undefined) return false;
    out.sport = sport;
    out.dport = (type << 8) | (dport & 0xff);
    return true;
  }
  out.sport = dport;
  out.dport = sport;
  return true;
}

/**
 * The shard / partition key: zone plus the unordered address pair, so both directions of a
 * flow and the ICMP errors quoting it (by their inner addresses) land in the same shard.
 */
export function flowHash(zone: number, a: string, b: string): number {
  const lo = a < b ? a : b;
  const hi = a < b ? b : a;
  // FNV-1a over `${lo}|${hi}`, read from the two strings in place: a concatenation is a rope whose
  // charCodeAt goes through the runtime, and every capture packet is hashed once per worker.
  let h = fnv((0x811c9dc5 ^ zone) >>> 0, lo);
  h = Math.imul(h ^ 0x7c, 0x01000193) >>> 0;
  return fnv(h, hi);
}

function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
