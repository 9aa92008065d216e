/**
 * Tuples, connection snapshots, events and counters: the engine's output vocabulary, shared by
 * the CLI, the sinks and the tests. Names follow conntrack(8) and the kernel's nf_conntrack.
 */

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED';
export type Direction = 'original' | 'reply';

/** One direction's identity. Ports are 0 where the protocol has none; ICMP uses type/code/id. */
export interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** ICMP/ICMPv6 only: the type and code of the original-direction message, and the identifier. */
  icmp?: { type: number; code: number; id: number };
}

/** Status bits, as conntrack prints them in brackets. CONFIRMED and the others are kept for JSON. */
export const STATUS = {
  EXPECTED: 1 << 0,
  SEEN_REPLY: 1 << 1,
  ASSURED: 1 << 2,
  CONFIRMED: 1 << 3,
  SRC_NAT: 1 << 4,
  DST_NAT: 1 << 5,
  /** A NAT helper resized a segment: later sequence numbers are adjusted (IPS_SEQ_ADJUST). */
  SEQ_ADJUST: 1 << 11,
  DYING: 1 << 9,
  UNTRACKED: 1 << 12,
  /** A helper was assigned by a rule (IPS_HELPER, as nft's `ct helper set` sets it). */
  HELPER: 1 << 13,
} as const;

/**
 * The state a table entry is counted under: the protocol state where the protocol has one (TCP,
 * SCTP), else what `conntrack -L` shows in brackets: UNREPLIED until a reply, ASSURED once
 * assured, REPLIED in between.
 */
export function entryState(f: Pick<FlowRecord, 'state' | 'status'>): string {
  if (f.state !== undefined) return f.state;
  if (f.status & STATUS.ASSURED) return 'ASSURED';
  return f.status & STATUS.SEEN_REPLY ? 'REPLIED' : 'UNREPLIED';
}

export type DestroyReason = 'timeout' | 'rst' | 'close' | 'early_drop' | 'flush' | 'reopen';

export interface Counters {
  packets: number;
  bytes: number;
}

/** A snapshot of one conntrack entry, as events and listings print it. */
export interface FlowRecord {
  id: number;
  zone: number;
  family: 4 | 6;
  proto: number;
  /** Protocol state name (TCP: SYN_SENT ... ; SCTP: COOKIE_WAIT ...); absent for stateless protocols. */
  state?: string;
  /** Seconds left until expiry, as `conntrack -L` prints it (rounded down). */
  timeout: number;
  orig: Tuple;
  reply: Tuple;
  status: number;
  counters: { orig: Counters; reply: Counters };
  /** Packet time (µs) of the first packet and of the last one seen. */
  startUs: number;
  lastUs: number;
  helper?: string;
  /** For an expected connection: the id of its master. */
  masterId?: number;
  /** References held on the entry, as conntrack -L prints use= (1, plus one per live expected connection it is master of). */
  use?: number;
}

export type EventType = 'NEW' | 'UPDATE' | 'DESTROY';

export interface FlowEvent {
  type: EventType;
  /** Packet time (µs) at which the kernel would have emitted it. */
  tsUs: number;
  flow: FlowRecord;
  /** Whether the protocol state changed with this event (ctnetlink then includes it; DESTROY always does). */
  protoinfo: boolean;
  /** DESTROY only: why the entry ended (conntrack -E does not say; ctflow does). */
  reason?: DestroyReason;
  /** The packet that caused it, when one did (index among IP packets). */
  packetIndex?: number;
  /** That packet's ctstate, where the stream joins it in (the engine's own events leave it out). */
  ctstate?: CtState;
}

/** An INVALID packet as the transitions topic reports it: what it was, and why conntrack refused it. */
export interface InvalidPacket {
  tsUs: number;
  zone: number;
  family: 4 | 6;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** The flow it was judged against, if any, and that flow's protocol state. */
  flowId?: number;
  state?: string;
  dir: Direction | null;
  reason?: string;
  detail?: Record<string, number>;
  note?: string;
}

/** `conntrack -S` counters (summed over CPUs), with the same names. */
export interface CtStats {
  found: number;
  invalid: number;
  insert: number;
  insert_failed: number;
  drop: number;
  early_drop: number;
  error: number;
  search_restart: number;
  clash_resolve: number;
  chaintoolong: number;
}

export function emptyStats(): CtStats {
  return {
    found: 0,
    invalid: 0,
    insert: 0,
    insert_failed: 0,
    drop: 0,
    early_drop: 0,
    error: 0,
    search_restart: 0,
    clash_resolve: 0,
    chaintoolong: 0,
  };
}

/** The engine's per-packet decision. */
export interface Verdict {
  index: number;
  ctstate: CtState;
  dir: Direction | null;
  /** The connection's protocol state after the packet (TCP/SCTP), when there is an entry. */
  state?: string;
  /** Machine-readable cause of an INVALID verdict (or of an ignored packet). */
  reason?: string;
  /** Free-text detail (for example what the decoder found wrong with the header). */
  note?: string;
  /** The values behind a window failure (sequence, ack, td_end, td_maxend, td_maxwin, scale...). */
  detail?: Record<string, number>;
  flowId?: number;
}

/**
 * A verdict with every field present (absent ones undefined, which every reader treats as
 * absent), in one order: one object shape for all verdicts, so the code reading them stays
 * monomorphic. The engine fills one of these per packet and reuses it; copyVerdict keeps one.
 */
export function makeVerdict(
  index: number,
  ctstate: CtState,
  dir: Direction | null,
  state?: string,
  reason?: string,
  note?: string,
  detail?: Record<string, number>,
  flowId?: number,
): Verdict {
  return { index, ctstate, dir, state, reason, note, detail, flowId };
}

/** A verdict of one's own, from the engine's reused one (see ConntrackEngine.process). */
export function copyVerdict(v: Verdict): Verdict {
  return makeVerdict(v.index, v.ctstate, v.dir, v.state, v.reason, v.note, v.detail, v.flowId);
}

/**
 * Flow accounting, as NetFlow/IPFIX exporters report it: one record when a flow ends and, for
 * long flows, one every active timeout. Counters are deltas since the flow's previous record, so
 * the records of one flow add up to its conntrack counters.
 */
export interface FlowAccountingRecord {
  /** 'active': the flow is still open (active timeout); 'end': it was destroyed. */
  kind: 'active' | 'end';
  /** The entry as last known (at NEW for active records; at DESTROY for end records). */
  flow: FlowRecord;
  /** Why it ended (end records only). */
  reason?: DestroyReason;
  firstUs: number;
  lastUs: number;
  /** Packets and bytes since this flow's previous record. */
  delta: { orig: Counters; reply: Counters };
  /** Packet time at which the record was made. */
  tsUs: number;
}
