/**
 * ConntrackShard: one independent connection table and the per-packet path of the kernel's
 * nf_conntrack_in: ICMP errors first (related.ts), then tuple, lookup or creation, the protocol
 * tracker, SEEN_REPLY, confirmation and the events cached while the packet was handled.
 * Pure and synchronous; time is the packet's.
 */
import type { IpPacket } from '../packet';
import { IPPROTO } from '../packet';
import type { CtState, CtStats, DestroyReason, FlowEvent, Verdict } from '../flow';
import { STATUS, emptyStats } from '../flow';
import { Conn } from './conn';
import { ExpiryQueue } from './expiry';
import { trackerFor } from './proto';
import { IPCT } from './proto/tracker';
import type { Dir, TrackerContext } from './proto/tracker';
import { relateIcmpError } from './related';
import type { Sysctl } from './sysctl';
import { invertTuple, packetTuple, tupleKey } from './tuple';

export interface ShardHooks {
  /** Called before an entry is created when the whole engine is at nf_conntrack_max: evict one or refuse. */
  makeRoom(): boolean;
  /** Total entries across all shards. */
  totalCount(): number;
}

export class ConntrackShard implements TrackerContext {
  private readonly table = new Map<string, Conn>();
  /** Live entries by id; an id is the creating packet's index + 1, so iteration is oldest first. */
  private readonly conns = new Map<number, Conn>();
  private readonly expiry = new ExpiryQueue();
  readonly stats: CtStats = emptyStats();
  nowUs = 0;
  private out: FlowEvent[] = [];
  private cachedBits = 0;
  private packetIndex = 0;

  constructor(
    readonly sysctl: Sysctl,
    private readonly hooks: ShardHooks,
  ) {}

  get count(): number {
    return this.conns.size;
  }

  entries(): IterableIterator<Conn> {
    return this.conns.values();
  }

  lookup(key: string): Conn | undefined {
    return this.table.get(key);
  }

  stateOf(conn: Conn): string | undefined {
    return conn.proto === undefined ? undefined : trackerFor(conn.l4proto).stateName?.(conn);
  }

  /** Destroys every entry whose deadline is at or before `nowUs`, appending DESTROY events. */
  expire(nowUs: number, out: FlowEvent[]): void {
    const due: Conn[] = [];
    this.expiry.popExpired(nowUs, due);
    this.out = out;
    for (const conn of due) this.destroy(conn, 'timeout', conn.expiresUs);
  }

  /** The oldest entry that early_drop may evict (not assured, or assured in a closing TCP state). */
  oldestDroppable(): Conn | undefined {
    for (const conn of this.conns.values()) {
      if (!conn.assured || trackerFor(conn.l4proto).canEarlyDrop?.(conn)) return conn;
    }
    return undefined;
  }

  evict(conn: Conn, out: FlowEvent[]): void {
    this.out = out;
    this.stats.early_drop++;
    this.destroy(conn, 'early_drop', this.nowUs);
  }

  flush(out: FlowEvent[]): void {
    this.out = out;
    for (const conn of [...this.conns.values()]) this.destroy(conn, 'flush', this.nowUs);
  }

