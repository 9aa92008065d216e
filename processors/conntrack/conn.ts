/**
 * Conn: one conntrack entry (the kernel's struct nf_conn), seen through a small view over its slot
 * in the shard's ConnStore. Trackers read and write it like an object; the data lives in one
 * ArrayBuffer record. The shard reuses one view on its per-packet path, so a tracker must never
 * keep a Conn (or its TcpView) beyond the packet it was given.
 */
import type { FlowRecord, Tuple } from '../flow';
import { STATUS } from '../flow';
import { IPPROTO } from '../packet';
import type { ConnStore } from './store';
import { LIFE_CONFIRMED, LIFE_USED, familyOfKind, protoOfKind, zoneOfKind } from './store';

/** One direction of TCP window state (struct ip_ct_tcp_state). */
export class TcpDirView {
  constructor(private readonly s: ConnStore, private readonly conn: Conn, private readonly dir: 0 | 1) {}
  get td_end(): number { return this.s.tdEnd(this.conn.slot, this.dir); }
  set td_end(v: number) { this.s.setTdEnd(this.conn.slot, this.dir, v); }
  get td_maxend(): number { return this.s.tdMaxend(this.conn.slot, this.dir); }
  set td_maxend(v: number) { this.s.setTdMaxend(this.conn.slot, this.dir, v); }
  get td_maxwin(): number { return this.s.tdMaxwin(this.conn.slot, this.dir); }
  set td_maxwin(v: number) { this.s.setTdMaxwin(this.conn.slot, this.dir, v); }
  get td_maxack(): number { return this.s.tdMaxack(this.conn.slot, this.dir); }
  set td_maxack(v: number) { this.s.setTdMaxack(this.conn.slot, this.dir, v); }
  get td_scale(): number { return this.s.tdScale(this.conn.slot, this.dir); }
  set td_scale(v: number) { this.s.setTdScale(this.conn.slot, this.dir, v); }
  get flags(): number { return this.s.tdFlags(this.conn.slot, this.dir); }
  set flags(v: number) { this.s.setTdFlags(this.conn.slot, this.dir, v); }
}

/** The TCP part of an entry (struct ip_ct_tcp). */
export class TcpView {
  readonly seen: [TcpDirView, TcpDirView];
  constructor(private readonly s: ConnStore, private readonly conn: Conn) {
    this.seen = [new TcpDirView(s, conn, 0), new TcpDirView(s, conn, 1)];
  }
  get state(): number { return this.s.tcpState(this.conn.slot); }
  set state(v: number) { this.s.setTcpState(this.conn.slot, v); }
  get last_dir(): number { return this.s.lastDir(this.conn.slot); }
  set last_dir(v: number) { this.s.setLastDir(this.conn.slot, v); }
  get last_index(): number { return this.s.lastIndex(this.conn.slot); }
  set last_index(v: number) { this.s.setLastIndex(this.conn.slot, v); }
  get last_seq(): number { return this.s.lastSeq(this.conn.slot); }
  set last_seq(v: number) { this.s.setLastSeq(this.conn.slot, v); }
  get last_ack(): number { return this.s.lastAck(this.conn.slot); }
  set last_ack(v: number) { this.s.setLastAck(this.conn.slot, v); }
  get last_end(): number { return this.s.lastEnd(this.conn.slot); }
  set last_end(v: number) { this.s.setLastEnd(this.conn.slot, v); }
  get last_win(): number { return this.s.lastWin(this.conn.slot); }
  set last_win(v: number) { this.s.setLastWin(this.conn.slot, v); }
  get last_wscale(): number { return this.s.lastWscale(this.conn.slot); }
  set last_wscale(v: number) { this.s.setLastWscale(this.conn.slot, v); }
  get last_flags(): number { return this.s.lastFlags(this.conn.slot); }
  set last_flags(v: number) { this.s.setLastFlags(this.conn.slot, v); }
  get retrans(): number { return this.s.retrans(this.conn.slot); }
  set retrans(v: number) { this.s.setRetrans(this.conn.slot, v); }
}

