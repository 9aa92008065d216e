/**
 * Conn: one conntrack entry (the kernel's struct nf_conn), seen through a small view over its slot
 * in the shard's ConnStore. Trackers read and write it like an object; the data lives in one
 * ArrayBuffer record (the TCP tracker reads its struct ip_ct_tcp fields there directly, by slot).
 * The shard reuses one view on its per-packet path, so a tracker must never keep a Conn beyond
 * the packet it was given.
 */
import type { FlowRecord, Tuple } from '../flow';
import { STATUS } from '../flow';
import { IPPROTO } from '../packet';
import type { ConnStore } from './store';
import { LIFE_CONFIRMED, LIFE_USED, familyOfKind, protoOfKind, zoneOfKind } from './store';

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
