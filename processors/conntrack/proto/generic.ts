/**
 * GenericTracker: nf_conntrack_proto_generic.c. Any protocol without a tracker of its own (DCCP
 * included: Linux 6.18 no longer has one) is tracked by addresses alone with one timeout.
 * conntrack prints it as `unknown`.
 */
import type { IpPacket } from '../../packet';
import type { Conn } from '../conn';
import { ACCEPT } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';

export const GenericTracker: ProtoTracker = {
  name: 'unknown',
  packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
    ctx.refresh(conn, dir, ip, ctx.sysctl.nf_conntrack_generic_timeout);
    return ACCEPT;
  },
};
