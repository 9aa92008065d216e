/**
 * peekFlowKey: the light pass a capture worker makes over a frame whose flow may belong to another
 * worker. It reads only the framing and the IPv4 header, enough to be sure the full decoder
 * (decodeFrame) would call the frame an IP packet, and returns the flow key flowKeyOf() would
 * give that packet, without building it. Whatever it cannot be sure of (IPv6 and its extension
 * chain, ICMP whose owner is the quoted packet's, a header the decoder would reject) it leaves to
 * the full decoder by answering -1. test/ingest/decode/peek.test.ts holds it to both promises.
 */
import { IPPROTO, dottedQuad } from '../../processors/packet';
import type { ZoneKeys } from '../../processors/zones';
import { flowHash } from '../../processors/conntrack/tuple';
import type { CaptureFrame } from '../capture/types';
import { u16, u32 } from './bytes';
import { findIpHeader } from './link';

/** The zone the packet gets (see processors/zones.ts): it reads only the frame's interface and VLAN. */
export type PeekZoneOf = (keys: ZoneKeys) => number;

/**
 * The flow key of the frame's IP packet (flowKeyOf(packet.ip, zone)), or -1 when only the full
 * decoder can tell whether the frame is an IP packet or what its key is. Never throws.
 */
export function peekFlowKey(frame: Pick<CaptureFrame, 'linkType' | 'interfaceId' | 'interfaceName' | 'data'>, zoneOf?: PeekZoneOf): number {
  const d = frame.data;
  const link = findIpHeader(frame.linkType, d);
  if (link.kind !== 'ip') return -1;
  const off = link.offset;
  // The checks decodeIp and decodeIpv4 make before they accept a header, in the same order.
  if (off >= link.end || d[off] >> 4 !== 4 || (link.family !== undefined && link.family !== 4)) return -1;
  const avail = link.end - off;
  const headerLength = (d[off] & 0x0f) * 4;
  if (avail < 20 || headerLength < 20 || avail < headerLength || u16(d, off + 2) < headerLength) return -1;
  // An ICMP error's key is that of the packet it quotes: the full decoder reads the quote.
  const proto = d[off + 9];
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) return -1;
  // Past the header, a broken upper layer still leaves an IP packet (INVALID, with l4Error).
  const zone = zoneOf ? zoneOf({ interfaceId: frame.interfaceId, interfaceName: frame.interfaceName, vlan: link.vlan }) : 0;
  return flowHash(zone, dottedQuad(u32(d, off + 12)), dottedQuad(u32(d, off + 16)));
}
