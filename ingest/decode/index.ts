/**
 * decodeFrame: one captured frame in, one classified result out. Never throws: bad bytes are
 * a result ("malformed", with a short reason), as the kernel turns them into a verdict.
 */
import type { CapturedPacket } from '../../processors/packet';
import type { CaptureFrame } from '../capture/types';
import { decodeIp } from './ip';
import { findIpHeader } from './link';

export type DecodeResult =
  | { kind: 'ip'; packet: Omit<CapturedPacket, 'index'> }
  | { kind: 'not-ip'; reason: string }
  | { kind: 'malformed'; reason: string };

/** Prefix of the reason reported if a decoder bug throws; tests assert it never appears. */
export const INTERNAL_ERROR_PREFIX = 'internal decoder error';

export function decodeFrame(frame: Pick<CaptureFrame, 'frame' | 'tsUs' | 'linkType' | 'interfaceId' | 'interfaceName' | 'data'>): DecodeResult {
  try {
    const link = findIpHeader(frame.linkType, frame.data);
    if (link.kind !== 'ip') return link;
    const ip = decodeIp(frame.data, link.offset, link.end, link.family);
    if (ip.kind !== 'ip') return ip;
    const packet: Omit<CapturedPacket, 'index'> = {
      frame: frame.frame,
      tsUs: frame.tsUs,
      interfaceId: frame.interfaceId,
      ip: ip.packet,
    };
    if (frame.interfaceName !== undefined) packet.interfaceName = frame.interfaceName;
    if (link.vlan !== undefined) packet.vlan = link.vlan;
    return { kind: 'ip', packet };
  } catch (err) {
    // Safety net for the "never throws" contract: a bug here must cost one frame, not the run.
    return { kind: 'malformed', reason: `${INTERNAL_ERROR_PREFIX}: ${(err as Error).message}` };
  }
}

export { findIpHeader, type LinkResult } from './link';
export { decodeIp, type IpResult } from './ip';
export { ipv4Text, ipv6Text } from './address';
export { parseTcpOptions } from './tcp';
