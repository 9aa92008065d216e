/**
 * The contract between the core (engine.ts, like nf_conntrack_core.c) and one protocol tracker
 * (like nf_conntrack_proto_*.c). A tracker judges one packet against one entry; the core owns
 * lookup, creation, confirmation, events and expiry.
 */
import type { IpPacket } from '../../packet';
import type { DestroyReason } from '../../flow';
import type { Conn } from '../conn';
import type { Sysctl } from '../sysctl';

/** Event-cache bits, as nf_conntrack_ecache's IPCT_*. */
export const IPCT = {
  NEW: 1 << 0,
  RELATED: 1 << 1,
  DESTROY: 1 << 2,
  REPLY: 1 << 3,
  ASSURED: 1 << 4,
  PROTOINFO: 1 << 5,
  HELPER: 1 << 6,
} as const;

export const DIR_ORIGINAL = 0;
export const DIR_REPLY = 1;
export type Dir = 0 | 1;

/** What the core offers a tracker while it judges a packet. */
export interface TrackerContext {
  readonly sysctl: Sysctl;
  readonly nowUs: number;
  /** nf_ct_refresh_acct: set the timeout (seconds) and account the packet. */
  refresh(conn: Conn, dir: Dir, ip: IpPacket, timeoutSec: number): void;
  /** nf_ct_kill (or nf_ct_kill_acct when the packet is given, which is then accounted): destroy the entry now. */
  kill(conn: Conn, reason: DestroyReason, accountFor?: { dir: Dir; ip: IpPacket }): void;
  /** nf_conntrack_event_cache. */
  event(conn: Conn, bits: number): void;
  /**
   * nf_ct_seq_offset: how far a NAT helper's rewrites have shifted direction `dir`'s sequence
   * number `seq`. Asked only of entries with STATUS.SEQ_ADJUST.
   */
  seqOffset(conn: Conn, dir: Dir, seq: number): number;
}

export type TrackerResult =
  | { verdict: 'accept'; note?: string; detail?: Record<string, number> }
  | { verdict: 'invalid'; reason: string; detail?: Record<string, number> }
  /** The entry was killed to let this packet open a fresh one (TCP reopen): look up again. */
  | { verdict: 'repeat'; reason: string };

export const ACCEPT: TrackerResult = Object.freeze({ verdict: 'accept' });

export interface ProtoTracker {
  /** Protocol name as conntrack prints it (`tcp`, `udp`, `unknown`, ...). */
  readonly name: string;
  /** Judge one packet; `conn.confirmed` is false for the packet that would create the entry. */
  packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult;
  /** The protocol state name to print, for stateful protocols. */
  stateName?(conn: Conn): string;
  /** Whether an entry in its current state may be early-dropped even though assured. */
  canEarlyDrop?(conn: Conn): boolean;
}

export function invalid(reason: string, detail?: Record<string, number>): TrackerResult {
  return detail ? { verdict: 'invalid', reason, detail } : { verdict: 'invalid', reason };
}