function tupleOf(s: ConnStore, slot: number, dir: 0 | 1): Tuple {
  const proto = protoOfKind(s.kind(slot));
  const ports = s.ports(slot, dir);
  const src = s.srcText(slot, dir);
  const dst = s.dstText(slot, dir);
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    return { src, dst, sport: 0, dport: 0, icmp: { type: (ports >>> 8) & 0xff, code: ports & 0xff, id: ports >>> 16 } };
  }
  return { src, dst, sport: ports >>> 16, dport: ports & 0xffff };
}

export class Conn {
  private tcpView: TcpView | undefined;

  constructor(readonly store: ConnStore, public slot: number) {}

  /** Points this view at another slot (the shard reuses one view on its hot path). */
  rebind(slot: number): this {
    this.slot = slot;
    return this;
  }

  get id(): number { return this.store.id(this.slot); }
  get zone(): number { return zoneOfKind(this.store.kind(this.slot)); }
  get family(): 4 | 6 { return familyOfKind(this.store.kind(this.slot)); }
  get l4proto(): number { return protoOfKind(this.store.kind(this.slot)); }
  get startUs(): number { return this.store.startUs(this.slot); }
  get lastUs(): number { return this.store.lastUs(this.slot); }
  get orig(): Tuple { return tupleOf(this.store, this.slot, 0); }
  get reply(): Tuple { return tupleOf(this.store, this.slot, 1); }

  get status(): number { return this.store.status(this.slot); }
  set status(v: number) { this.store.setStatus(this.slot, v); }
  has(bit: number): boolean { return (this.store.status(this.slot) & bit) !== 0; }
  get assured(): boolean { return (this.store.status(this.slot) & STATUS.ASSURED) !== 0; }

  /** Absolute expiry in packet time (µs); confirmation happens at the same packet time. */
  get expiresUs(): number { return this.store.expiresUs(this.slot); }
  set expiresUs(v: number) { this.store.setExpiresUs(this.slot, v); }

  get confirmed(): boolean { return (this.store.life(this.slot) & LIFE_CONFIRMED) !== 0; }
  markConfirmed(): void { this.store.setLife(this.slot, this.store.life(this.slot) | LIFE_CONFIRMED); }
  /** Destroyed: its slot went back to the free list (see ConnStore.release). */
  get dead(): boolean { return (this.store.life(this.slot) & LIFE_USED) === 0; }

  /** The original direction's ICMP type (the entry's kind: echo, timestamp, ...). */
  get origIcmpType(): number { return (this.store.ports(this.slot, 0) >>> 8) & 0xff; }

  /** A per-protocol packet time (UDP: when the entry may become a stream). */
  get aux(): number { return this.store.aux(this.slot); }
  set aux(v: number) { this.store.setAux(this.slot, v); }

  /** TCP window and state data of this entry. */
  get tcp(): TcpView { return (this.tcpView ??= new TcpView(this.store, this)); }

  /** Private state of trackers without columns of their own (SCTP). */
  get proto(): unknown { return this.store.extra.get(this.slot); }
  set proto(v: unknown) { this.store.extra.set(this.slot, v); }

  /** A plain snapshot for events and listings; `timeout` is the whole seconds left at `nowUs`. */
  snapshot(nowUs: number, state: string | undefined): FlowRecord {
    const s = this.store, i = this.slot, kind = s.kind(i);
    const rec: FlowRecord = {
      id: s.id(i),
      zone: zoneOfKind(kind),
      family: familyOfKind(kind),
      proto: protoOfKind(kind),
      // The kernel counts in jiffies whose phase against packet time is unknown, so its figure can
      // be one second higher than this one (as with 1 ms elapsed: 120 or 119).
      timeout: Math.max(0, Math.floor((s.expiresUs(i) - nowUs) / 1e6 + 1e-9)),
      orig: this.orig,
      reply: this.reply,
      status: s.status(i),
      counters: { orig: { packets: s.packets(i, 0), bytes: s.bytes(i, 0) }, reply: { packets: s.packets(i, 1), bytes: s.bytes(i, 1) } },
      startUs: s.startUs(i),
      lastUs: s.lastUs(i),
    };
    if (state !== undefined) rec.state = state;
    return rec;
  }
}
