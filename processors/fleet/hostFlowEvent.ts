/**
 * A conntrack event as a host's kernel reported it, in whichever form it came (conntrack -E
 * text, its XML, or ctflow's JSON). The fleet table consumes these instead of packets: the host's
 * own nf_conntrack already ran the state machine, so nothing here re-derives a state.
 */
import type { Counters, EventType, Tuple } from '../flow';

/**
 * What one event (or one line of a listing) says about an entry. Everything a form can leave out
 * is optional: ctnetlink only puts the protocol state in an event when it changed (IPCT_PROTOINFO),
 * the timeout is missing from a DESTROY caused by expiry, counters come only with
 * nf_conntrack_acct=1 (and in -E only on DESTROY), and the id only with `-o id`.
 */
export interface FlowSnapshot {
  /** The kernel's entry id (`id=`), unique among the live entries of one network namespace. */
  id?: number;
  /** The conntrack zone inside the reporting host (`zone=`; 0 when not printed). */
  zone: number;
  family: 4 | 6;
  proto: number;
  /** TCP/SCTP/DCCP state, when the event carried it. */
  state?: string;
  /** Seconds left until expiry when the host reported it. */
  timeout?: number;
  orig: Tuple;
  reply: Tuple;
  /**
   * STATUS bits the form shows or implies: CONFIRMED (every entry an event or listing shows is
   * confirmed), SEEN_REPLY (no [UNREPLIED]), ASSURED, and SRC_NAT/DST_NAT where the reply tuple is
   * not the inverted original (what nf_nat sets when it rewrites one side).
   */
  status: number;
  /** Packets and bytes per direction, when the form carried them. */
  counters?: { orig: Counters; reply: Counters };
  /** When the entry was created (µs), if the form says (JSON `start`, XML `<timestamp><start>`). */
  startUs?: number;
  /** Time of the entry's last packet (µs), if the form says (JSON `last`). */
  lastUs?: number;
  /** Seconds since creation (`delta-time=`, `<deltatime>`), with nf_conntrack_timestamp=1. */
  deltaTime?: number;
  helper?: string;
  mark?: number;
}

export interface HostFlowEvent {
  /** A listing line (conntrack -L) carries no type; it is read as an UPDATE: it upserts the entry. */
  type: EventType;
  /** When the event was printed (µs since the epoch), when the form carries a time. */
  tsUs?: number;
  /** The host that reported it; the fleet table gives each host a zone of its own. */
  host?: string;
  /** The fleet zone the caller assigned to this host, overriding the table's host-to-zone rule. */
  hostZone?: number;
  /** True when the line came from a listing (conntrack -L), not from the event stream. */
  listed?: boolean;
  flow: FlowSnapshot;
}
