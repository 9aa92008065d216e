/** The tracker for each protocol number, as nf_conntrack_core.c's switch on the L4 protocol. */
import { IPPROTO } from '../../packet';
import { GenericTracker } from './generic';
import { GreTracker } from './gre';
import { IcmpTracker, Icmpv6Tracker } from './icmp';
import { SctpTracker } from './sctp';
import { TcpTracker } from './tcp';
import type { ProtoTracker } from './tracker';
import { UdpLiteTracker, UdpTracker } from './udp';

/** Indexed by protocol number; every slot is filled, so the lookup is one array load. */
const TRACKERS: readonly ProtoTracker[] = (() => {
  const table = new Array<ProtoTracker>(256).fill(GenericTracker);
  table[IPPROTO.TCP] = TcpTracker;
  table[IPPROTO.UDP] = UdpTracker;
  table[IPPROTO.UDPLITE] = UdpLiteTracker;
  table[IPPROTO.ICMP] = IcmpTracker;
  table[IPPROTO.ICMPV6] = Icmpv6Tracker;
  table[IPPROTO.SCTP] = SctpTracker;
  table[IPPROTO.GRE] = GreTracker;
  return table;
})();

export function trackerFor(proto: number): ProtoTracker {
  return TRACKERS[proto & 0xff];
}
