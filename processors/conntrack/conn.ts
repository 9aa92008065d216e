/**
 * One conntrack entry (the kernel's struct nf_conn), with the per-protocol state trackers keep
 * in `proto`. Times are packet times in microseconds.
 */
import type { Counters, FlowRecord, Tuple } from '../flow';
import { STATUS } from '../flow';

export class Conn {
  status = 0;
  /** Absolute expiry in packet time (µs). Confirmation happens at the same packet time, so no relative form is needed. */
  expiresUs = 0;
  confirmed = false;
  dead = false;
  /** Per-protocol private state (TcpState, SctpState, ...). */
  proto: any = undefined;
  readonly counters: { orig: Counters; reply: Counters } = {
    orig: { packets: 0, bytes: 0 },
    reply: { packets: 0, bytes: 0 },
  };
  lastUs: number;
  /** Earliest expiry this entry is scheduled under in the expiry queue (see expiry.ts). */
  scheduledUs = Infinity;

  constructor(
    readonly id: number,
    readonly zone: number,
    readonly family: 4 | 6,
    readonly l4proto: number,
    readonly orig: Tuple,
    readonly reply: Tuple,
    readonly origKey: string,
    readonly replyKey: string,
    readonly startUs: number,
  ) {
    this.lastUs = startUs;
  }

  has(bit: number): boolean {
    return (this.status & bit) !== 0;
  }

  get assured(): boolean {
    return (this.status & STATUS.ASSURED) !== 0;
  }

  /** A plain snapshot for events and listings; `timeout` is the whole seconds left at `nowUs`. */
  snapshot(nowUs: number, state: string | undefined): FlowRecord {
    const left = this.expiresUs - nowUs;
    const rec: FlowRecord = {
      id: this.id,
      zone: this.zone,
      family: this.family,
      proto: this.l4proto,
      // The kernel counts in jiffies whose phase against packet time is unknown, so its figure can
      // be one second higher than this one (as with 1 ms elapsed: 120 or 119).
      timeout: Math.max(0, Math.floor(left / 1e6 + 1e-9)),
      orig: this.orig,
      reply: this.reply,
      status: this.status,
      counters: { orig: { ...this.counters.orig }, reply: { ...this.counters.reply } },
      startUs: this.startUs,
      lastUs: this.lastUs,
    };
    if (state !== undefined) rec.state = state;
    return rec;
  }
}
