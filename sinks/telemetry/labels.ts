/**
 * Label values shared by every telemetry output, so Prometheus, OTLP and the live API name a
 * protocol or a table state the same way.
 */
import type { CtStats } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import { IPPROTO } from '../../processors/packet';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import { protoName } from '../conntrackText';

/** conntrack's protocol name; the number for protocols it has no name for (still bounded: 256 values). */
export function protoLabel(proto: number): string {
  const name = protoName(proto);
  return name === 'unknown' ? String(proto) : name;
}

/** Re-exported: the filters in processors/ decide `--state` with the same function. */
export { entryState } from '../../processors/flow';

/** The protocols ctflow tracks with their own timeouts; others fall to the generic tracker. */
export const TRACKED_PROTOS: readonly number[] = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE, IPPROTO.ICMP, IPPROTO.ICMPV6, IPPROTO.SCTP, IPPROTO.GRE];

/**
 * How long an entry that never sees a reply stays in the table: the first state's timeout. A
 * stream of NEW flows at rate r keeps at least r times this many entries alive, which is what
 * the table-exhaustion alert compares with the limit.
 */
export function unrepliedTimeoutSeconds(proto: number, s: Sysctl): number {
  switch (proto) {
    case IPPROTO.TCP:
      return s.nf_conntrack_tcp_timeout_syn_sent;
    case IPPROTO.UDP:
    case IPPROTO.UDPLITE:
      return s.nf_conntrack_udp_timeout;
    case IPPROTO.ICMP:
      return s.nf_conntrack_icmp_timeout;
    case IPPROTO.ICMPV6:
      return s.nf_conntrack_icmpv6_timeout;
    case IPPROTO.SCTP:
      return s.nf_conntrack_sctp_timeout_cookie_wait;
    case IPPROTO.GRE:
      return s.nf_conntrack_gre_timeout;
    default:
      return s.nf_conntrack_generic_timeout;
  }
}

/** The `conntrack -S` counters, in conntrack's order. */
export const STAT_NAMES = Object.keys(emptyStats()) as Array<keyof CtStats>;