  process(ip: IpPacket, zone: number, nowUs: number, index: number, out: FlowEvent[]): Verdict {
    this.nowUs = nowUs;
    this.out = out;
    this.packetIndex = index;
    if (ip.proto === IPPROTO.ICMP || ip.proto === IPPROTO.ICMPV6) {
      const related = relateIcmpError(ip, zone, this);
      if (related) {
        if (related.ctstate === 'INVALID') this.stats.error++;
        return { index, ...related };
      }
    }
    const tracker = trackerFor(ip.proto);
    for (;;) {
      const tuple = packetTuple(ip);
      if (!tuple) return this.invalid(index, `${tracker.name}_header_missing`, undefined, ip.l4Error);
      const key = tupleKey(zone, ip.proto, tuple);
      let conn = this.table.get(key);
      let dir: Dir = 0;
      if (conn) {
        dir = conn.origKey === key ? 0 : 1;
        this.stats.found++;
      } else {
        const reply = invertTuple(tuple, ip.proto);
        if (!reply) return this.invalid(index, `${tracker.name}_untrackable_type`);
        if (this.hooks.totalCount() >= this.sysctl.nf_conntrack_max && !this.hooks.makeRoom()) {
          this.stats.drop++;
          return this.invalid(index, 'table_full');
        }
        conn = new Conn(index + 1, zone, ip.family, ip.proto, tuple, reply, key, tupleKey(zone, ip.proto, reply), nowUs);
      }
      const ctstate: CtState =
        dir === 1 || conn.has(STATUS.SEEN_REPLY) ? 'ESTABLISHED' : conn.has(STATUS.EXPECTED) ? 'RELATED' : 'NEW';
      this.cachedBits = 0;
      const res = tracker.packet(conn, dir, ip, this);
      if (res.verdict === 'repeat') continue;
      if (res.verdict === 'invalid') {
        const v = this.invalid(index, res.reason, res.detail);
        if (conn.confirmed) {
          const state = this.stateOf(conn);
          if (state !== undefined) v.state = state;
          v.flowId = conn.id;
        }
        return v;
      }
      if (dir === 1 && !conn.has(STATUS.SEEN_REPLY)) {
        conn.status |= STATUS.SEEN_REPLY;
        this.cachedBits |= IPCT.REPLY;
      }
      if (!conn.dead) {
        if (!conn.confirmed) this.confirm(conn);
        this.expiry.schedule(conn);
        this.deliver(conn);
      }
      const verdict: Verdict = { index, ctstate, dir: dir === 0 ? 'original' : 'reply', flowId: conn.id };
      const state = this.stateOf(conn);
      if (state !== undefined) verdict.state = state;
      if (res.note !== undefined) verdict.reason = res.note;
      if (res.detail !== undefined) verdict.detail = res.detail;
      return verdict;
    }
  }

  // TrackerContext ---------------------------------------------------------------------------

  refresh(conn: Conn, dir: Dir, ip: IpPacket, timeoutSec: number): void {
    conn.expiresUs = this.nowUs + timeoutSec * 1e6;
    this.account(conn, dir, ip);
  }

  kill(conn: Conn, reason: DestroyReason, accountFor?: { dir: Dir; ip: IpPacket }): void {
    if (accountFor) this.account(conn, accountFor.dir, accountFor.ip);
    this.destroy(conn, reason, this.nowUs);
  }

  event(_conn: Conn, bits: number): void {
    this.cachedBits |= bits;
  }

  // internals --------------------------------------------------------------------------------

  private account(conn: Conn, dir: Dir, ip: IpPacket): void {
    const c = dir === 0 ? conn.counters.orig : conn.counters.reply;
    c.packets++;
    c.bytes += ip.length;
    conn.lastUs = this.nowUs;
  }

  private confirm(conn: Conn): void {
    conn.confirmed = true;
    conn.status |= STATUS.CONFIRMED;
    this.table.set(conn.origKey, conn);
    this.table.set(conn.replyKey, conn);
    this.conns.set(conn.id, conn);
    this.stats.insert++;
    this.cachedBits |= IPCT.NEW;
  }

  /** nf_ct_deliver_cached_events: one NEW or UPDATE per packet carrying what changed. */
  private deliver(conn: Conn): void {
    const bits = this.cachedBits;
    this.cachedBits = 0;
    if (bits === 0 || !this.sysctl.nf_conntrack_events) return;
    this.out.push({
      type: bits & IPCT.NEW ? 'NEW' : 'UPDATE',
      tsUs: this.nowUs,
      flow: conn.snapshot(this.nowUs, this.stateOf(conn)),
      protoinfo: (bits & IPCT.PROTOINFO) !== 0,
      packetIndex: this.packetIndex,
    });
  }

  private destroy(conn: Conn, reason: DestroyReason, tsUs: number): void {
    if (conn.dead) return;
    conn.dead = true;
    conn.status |= STATUS.DYING;
    if (!conn.confirmed) return;
    this.table.delete(conn.origKey);
    this.table.delete(conn.replyKey);
    this.conns.delete(conn.id);
    if (!this.sysctl.nf_conntrack_events) return;
    const ev: FlowEvent = { type: 'DESTROY', tsUs, flow: conn.snapshot(tsUs, this.stateOf(conn)), protoinfo: true, reason };
    if (reason !== 'timeout') ev.packetIndex = this.packetIndex;
    this.out.push(ev);
  }

  private invalid(index: number, reason: string, detail?: Record<string, number>, note?: string): Verdict {
    this.stats.invalid++;
    const v: Verdict = { index, ctstate: 'INVALID', dir: null, reason };
    if (detail) v.detail = detail;
    if (note) v.note = note;
    return v;
  }
}
