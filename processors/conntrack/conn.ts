/**
 * Conn: one conntrack entry (the kernel's struct nf_conn), seen through a small view over its slot
 * in the shard's ConnStore. Trackers read and write it like an object; the data lives in typed
 * arrays. Views are cheap and short-lived: make one per packet, never keep one across packets.
 */
import type { FlowRecord, Tuple } from '../flow';
import { STATUS } from '../flow';
import { IPPROTO } from '../packet';
import type { ConnStore } from './store';
import { familyOfKind, protoOfKind, zoneOfKind } from './store';

const USED = 1;
const CONFIRMED = 2;
const DEAD = 4;

/** One direction of TCP window state (struct ip_ct_tcp_state). */
export class TcpDirView {
  constructor(private readonly s: ConnStore, private readonly i: number) {}
  get td_end(): number { return this.s.tdEnd[this.i]; }
  set td_end(v: number) { this.s.tdEnd[this.i] = v; }
  get td_maxend(): number { return this.s.tdMaxend[this.i]; }
  set td_maxend(v: number) { this.s.tdMaxend[this.i] = v; }
  get td_maxwin(): number { return this.s.tdMaxwin[this.i]; }
  set td_maxwin(v: number) { this.s.tdMaxwin[this.i] = v; }
  get td_maxack(): number { return this.s.tdMaxack[this.i]; }
  set td_maxack(v: number) { this.s.tdMaxack[this.i] = v; }
  get td_scale(): number { return this.s.tdScale[this.i]; }
  set td_scale(v: number) { this.s.tdScale[this.i] = v; }
  get flags(): number { return this.s.tdFlags[this.i]; }
  set flags(v: number) { this.s.tdFlags[this.i] = v; }
}

/** The TCP part of an entry (struct ip_ct_tcp). */
export class TcpView {
  readonly seen: [TcpDirView, TcpDirView];
  constructor(private readonly s: ConnStore, private readonly slot: number) {
    this.seen = [new TcpDirView(s, 2 * slot), new TcpDirView(s, 2 * slot + 1)];
  }
  get state(): number { return this.s.tcpState[this.slot]; }
  set state(v: number) { this.s.tcpState[this.slot] = v; }
  get last_dir(): number { return this.s.lastDir[this.slot]; }
  set last_dir(v: number) { this.s.lastDir[this.slot] = v; }
  get last_index(): number { return this.s.lastIndex[this.slot]; }
  set last_index(v: number) { this.s.lastIndex[this.slot] = v; }
  get last_seq(): number { return this.s.lastSeq[this.slot]; }
  set last_seq(v: number) { this.s.lastSeq[this.slot] = v; }
  get last_ack(): number { return this.s.lastAck[this.slot]; }
  set last_ack(v: number) { this.s.lastAck[this.slot] = v; }
  get last_end(): number { return this.s.lastEnd[this.slot]; }
  set last_end(v: number) { this.s.lastEnd[this.slot] = v; }
  get last_win(): number { return this.s.lastWin[this.slot]; }
  set last_win(v: number) { this.s.lastWin[this.slot] = v; }
  get last_wscale(): number { return this.s.lastWscale[this.slot]; }
  set last_wscale(v: number) { this.s.lastWscale[this.slot] = v; }
  get last_flags(): number { return this.s.lastFlags[this.slot]; }
  set last_flags(v: number) { this.s.lastFlags[this.slot] = v; }
  get retrans(): number { return this.s.retrans[this.slot]; }
  set retrans(v: number) { this.s.retrans[this.slot] = v; }
}

function tupleOf(s: ConnStore, slot: number, dir: 0 | 1): Tuple {
  const proto = protoOfKind(s.kind[slot]);
  const ports = s.ports[2 * slot + dir];
  const src = s.srcText(slot, dir);
  const dst = s.dstText(slot, dir);
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    return { src, dst, sport: 0, dport: 0, icmp: { type: (ports >>> 8) & 0xff, code: ports & 0xff, id: ports >>> 16 } };
  }
  return { src, dst, sport: ports >>> 16, dport: ports & 0xffff };
}

export class Conn {
  constructor(readonly store: ConnStore, readonly slot: number) {}

  get id(): number { return this.store.id[this.slot]; }
  get zone(): number { return zoneOfKind(this.store.kind[this.slot]); }
  get family(): 4 | 6 { return familyOfKind(this.store.kind[this.slot]); }
  get l4proto(): number { return protoOfKind(this.store.kind[this.slot]); }
  get startUs(): number { return this.store.startUs[this.slot]; }
  get lastUs(): number { return this.store.lastUs[this.slot]; }

  get orig(): Tuple { return tupleOf(this.store, this.slot, 0); }
  get reply(): Tuple { return tupleOf(this.store, this.slot, 1); }

  get status(): number { return this.store.status[this.slot]; }
  set status(v: number) { this.store.status[this.slot] = v; }
  has(bit: number): boolean { return (this.store.status[this.slot] & bit) !== 0; }
  get assured(): boolean { return (this.store.status[this.slot] & STATUS.ASSURED) !== 0; }

  /** Absolute expiry in packet time (µs); confirmation happens at the same packet time. */
  get expiresUs(): number { return this.store.expiresUs[this.slot]; }
  set expiresUs(v: number) { this.store.expiresUs[this.slot] = v; }

  get confirmed(): boolean { return (this.store.life[this.slot] & CONFIRMED) !== 0; }
  markConfirmed(): void { this.store.life[this.slot] |= CONFIRMED; }
  get dead(): boolean { return (this.store.life[this.slot] & DEAD) !== 0 || (this.store.life[this.slot] & USED) === 0; }
  markDead(): void { this.store.life[this.slot] |= DEAD; }

  /** The original direction's ICMP type (the entry's kind: echo, timestamp, ...). */
  get origIcmpType(): number { return (this.store.ports[2 * this.slot] >>> 8) & 0xff; }

  /** A per-protocol packet time (UDP: when the entry may become a stream). */
  get aux(): number { return this.store.aux[this.slot]; }
  set aux(v: number) { this.store.aux[this.slot] = v; }

  /** TCP window and state data of this entry. */
  get tcp(): TcpView { return new TcpView(this.store, this.slot); }

  /** Private state of trackers without columns of their own (SCTP). */
  get proto(): unknown { return this.store.extra.get(this.slot); }
  set proto(v: unknown) { this.store.extra.set(this.slot, v); }

  /** A plain snapshot for events and listings; `timeout` is the whole seconds left at `nowUs`. */
  snapshot(nowUs: number, state: string | undefined): FlowRecord {
    const s = this.store, i = this.slot;
    const rec: FlowRecord = {
      id: s.id[i],
      zone: zoneOfKind(s.kind[i]),
      family: familyOfKind(s.kind[i]),
      proto: protoOfKind(s.kind[i]),
      // The kernel counts in jiffies whose phase against packet time is unknown, so its figure can
      // be one second higher than this one (as with 1 ms elapsed: 120 or 119).
      timeout: Math.max(0, Math.floor((s.expiresUs[i] - nowUs) / 1e6 + 1e-9)),
      orig: this.orig,
      reply: this.reply,
      status: s.status[i],
      counters: { orig: { packets: s.pktsOrig[i], bytes: s.bytesOrig[i] }, reply: { packets: s.pktsReply[i], bytes: s.bytesReply[i] } },
      startUs: s.startUs[i],
      lastUs: s.lastUs[i],
    };
    if (state !== undefined) rec.state = state;
    return rec;
  }
}
