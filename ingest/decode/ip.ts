/**
 * IPv4 and IPv6 headers, the IPv6 extension-header chain, and the hand-off to the upper layer.
 * Lengths come from the IP header (what conntrack counts), never from the captured length;
 * the captured length only limits what can be read. `bytes` is the captured IP packet without
 * link-layer trailers (Ethernet padding, FCS), i.e. cut at the IP length when the capture is longer.
 */
import type { FragmentInfo, IpPacket, L4Header } from '../../processors/packet';
import { dottedQuad } from '../../processors/packet';
import { ipv6Text } from './address';
import { u16, u32 } from './bytes';
import { decodeL4, type InnerDecoder } from './l4';

export type IpResult = { kind: 'ip'; packet: IpPacket } | { kind: 'malformed'; reason: string };

const EXT_HOP_BY_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_AH = 51;
const EXT_DEST_OPTS = 60;

const malformed = (reason: string): IpResult => ({ kind: 'malformed', reason });

/** Decodes a quote inside an ICMP error: tolerant of cuts, and not followed further. */
const decodeQuoted: InnerDecoder = (d, start, end) => {
  const r = decodeIp(d, start, end, undefined, true);
  return r.kind === 'ip' ? r.packet : undefined;
};

/**
 * Fills in the upper layer. A header that is cut short makes the packet malformed, except in
 * a quote or a fragment: a quote is cut by design, and a first fragment may legally split the
 * header (the engine sees it whole after reassembly), so those just go without `l4`.
 */
function withL4(
  packet: IpPacket,
  d: Uint8Array,
  start: number,
  end: number,
  segmentLength: number,
  quoted: boolean,
): IpResult {
  const l4: L4Header | string = decodeL4(packet.proto, d, start, end, segmentLength, quoted, quoted ? undefined : decodeQuoted);
  // A broken upper-layer header is still an IP packet the kernel judges (INVALID, e.g. tcp_error's
  // "truncated packet"), so it keeps its place in the numbering and carries the reason.
  if (typeof l4 !== 'string') packet.l4 = l4;
  else if (!quoted && !packet.fragment) packet.l4Error = l4;
  return { kind: 'ip', packet };
}

function decodeIpv4(d: Uint8Array, off: number, end: number, quoted: boolean): IpResult {
  const avail = end - off;
  if (avail < 20) return malformed(`truncated ipv4 header: ${avail} of 20 bytes`);
  const headerLength = (d[off] & 0x0f) * 4;
  if (headerLength < 20) return malformed(`bad ipv4 header length ${headerLength} bytes (ihl ${headerLength / 4})`);
  if (avail < headerLength) return malformed(`truncated ipv4 header: ${avail} of ${headerLength} bytes`);
  const totalLength = u16(d, off + 2);
  if (totalLength < headerLength) return malformed(`bad ipv4 total length ${totalLength} < header ${headerLength}`);

  const ipEnd = Math.min(end, off + totalLength);
  const fragField = u16(d, off + 6);
  const moreFragments = (fragField & 0x2000) !== 0;
  const fragOffset = (fragField & 0x1fff) * 8;
  const src4 = u32(d, off + 12);
  const dst4 = u32(d, off + 16);
  // Every field in the literal, absent ones undefined: one object shape, no property store
  // growing it later, so the engine's loads stay monomorphic (JSON and toEqual ignore undefined).
  const packet: IpPacket = {
    family: 4,
    src: dottedQuad(src4),
    dst: dottedQuad(dst4),
    src4,
    dst4,
    proto: d[off + 9],
    length: totalLength,
    ttl: d[off + 8],
    bytes: d.subarray(off, ipEnd),
    l4Offset: headerLength,
    fragment: undefined,
    l4: undefined,
    l4Error: undefined,
  };
  if (moreFragments || fragOffset !== 0) packet.fragment = { id: u16(d, off + 4), offset: fragOffset, moreFragments };
  // Only the first fragment carries the upper-layer header.
  if (fragOffset !== 0) return { kind: 'ip', packet };
  return withL4(packet, d, off + headerLength, ipEnd, totalLength - headerLength, quoted);
}

