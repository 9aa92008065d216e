/**
 * UdpTracker (also UDP-Lite): nf_conntrack_proto_udp.c. An entry is unreplied (30 s) until a reply
 * is seen; after that, traffic still flowing more than 2 s after the first packet makes it a
 * stream (120 s) and sets ASSURED. Note that SEEN_REPLY is set by the core after the tracker
 * runs, so the first reply itself still gets the unreplied timeout.
 */
import type { IpPacket, UdpHeader } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn } from '../conn';
import { ACCEPT, IPCT, invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';

const STREAM_AFTER_US = 2e6;

function makeUdpTracker(name: string): ProtoTracker {
  return {
    name,
    packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
      const udp = ip.l4 as UdpHeader;
      if (udp.kind === 'udp' && (udp.length < 8 || udp.length > ip.length)) return invalid('udp_bad_length', { length: udp.length });
      // conn.aux: the packet time after which traffic in both directions makes a stream.
      if (!conn.confirmed) conn.aux = ctx.nowUs + STREAM_AFTER_US;
      const sysctl = ctx.sysctl;
      if (conn.has(STATUS.SEEN_REPLY)) {
        let timeout = sysctl.nf_conntrack_udp_timeout;
        let stream = false;
        if (ctx.nowUs > conn.aux) {
          timeout = sysctl.nf_conntrack_udp_timeout_stream;
          stream = !conn.assured;
        }
        ctx.refresh(conn, dir, ip, timeout);
        if (stream) {
          conn.status |= STATUS.ASSURED;
          ctx.event(conn, IPCT.ASSURED);
        }
      } else {
        ctx.refresh(conn, dir, ip, sysctl.nf_conntrack_udp_timeout);
      }
      return ACCEPT;
    },
  };
}

export const UdpTracker = makeUdpTracker('udp');
export const UdpLiteTracker = makeUdpTracker('udplite');
