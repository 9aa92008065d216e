/**
 * Upper-layer headers other than TCP (see tcp.ts). Each decoder reads [start, end), the
 * captured part of the IP payload, and returns the header or a reason string when even the
 * fields conntrack needs are missing. Quoted headers (inside ICMP errors) need less: the
 * kernel reads only the first 8 bytes of a quoted transport header.
 */
import {
  IPPROTO,
  type GreHeader,
  type IcmpHeader,
  type IpPacket,
  type L4Header,
  type SctpChunk,
} from '../../processors/packet';
import { u16, u32 } from './bytes';
import { decodeTcp } from './tcp';

/** Decodes a quoted IP packet (ICMP error body) as far as it goes; undefined if unusable. */
export type InnerDecoder = (d: Uint8Array, start: number, end: number) => IpPacket | undefined;

/** Error types, whose body quotes the packet they are about (exported for peek.ts). */
export const ICMP_ERROR_TYPES: ReadonlySet<number> = new Set([3, 4, 5, 11, 12]);
/** Echo, timestamp, information and address-mask requests/replies carry an id and sequence. */
const ICMP_QUERY_TYPES = new Set([0, 8, 13, 14, 15, 16, 17, 18]);
export const ICMPV6_ERROR_TYPES: ReadonlySet<number> = new Set([1, 2, 3, 4]);
const ICMPV6_QUERY_TYPES = new Set([128, 129]);
const SCTP_INIT = 1;
const SCTP_INIT_ACK = 2;
const GRE_CSUM = 0x8000;
const GRE_ROUTING = 0x4000;
const GRE_KEY = 0x2000;

const short = (what: string, have: number, need: number) => `truncated ${what} header: ${Math.max(0, have)} of ${need} bytes`;

function decodeUdp(d: Uint8Array, start: number, end: number, lite: boolean): L4Header | string {
  const kind = lite ? 'udplite' : 'udp';
  if (end - start < 8) return short(kind, end - start, 8);
  const length = u16(d, start + 4);
  // UDP's own length can be shorter than the IP payload (padding); UDP-Lite's field is the
  // checksum coverage instead, so its payload always runs to the end of the IP packet.
  const payloadEnd = !lite && length >= 8 && start + length < end ? start + length : end;
  return { kind, sport: u16(d, start), dport: u16(d, start + 2), length, payload: d.subarray(start + 8, payloadEnd) };
}

function decodeIcmp(d: Uint8Array, start: number, end: number, v6: boolean, inner?: InnerDecoder): IcmpHeader | string {
  const kind = v6 ? 'icmpv6' : 'icmp';
  if (end - start < 8) return short(kind, end - start, 8);
  const type = d[start];
  const isQuery = (v6 ? ICMPV6_QUERY_TYPES : ICMP_QUERY_TYPES).has(type);
  const header: IcmpHeader = {
    kind,
    type,
    code: d[start + 1],
    id: isQuery ? u16(d, start + 4) : 0,
    seq: isQuery ? u16(d, start + 6) : 0,
  };
  if (inner && (v6 ? ICMPV6_ERROR_TYPES : ICMP_ERROR_TYPES).has(type)) {
    const quoted = inner(d, start + 8, end);
    if (quoted) header.inner = quoted;
  }
  return header;
}

function decodeSctp(d: Uint8Array, start: number, end: number, quoted: boolean): L4Header | string {
  // Ports and verification tag are what conntrack keys on; the checksum completes the 12 bytes.
  const need = quoted ? 8 : 12;
  if (end - start < need) return short('sctp', end - start, need);
  const chunks: SctpChunk[] = [];
  // Chunks are read while whole chunk headers are captured. A zero length is kept (the kernel
  // calls that packet invalid, which is the engine's decision) and ends the walk; lengths 1-3
  // advance by 4 as the kernel's walk does. INIT's tag counts only with its whole 16-byte header.
  for (let o = start + 12; o + 4 <= end; ) {
    const length = u16(d, o + 2);
    const chunk: SctpChunk = { type: d[o], flags: d[o + 1], length };
    if ((chunk.type === SCTP_INIT || chunk.type === SCTP_INIT_ACK) && o + 20 <= end) chunk.initTag = u32(d, o + 4);
    chunks.push(chunk);
    if (length === 0) break;
    o += (length + 3) & ~3;
  }
  return { kind: 'sctp', sport: u16(d, start), dport: u16(d, start + 2), vtag: u32(d, start + 4), chunks };
}

function decodeGre(d: Uint8Array, start: number, end: number, quoted: boolean): GreHeader | string {
  if (end - start < 4) return short('gre', end - start, 4);
  const flags = u16(d, start);
  const gre: GreHeader = { kind: 'gre', version: flags & 0x7, protocolType: u16(d, start + 2) };
  if (!(flags & GRE_KEY)) return gre;
  // GREv1 (PPTP, RFC 2637): the key field is payload length (16 bits) then call id (16 bits).
  // GREv0 (RFC 2890): the 32-bit key follows the checksum/offset word when C or R is set.
  const keyAt = gre.version === 1 ? start + 6 : start + (flags & (GRE_CSUM | GRE_ROUTING) ? 8 : 4);
  const keyLen = gre.version === 1 ? 2 : 4;
  if (keyAt + keyLen > end) return quoted ? gre : short('gre', end - start, keyAt + keyLen - start);
  gre.key = gre.version === 1 ? u16(d, keyAt) : u32(d, keyAt);
  return gre;
}

function decodeDccp(d: Uint8Array, start: number, end: number, quoted: boolean): L4Header | string {
  // The generic header is 12 bytes, or 16 with extended sequence numbers (X bit); the type
  // sits in bits 1-4 of byte 8.
  const avail = end - start;
  if (quoted && avail >= 8) {
    return { kind: 'dccp', sport: u16(d, start), dport: u16(d, start + 2), type: avail > 8 ? (d[start + 8] >> 1) & 0x0f : 0 };
  }
  if (avail < 12) return short('dccp', avail, 12);
  const need = d[start + 8] & 1 ? 16 : 12;
  if (avail < need) return short('dccp', avail, need);
  return { kind: 'dccp', sport: u16(d, start), dport: u16(d, start + 2), type: (d[start + 8] >> 1) & 0x0f };
}

/**
 * Decodes the upper-layer header of protocol `proto` at [start, end). `segmentLength` is the
 * upper-layer length the IP header claims. `inner` decodes ICMP error quotes; it is absent when
 * decoding a quote itself, so quotes are followed one level deep only (as the kernel does).
 */
export function decodeL4(
  proto: number,
  d: Uint8Array,
  start: number,
  end: number,
  segmentLength: number,
  quoted: boolean,
  inner?: InnerDecoder,
): L4Header | string {
  switch (proto) {
    case IPPROTO.TCP:
      return decodeTcp(d, start, end, segmentLength, quoted);
    case IPPROTO.UDP:
      return decodeUdp(d, start, end, false);
    case IPPROTO.UDPLITE:
      return decodeUdp(d, start, end, true);
    case IPPROTO.ICMP:
      return decodeIcmp(d, start, end, false, inner);
    case IPPROTO.ICMPV6:
      return decodeIcmp(d, start, end, true, inner);
    case IPPROTO.SCTP:
      return decodeSctp(d, start, end, quoted);
    case IPPROTO.GRE:
      return decodeGre(d, start, end, quoted);
    case IPPROTO.DCCP:
      return decodeDccp(d, start, end, quoted);
    default:
      return { kind: 'generic' };
  }
}
