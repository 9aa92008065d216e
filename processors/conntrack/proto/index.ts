/** The tracker for each protocol number, as nf_conntrack_core.c's switch on the L4 protocol. */
import { IPPROTO } from '../../packet';
import { GenericTracker } from './generic';
import { GreTracker } from './gre';
import { IcmpTracker, Icmpv6Tracker } from './icmp';
import { SctpTracker } from './sctp';
import { TcpTracker } from './tcp';
import type { ProtoTracker } from './tracker';
import { UdpLiteTracker, UdpTracker } from './udp';

const TRACKERS: ReadonlyMap<number, ProtoTracker> = new Map<number, ProtoTracker>([
  [IPPROTO.TCP, TcpTracker],
  [IPPROTO.UDP, UdpTracker],
  [IPPROTO.UDPLITE, UdpLiteTracker],
  [IPPROTO.ICMP, IcmpTracker],
  [IPPROTO.ICMPV6, Icmpv6Tracker],
  [IPPROTO.SCTP, SctpTracker],
  [IPPROTO.GRE, GreTracker],
]);

export function trackerFor(proto: number): ProtoTracker {
  return TRACKERS.get(proto) ?? GenericTracker;
}