function decodeIpv6(d: Uint8Array, off: number, end: number, quoted: boolean): IpResult {
  const avail = end - off;
  if (avail < 40) return malformed(`truncated ipv6 header: ${avail} of 40 bytes`);
  const length = 40 + u16(d, off + 4);
  const claimedEnd = off + length;
  const ipEnd = Math.min(end, claimedEnd);
  const packet: IpPacket = {
    family: 6,
    src: ipv6Text(d, off + 8),
    dst: ipv6Text(d, off + 24),
    proto: d[off + 6],
    length,
    ttl: d[off + 7],
    bytes: d.subarray(off, ipEnd),
  };

  const chain = walkIpv6Chain(d, off + 40, ipEnd, claimedEnd, packet.proto);
  packet.proto = chain.proto;
  packet.fragment = chain.fragment;
  // A quote may stop anywhere: keep what was read. Elsewhere the chain must be whole.
  if (chain.end === 'truncated') return quoted ? { kind: 'ip', packet } : malformed(chain.reason!);
  if (chain.end === 'bad') return malformed(chain.reason!);
  if (chain.end === 'fragment') return { kind: 'ip', packet };
  const p = chain.offset;
  packet.l4Offset = p - off;
  return withL4(packet, d, p, ipEnd, claimedEnd - p, quoted);
}

/** Where the IPv6 extension chain ends: at the upper layer, inside a later fragment, or broken. */
export interface Ipv6ChainEnd {
  end: 'upper' | 'fragment' | 'truncated' | 'bad';
  /** The last Next Header read: the upper-layer protocol when `end` is 'upper'. */
  proto: number;
  /** The upper layer's offset in the frame ('upper' only). */
  offset: number;
  fragment: FragmentInfo | undefined;
  /** What is wrong ('truncated' and 'bad'). */
  reason: string | undefined;
}

/**
 * Walks the extension headers the kernel's ipv6_skip_exthdr() walks, from `p` (just past the
 * fixed header) with `proto` its Next Header; anything else (including Mobility, 135, and No Next
 * Header, 59) is the upper-layer protocol. A fragment other than the first ends the walk: only
 * the first carries the upper layer. Shared by the decoder and the capture workers' light pass
 * (peek.ts), so the two cannot disagree on where a chain ends.
 */
export function walkIpv6Chain(d: Uint8Array, p: number, ipEnd: number, claimedEnd: number, proto: number): Ipv6ChainEnd {
  let fragment: FragmentInfo | undefined;
  for (;;) {
    const nh = proto;
    if (nh !== EXT_HOP_BY_HOP && nh !== EXT_ROUTING && nh !== EXT_DEST_OPTS && nh !== EXT_AH && nh !== EXT_FRAGMENT) break;
    const need = nh === EXT_FRAGMENT ? 8 : 2;
    if (ipEnd - p < need) {
      const reason = `truncated ipv6 extension header ${nh}: ${Math.max(0, ipEnd - p)} of ${need} bytes`;
      return { end: 'truncated', proto, offset: p, fragment, reason };
    }
    let extLength: number;
    if (nh === EXT_FRAGMENT) {
      const field = u16(d, p + 2);
      const frag: FragmentInfo = { id: u32(d, p + 4), offset: field & 0xfff8, moreFragments: (field & 1) !== 0 };
      // An "atomic" fragment header (offset 0, no more fragments) is no fragment (RFC 6946).
      if (frag.offset !== 0 || frag.moreFragments) fragment = frag;
      extLength = 8;
    } else {
      extLength = nh === EXT_AH ? (d[p + 1] + 2) * 4 : (d[p + 1] + 1) * 8;
    }
    proto = d[p];
    p += extLength;
    if (p > claimedEnd) return { end: 'bad', proto, offset: p, fragment, reason: `bad ipv6 extension header ${nh} length ${extLength}: beyond packet end` };
    if (fragment && fragment.offset !== 0) return { end: 'fragment', proto, offset: p, fragment, reason: undefined };
  }
  return { end: 'upper', proto, offset: p, fragment, reason: undefined };
}

/**
 * Decodes the IP packet at [off, end) of `d`. `family` is what the link layer announced, if it
 * did; a header of the other version is then malformed. `quoted` marks an ICMP error's quote.
 */
export function decodeIp(d: Uint8Array, off: number, end: number, family?: 4 | 6, quoted = false): IpResult {
  if (off >= end) return malformed(`truncated ip header: 0 of ${family === 6 ? 40 : 20} bytes`);
  const version = d[off] >> 4;
  if (family !== undefined && version !== family) return malformed(`ip version ${version} in an ipv${family} frame`);
  if (version === 4) return decodeIpv4(d, off, end, quoted);
  if (version === 6) return decodeIpv6(d, off, end, quoted);
  return malformed(`bad ip version ${version}`);
}
