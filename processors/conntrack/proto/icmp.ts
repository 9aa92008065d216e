/**
 * IcmpTracker and Icmpv6Tracker: nf_conntrack_proto_icmp.c / icmpv6.c. Only query messages
 * (echo, timestamp, information, address mask; ICMPv6 echo and node information) can create an
 * entry; the answer matches it by identifier. The entry is not removed after the reply (the
 * kernel keeps it to absorb duplicate replies). Error messages never reach here: the core relates
 * them to the flow they quote (see relate.ts).
 */
import type { IpPacket } from '../../packet';
import type { Conn } from '../conn';
import { ACCEPT, invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';

const ICMP_CAN_START = new Set([8, 13, 15, 17]);
const ICMPV6_CAN_START = new Set([128, 139]);

function makeIcmpTracker(name: string, canStart: Set<number>, timeoutKey: 'nf_conntrack_icmp_timeout' | 'nf_conntrack_icmpv6_timeout'): ProtoTracker {
  return {
    name,
    packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
      const type = conn.origIcmpType;
      if (!canStart.has(type)) {
        const reply = type === 0 || type === 129 || type === 14 || type === 16 || type === 18 || type === 140;
        return invalid(reply ? `${name}_reply_without_request` : `${name}_cannot_start`, { type });
      }
      ctx.refresh(conn, dir, ip, ctx.sysctl[timeoutKey]);
      return ACCEPT;
    },
  };
}

export const IcmpTracker = makeIcmpTracker('icmp', ICMP_CAN_START, 'nf_conntrack_icmp_timeout');
export const Icmpv6Tracker = makeIcmpTracker('icmpv6', ICMPV6_CAN_START, 'nf_conntrack_icmpv6_timeout');
