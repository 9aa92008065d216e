/**
 * UdpTracker (also UDP-Lite): nf_conntrack_proto_udp.c. An entry is unreplied (30 s) until a reply
 * is seen; after that, traffic still flowing more than 2 s after the first packet makes it a
 * stream (120 s) and sets ASSURED. Note that SEEN_REPLY is set by the core after the tracker
 * runs, so the first reply itself still gets the unreplied timeout.
 */
import type { IpPacket, UdpHeader } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn } from '../conn';
import { LIFE_CONFIRMED } from '../store';
import { ACCEPT, IPCT, invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';

const STREAM_AFTER_US = 2e6;

function makeUdpTracker(name: string): ProtoTracker {
  return {
    name,
    packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
      const udp = ip.l4 as UdpHeader;
      if (udp.kind === 'udp' && (udp.length < 8 || udp.length > ip.length)) return invalid('udp_bad_length', { length: udp.length });
      // The entry's fields straight from its store record (this runs for every UDP packet).
      const store = conn.store;
      const slot = conn.slot;
      // aux: the packet time after which traffic in both directions makes a stream.
      if (!(store.life(slot) & LIFE_CONFIRMED)) store.setAux(slot, ctx.nowUs + STREAM_AFTER_US);
      const sysctl = ctx.sysctl;
      const status = store.status(slot);
      if (status & STATUS.SEEN_REPLY) {
        let timeout = sysctl.nf_conntrack_udp_timeout;
        let stream = false;
        if (ctx.nowUs > store.aux(slot)) {
          timeout = sysctl.nf_conntrack_udp_timeout_stream;
          stream = (status & STATUS.ASSURED) === 0;
        }
        ctx.refresh(conn, dir, ip, timeout);
        if (stream) {
          store.setStatus(slot, store.status(slot) | STATUS.ASSURED);
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
