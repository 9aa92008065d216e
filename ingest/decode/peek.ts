/**
 * peekFlowKey: the light pass a capture worker makes over a frame whose flow may belong to another
 * worker. It reads only the framing and the IP header (for IPv6 its extension chain, walked by the
 * decoder's own walkIpv6Chain), enough to be sure the full decoder (decodeFrame) would call the
 * frame an IP packet, and returns the flow key flowKeyOf() would give that packet, without
 * building it. Whatever it cannot be sure of (an ICMP error, whose owner is the quoted packet's; a
 * header the decoder would reject) it leaves to the full decoder by answering -1.
 * test/ingest/decode/peek.test.ts holds it to both promises.
 */
import { IPPROTO, dottedQuad } from '../../processors/packet';
import type { ZoneKeys } from '../../processors/zones';
import { flowHash } from '../../processors/conntrack/tuple';
import type { CaptureFrame } from '../capture/types';
import { ipv6Text } from './address';
import { u16, u32 } from './bytes';
import { walkIpv6Chain } from './ip';
import { ICMP_ERROR_TYPES, ICMPV6_ERROR_TYPES } from './l4';
import { findIpHeader } from './link';

/** The zone the packet gets (see processors/zones.ts): it reads only the frame's interface and VLAN. */
export type PeekZoneOf = (keys: ZoneKeys) => number;

type PeekFrame = Pick<CaptureFrame, 'linkType' | 'interfaceId' | 'interfaceName' | 'data'>;

/**
 * The flow key of the frame's IP packet (flowKeyOf(packet.ip, zone)), or -1 when only the full
 * decoder can tell whether the frame is an IP packet or what its key is. Never throws.
 */
export function peekFlowKey(frame: PeekFrame, zoneOf?: PeekZoneOf): number {
  const d = frame.data;
  const link = findIpHeader(frame.linkType, d);
  if (link.kind !== 'ip') return -1;
  const off = link.offset;
  if (off >= link.end) return -1;
  // The checks decodeIp, decodeIpv4 and decodeIpv6 make before they accept a header, in the same order.
  const version = d[off] >> 4;
  if (link.family !== undefined && link.family !== version) return -1;
  const zone = (): number => (zoneOf ? zoneOf({ interfaceId: frame.interfaceId, interfaceName: frame.interfaceName, vlan: link.vlan }) : 0);
  if (version === 4) {
    const avail = link.end - off;
    const headerLength = (d[off] & 0x0f) * 4;
    if (avail < 20 || headerLength < 20 || avail < headerLength || u16(d, off + 2) < headerLength) return -1;
    // Only a first fragment carries the upper-layer header, and with it an ICMP error's quote.
    const firstFragment = (u16(d, off + 6) & 0x1fff) === 0;
    if (firstFragment && mayQuote(d[off + 9], d, off + headerLength, Math.min(link.end, off + u16(d, off + 2)))) return -1;
    // Past the header, a broken upper layer still leaves an IP packet (INVALID, with l4Error).
    return flowHash(zone(), dottedQuad(u32(d, off + 12)), dottedQuad(u32(d, off + 16)));
  }
  if (version !== 6 || link.end - off < 40) return -1;
  const claimedEnd = off + 40 + u16(d, off + 4);
  const ipEnd = Math.min(link.end, claimedEnd);
  const chain = walkIpv6Chain(d, off + 40, ipEnd, claimedEnd, d[off + 6]);
  if (chain.end === 'truncated' || chain.end === 'bad') return -1;
  if (chain.end === 'upper' && mayQuote(chain.proto, d, chain.offset, ipEnd)) return -1;
  return flowHash(zone(), ipv6Text(d, off + 8), ipv6Text(d, off + 24));
}

/**
 * Whether the upper layer at [start, end) may be an ICMP error the decoder reads a quote from.
 * The decoder goes by the protocol number, not the IP version (ICMPv6 inside IPv4 is read as
 * ICMPv6), and so does flowKeyOf.
 */
function mayQuote(proto: number, d: Uint8Array, start: number, end: number): boolean {
  const errorTypes = proto === IPPROTO.ICMP ? ICMP_ERROR_TYPES : proto === IPPROTO.ICMPV6 ? ICMPV6_ERROR_TYPES : undefined;
  // Too short for a type: the decoder reports the header cut, and reads no quote.
  return errorTypes !== undefined && start < end && errorTypes.has(d[start]);
}
