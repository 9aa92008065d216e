/**
 * GreTracker: nf_conntrack_proto_gre.c. Like UDP without the 2-second rule: 30 s until a reply has
 * been seen, then 180 s and ASSURED from the next packet on.
 */
import type { IpPacket } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn } from '../conn';
import { ACCEPT, IPCT } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';

export const GreTracker: ProtoTracker = {
  name: 'gre',
  packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
    if (conn.has(STATUS.SEEN_REPLY)) {
      ctx.refresh(conn, dir, ip, ctx.sysctl.nf_conntrack_gre_timeout_stream);
      if (!conn.assured) {
        conn.status |= STATUS.ASSURED;
        ctx.event(conn, IPCT.ASSURED);
      }
    } else {
      ctx.refresh(conn, dir, ip, ctx.sysctl.nf_conntrack_gre_timeout);
    }
    return ACCEPT;
  },
};
