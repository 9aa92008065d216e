/**
 * ConntrackShard: one independent connection table and the per-packet path of the kernel's
 * nf_conntrack_in: ICMP errors first (related.ts), then tuple, lookup or creation, the protocol
 * tracker, SEEN_REPLY, confirmation and the events cached while the packet was handled.
 * Pure and synchronous; time is the packet's.
 */
import type { IpPacket } from '../packet';
import { IPPROTO } from '../packet';
import type { CtState, CtStats, DestroyReason, Direction, FlowEvent, FlowRecord, Verdict } from '../flow';
import { STATUS, emptyStats, makeVerdict } from '../flow';
import { Conn } from './conn';
import { EarlyDropOrder } from './earlyDrop';
import { ExpiryQueue } from './expiry';
import type { ConnHelp, Helpers } from './helpers';
import { trackerFor } from './proto';
import { IPCT } from './proto/tracker';
import type { Dir, ProtoTracker, TrackerContext } from './proto/tracker';
import { NatBinder } from './nat';
import { relateIcmpError } from './related';
import type { NatRule } from './rules/nat';
import { ConnStore, LIFE_CONFIRMED, LIFE_USED, ipv4Value, kindOf, zoneOfKind } from './store';
import type { EntryChanges } from './state/changes';
import type { Sysctl } from './sysctl';
import { FlowTable, hashTuple } from './table';
import { invertPorts, tuplePorts } from './tuple';

// Bits and protocol numbers the per-packet path tests, as this module's own constants: a use of
// an imported object's property is a load from the module's exports object and another from the
// object, on every packet.
const SEEN_REPLY = STATUS.SEEN_REPLY, EXPECTED = STATUS.EXPECTED, HELPER = STATUS.HELPER;
const IPCT_NEW = IPCT.NEW, IPCT_REPLY = IPCT.REPLY, IPCT_PROTOINFO = IPCT.PROTOINFO;
const ICMP = IPPROTO.ICMP, ICMPV6 = IPPROTO.ICMPV6;
const USED = LIFE_USED, CONFIRMED = LIFE_CONFIRMED;

export interface ShardHooks {
  /** Called before an entry is created when the whole engine is at nf_conntrack_max: evict one or refuse. */
  makeRoom(): boolean;
  /** Total entries across all shards. */
  totalCount(): number;
}

export class ConntrackShard implements TrackerContext {
  readonly store = new ConnStore();
  private readonly table = new FlowTable(this.store);
  private readonly expiry = new ExpiryQueue(this.store);
  private readonly dropOrder = new EarlyDropOrder(this.store, (slot) => this.droppable(slot));
  readonly stats: CtStats = emptyStats();
  nowUs = 0;
  private out: FlowEvent[] = [];
  private cachedBits = 0;
  private packetIndex = 0;
  private readonly ports = { sport: 0, dport: 0 };
  private readonly replyPorts = { sport: 0, dport: 0 };
  private readonly prefetchPorts = { sport: 0, dport: 0 };
  private readonly due: number[] = [];
  /**
   * The verdict process() returns, rewritten for every packet instead of allocated: at a million
   * packets a second an object per packet is a steady stream of young-generation collections.
   * Valid until the next packet (see ConntrackEngine.process).
   */
  private readonly verdict: Verdict = makeVerdict(0, 'NEW', null);
  /** The view the per-packet path rebinds instead of allocating one per packet. */
  private readonly cursor = new Conn(this.store, 0);
  /** NAT bindings of new entries; null without NAT rules, so the per-packet path pays one test, at creation only. */
  private readonly nat: NatBinder | null;
  /** Helper data of the entries that have any (STATUS.HELPER or EXPECTED set), by slot: few entries, so a side map. */
  private readonly helps = new Map<number, ConnHelp>();
  /** Set while the state changelog tracks this shard: entries touched and destroyed are noted there. */
  changes: EntryChanges | null = null;

  constructor(
    readonly sysctl: Sysctl,
    private readonly hooks: ShardHooks,
    natRules: readonly NatRule[] = [],
    /** The engine's helpers and expectation table; undefined when no helper is assigned anywhere. */
    private readonly helpers?: Helpers,
  ) {
    this.nat = natRules.length ? new NatBinder(natRules, this.store, this.table) : null;
  }

  get count(): number {
    return this.store.live;
  }

  /** Live entries, oldest first. */
  *entries(): IterableIterator<Conn> {
    for (let slot = this.store.head; slot >= 0; slot = this.store.next(slot)) yield new Conn(this.store, slot);
  }

  /** The entry as events and listings show it, with its helper, master and use count when it has them. */
  snapshotOf(conn: Conn, nowUs: number): FlowRecord {
    const rec = conn.snapshot(nowUs, this.stateOf(conn));
    if (conn.status & (STATUS.HELPER | STATUS.EXPECTED)) {
      const help = this.helps.get(conn.slot);
      if (help) this.helpers?.decorate(rec, help);
    }
    return rec;
  }

  /** The entry holding this tuple (ports packed as the store keeps them) in either direction. */
  find(zone: number, proto: number, family: 4 | 6, src: string, dst: string, ports: number): { conn: Conn; dir: Dir } | undefined {
    const kind = kindOf(zone, proto, family);
    const ref = family === 4
      ? this.table.find(kind, ports, ipv4Value(src), ipv4Value(dst), '', '')
      : this.table.find(kind, ports, 0, 0, src, dst);
    return ref < 0 ? undefined : { conn: new Conn(this.store, ref >> 1), dir: (ref & 1) as Dir };
  }

  stateOf(conn: Conn): string | undefined {
    return trackerFor(conn.l4proto).stateName?.(conn);
  }

  /** Destroys every entry whose deadline is at or before `nowUs`, appending DESTROY events. */
  expire(nowUs: number, out: FlowEvent[]): void {
    this.expiry.popExpired(nowUs, this.due);
    if (this.due.length === 0) return; // (truncating an array costs a runtime call: only when needed)
    this.out = out;
    for (const slot of this.due) this.destroy(new Conn(this.store, slot), 'timeout', this.store.expiresUs(slot));
    this.due.length = 0;
  }

  /** The oldest entry that early_drop may evict (not assured, or assured in a closing TCP state). */
  oldestDroppable(): Conn | undefined {
    const slot = this.dropOrder.oldest();
    return slot < 0 ? undefined : new Conn(this.store, slot);
  }

  private droppable(slot: number): boolean {
    if (!(this.store.status(slot) & STATUS.ASSURED)) return true;
    const conn = new Conn(this.store, slot);
    return trackerFor(conn.l4proto).canEarlyDrop?.(conn) ?? false;
  }

  evict(conn: Conn, out: FlowEvent[]): void {
    this.out = out;
    this.stats.early_drop++;
    this.destroy(conn, 'early_drop', this.nowUs);
  }

  flush(out: FlowEvent[]): void {
    this.out = out;
    for (const conn of [...this.entries()]) this.destroy(conn, 'flush', this.nowUs);
  }

  process(ip: IpPacket, zone: number, nowUs: number, index: number, out: FlowEvent[]): Verdict {
    this.nowUs = nowUs;
    this.out = out;
    this.packetIndex = index;
    if (ip.proto === ICMP || ip.proto === ICMPV6) {
      const related = relateIcmpError(ip, zone, this);
      if (related) {
        if (related.ctstate === 'INVALID') this.stats.error++;
        return this.judged(index, related.ctstate, related.dir, related.state, related.reason, undefined, undefined, related.flowId);
      }
    }
    const tracker = trackerFor(ip.proto);
    const ports = this.ports;
    for (;;) {
      if (!tuplePorts(ip, ports)) return this.invalid(index, `${tracker.name}_header_missing`, undefined, ip.l4Error);
      const kind = kindOf(zone, ip.proto, ip.family);
      const packed = ((ports.sport << 16) | ports.dport) >>> 0;
      const ref = ip.family === 4
        ? this.table.find(kind, packed, ip.src4 ?? ipv4Value(ip.src), ip.dst4 ?? ipv4Value(ip.dst), '', '')
        : this.table.find(kind, packed, 0, 0, ip.src, ip.dst);
      let v: Verdict | null;
      if (ref >= 0) {
        this.stats.found++;
        v = this.track(tracker, ref >> 1, (ref & 1) as Dir, ip, index);
      } else {
        v = this.trackNew(tracker, ip, kind, index);
      }
      if (v !== null) return v; // null: the tracker destroyed the entry to let this packet open a new one
    }
  }

  /**
   * For each packet of ips[from, to), loads the table cell its lookup will read first, then the
   * whole record of the entry that cell names, so the cache misses of the group overlap instead
   * of each packet waiting for its own (see ConntrackEngine.prefetch). Three passes: hashes (no
   * memory touched), cells, records; the last two are tight loops of independent loads. Reads
   * only; the returned sum means nothing, it keeps the loads from being optimised away.
   */
  prefetch(ips: ArrayLike<IpPacket>, from: number, to: number, zone: number, hashes: Int32Array, cells: Int32Array): number {
    const ports = this.prefetchPorts;
    let n = 0;
    for (let k = from; k < to; k++) {
      const ip = ips[k];
      if (!tuplePorts(ip, ports)) continue;
      const kind = kindOf(zone, ip.proto, ip.family);
      const packed = ((ports.sport << 16) | ports.dport) >>> 0;
      hashes[n++] = ip.family === 4
        ? hashTuple(kind, packed, ip.src4 ?? ipv4Value(ip.src), ip.dst4 ?? ipv4Value(ip.dst), '', '')
        : hashTuple(kind, packed, 0, 0, ip.src, ip.dst);
    }
    this.table.loadCells(hashes, cells, n);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const cell = cells[k];
      if (cell > 0) sum += this.store.touch((cell - 1) >> 1);
    }
    return sum;
  }

  /**
   * The rest of nf_conntrack_in for an entry found (or just created): the tracker, SEEN_REPLY,
   * confirmation, the expiry and the cached events. A method of its own, apart from creation,
   * so the JIT keeps this per-packet path compact. Returns null when the tracker asks to repeat.
   */
  private track(tracker: ProtoTracker, slot: number, dir: Dir, ip: IpPacket, index: number): Verdict | null {
    const store = this.store;
    // Whatever the verdict, the tracker may have written the entry (an INVALID packet can still
    // move TCP's last-packet fields or shorten a timeout, SCTP keeps a chunk's state change).
    if (this.changes !== null) this.changes.mark(slot);
    const conn = this.cursor.rebind(slot);
    const status = store.status(slot);
    const ctstate: CtState = dir === 1 || status & SEEN_REPLY ? 'ESTABLISHED' : status & EXPECTED ? 'RELATED' : 'NEW';
    this.cachedBits = 0;
    const res = tracker.packet(conn, dir, ip, this);
    if (res.verdict === 'repeat') return null;
    if (res.verdict === 'invalid') return this.rejected(tracker, conn, index, res.reason, res.detail);
    if (dir === 1 && !(store.status(slot) & SEEN_REPLY)) {
      store.setStatus(slot, store.status(slot) | SEEN_REPLY);
      this.cachedBits |= IPCT_REPLY;
    }
    const verdict = this.judged(index, ctstate, dir === 0 ? 'original' : 'reply', tracker.stateName?.(conn), res.note, undefined, res.detail, store.id(slot));
    const life = store.life(slot);
    // nf_nat binds a new entry at the nat hooks: after conntrack judged its first packet, before
    // the helper reads that packet (a NAT'd entry's helper expects for the NAT'd tuples) and
    // before confirmation, which fails when the bound reply tuple is taken.
    const natClash = this.nat !== null && (life & (USED | CONFIRMED)) === USED && !this.bindNat(slot, ip);
    // The assigned helper reads the packet before confirmation (nf_confirm). When it drops the
    // packet the verdict (conntrack's, already given) stays and says why; a first packet's entry
    // is then never confirmed. Entries without a helper pay one bit test.
    if (status & HELPER && life & USED) {
      const dropped = this.help(conn, dir, ip, ctstate === 'ESTABLISHED');
      if (dropped !== undefined) {
        verdict.reason ??= dropped;
        if (!(life & CONFIRMED)) {
          this.forgetHelp(conn);
          this.nat?.forget(slot);
          store.release(slot);
          return verdict;
        }
      }
    }
    if (life & USED) {
      if (!(life & CONFIRMED)) {
        if (natClash) return this.insertFailed(conn, verdict);
        this.confirm(conn);
      }
      this.expiry.schedule(slot);
      this.deliver(conn);
    }
    return verdict;
  }

  /** No entry has the packet's tuple: make one (ports in this.ports) and track the packet with it. */
  private trackNew(tracker: ProtoTracker, ip: IpPacket, kind: number, index: number): Verdict | null {
    if (!invertPorts(ip.proto, this.ports.sport, this.ports.dport, this.replyPorts)) return this.invalid(index, `${tracker.name}_untrackable_type`);
    if (this.hooks.totalCount() >= this.sysctl.nf_conntrack_max && !this.hooks.makeRoom()) {
      this.stats.drop++;
      return this.invalid(index, 'table_full');
    }
    const slot = this.create(ip, kind, index);
    if (this.helpers !== undefined && this.helpers.active) this.attachHelp(slot, ip, kind);
    return this.track(tracker, slot, 0, ip, index);
  }

  /** init_conntrack's part for helpers: the expectation the new entry fulfils, and the helper a rule assigns. */
  private attachHelp(slot: number, ip: IpPacket, kind: number): void {
    const help = this.helpers!.attach(ip, zoneOfKind(kind), this.ports.sport, this.ports.dport, this.nowUs);
    if (!help) return;
    this.helps.set(slot, help);
    if (help.master !== undefined) this.masterChanged(help.master); // its use count grew
    let status = this.store.status(slot);
    if (help.masterId !== undefined) status |= STATUS.EXPECTED;
    if (help.helper) status |= STATUS.HELPER;
    this.store.setStatus(slot, status);
  }

  /**
   * A new entry's NAT binding: an expected connection whose master's NAT helper set the binding
   * follows its master (nf_nat_follow_master), any other goes through the rules. False when the
   * bound reply tuple is taken.
   */
  private bindNat(slot: number, ip: IpPacket): boolean {
    const follow = this.store.status(slot) & STATUS.EXPECTED ? this.helps.get(slot)?.follow : undefined;
    return follow ? this.nat!.bindFollow(slot, follow) : this.nat!.bind(slot, ip);
  }

  /** The helper's reading of an accepted packet: why the kernel's helper would drop it, or undefined. */
  private help(conn: Conn, dir: Dir, ip: IpPacket, established: boolean): string | undefined {
    const help = this.helps.get(conn.slot);
    if (!help || !this.helpers) return undefined;
    // The view itself: its tuples are only built (getters) when a helper announces a connection.
    const dropped = this.helpers.help(help, conn, dir, ip, established, this.nowUs);
    // A NAT helper resized a command: from now on the TCP tracker asks for the offsets (IPS_SEQ_ADJUST).
    if (help.seqadj && !(conn.status & STATUS.SEQ_ADJUST)) conn.status |= STATUS.SEQ_ADJUST;
    return dropped;
  }

  /** The entry's helper data goes: its expectations with it, and the reference it held on its master. */
  private forgetHelp(conn: Conn, tsUs = this.nowUs): void {
    if (!(conn.status & (STATUS.HELPER | STATUS.EXPECTED))) return;
    const help = this.helps.get(conn.slot);
    if (!help) return;
    this.helps.delete(conn.slot);
    this.helpers?.destroyed(help, conn.id, tsUs);
    if (help.master !== undefined) this.masterChanged(help.master); // its use count fell
  }

  /** For the state changelog: the entry whose help data is `master` (if still live) changed. Helped entries are few. */
  private masterChanged(master: ConnHelp): void {
    if (this.changes === null) return;
    for (const [slot, help] of this.helps) {
      if (help === master) {
        this.changes.mark(slot);
        return;
      }
    }
  }

  /**
   * __nf_conntrack_confirm finding the (NAT'd) reply tuple already in the table: the entry is
   * dropped with the packet. The packet was judged NEW before (the kernel logs it so at
   * prerouting), so the verdict stays, without an entry.
   */
  private insertFailed(conn: Conn, verdict: Verdict): Verdict {
    this.stats.insert_failed++;
    this.forgetHelp(conn);
    this.nat?.forget(conn.slot);
    this.store.release(conn.slot);
    verdict.flowId = undefined;
    verdict.reason = 'nat_tuple_taken';
    return verdict;
  }

  /** An INVALID verdict from the tracker: the entry keeps its state, or, not yet confirmed, is dropped. */
  private rejected(tracker: ProtoTracker, conn: Conn, index: number, reason: string, detail?: Record<string, number>): Verdict {
    const v = this.invalid(index, reason, detail);
    if (conn.confirmed) {
      // A tracker can change the protocol state and then refuse the packet (SCTP: a state change
      // for one chunk, a bad tag on the next; the kernel keeps the change too). An ASSURED entry
      // that became closing that way is evictable again, as if the packet had been accepted:
      // early_drop looks at the entry's current state (nf_conntrack_core.c, early_drop_list),
      // so the eviction order must not depend on the path the state took.
      if (this.cachedBits & IPCT_PROTOINFO && conn.assured && this.droppable(conn.slot)) this.dropOrder.droppableAgain(conn.slot);
      const state = tracker.stateName?.(conn);
      if (state !== undefined) v.state = state;
      v.flowId = conn.id;
    } else {
      this.forgetHelp(conn);
      this.store.release(conn.slot);
    }
    return v;
  }

  /** A new, unconfirmed entry's slot for the packet's tuple (ports in this.ports, reply ports in this.replyPorts). */
  private create(ip: IpPacket, kind: number, index: number): number {
    const s = this.store;
    const slot = s.alloc();
    s.setKind(slot, kind);
    s.setTuple(slot, 0, ip.family, ip.src, ip.dst, ((this.ports.sport << 16) | this.ports.dport) >>> 0, ip.src4, ip.dst4);
    s.setTuple(slot, 1, ip.family, ip.dst, ip.src, ((this.replyPorts.sport << 16) | this.replyPorts.dport) >>> 0, ip.dst4, ip.src4);
    s.setId(slot, index + 1);
    s.setStart(slot, this.nowUs);
    return slot;
  }

  // TrackerContext ---------------------------------------------------------------------------

  refresh(conn: Conn, dir: Dir, ip: IpPacket, timeoutSec: number): void {
    this.store.setExpiresUs(conn.slot, this.nowUs + timeoutSec * 1e6);
    this.account(conn, dir, ip);
  }

  kill(conn: Conn, reason: DestroyReason, accountFor?: { dir: Dir; ip: IpPacket }): void {
    if (accountFor) this.account(conn, accountFor.dir, accountFor.ip);
    this.destroy(conn, reason, this.nowUs);
  }

  event(_conn: Conn, bits: number): void {
    this.cachedBits |= bits;
  }

  seqOffset(conn: Conn, dir: Dir, seq: number): number {
    const adjust = this.helps.get(conn.slot)?.seqadj;
    return adjust ? adjust[dir].offset(seq) : 0;
  }

  // internals --------------------------------------------------------------------------------

  private account(conn: Conn, dir: Dir, ip: IpPacket): void {
    this.store.account(conn.slot, dir, ip.length, this.nowUs);
  }

  private confirm(conn: Conn): void {
    conn.markConfirmed();
    conn.status |= STATUS.CONFIRMED;
    this.table.insert(conn.slot);
    this.store.link(conn.slot);
    this.dropOrder.added(conn.slot);
    this.stats.insert++;
    this.cachedBits |= IPCT_NEW;
  }

  /** nf_ct_deliver_cached_events: one NEW or UPDATE per packet carrying what changed. */
  private deliver(conn: Conn): void {
    const bits = this.cachedBits;
    this.cachedBits = 0;
    // A protocol state change can make an ASSURED entry evictable again (a connection closing).
    if (bits & IPCT_PROTOINFO && conn.assured && this.droppable(conn.slot)) this.dropOrder.droppableAgain(conn.slot);
    if (bits === 0 || !this.sysctl.nf_conntrack_events) return;
    this.out.push({
      type: bits & IPCT_NEW ? 'NEW' : 'UPDATE',
      tsUs: this.nowUs,
      flow: this.snapshotOf(conn, this.nowUs),
      protoinfo: (bits & IPCT_PROTOINFO) !== 0,
      packetIndex: this.packetIndex,
    });
  }

  /** Ends an entry: DESTROY event, out of the table, slot released (its id and TCP state stay readable until reuse). */
  private destroy(conn: Conn, reason: DestroyReason, tsUs: number): void {
    if (conn.dead) return;
    conn.status |= STATUS.DYING;
    if (conn.confirmed) {
      this.table.remove(conn.slot);
      if (this.nat !== null) this.nat.forget(conn.slot);
      if (this.sysctl.nf_conntrack_events) {
        const ev: FlowEvent = { type: 'DESTROY', tsUs, flow: this.snapshotOf(conn, tsUs), protoinfo: true, reason };
        if (reason !== 'timeout') ev.packetIndex = this.packetIndex;
        this.out.push(ev);
      }
    }
    this.forgetHelp(conn, tsUs);
    if (this.changes !== null && conn.confirmed) this.changes.destroyed(conn.id);
    this.store.release(conn.slot);
  }

  // state changelog ------------------------------------------------------------------------------

  /** The entry's helper data, if it has any (for the state changelog). */
  helpOf(slot: number): ConnHelp | undefined {
    return this.helps.get(slot);
  }

  /** Whether NAT's by-source index holds the entry (for the state changelog). */
  natIndexed(slot: number): boolean {
    return this.nat !== null && this.nat.indexed(slot);
  }

  /** Room for `n` entries about to be restored (ConnStore and tuple hash sized once). */
  reserveEntries(n: number): void {
    this.store.reserve(n);
    this.table.reserve(n);
  }

  /**
   * Puts a restored entry (its record loaded into `slot`) into every structure a confirmed entry
   * is in. Called in id order, which is the order entries were confirmed in, so the creation
   * chain, the early-drop queue and NAT's by-source lists come out in their original order. The
   * tuple hash holds no duplicate tuples (a new entry's tuples are looked up first, and NAT
   * refuses a taken reply tuple), so lookups do not depend on the order of insertion.
   */
  restoreEntry(slot: number, help: ConnHelp | undefined, natIndexed: boolean): void {
    this.table.insert(slot);
    this.store.link(slot);
    this.dropOrder.added(slot);
    this.expiry.restore(slot);
    if (help !== undefined) this.helps.set(slot, help);
    if (natIndexed) this.nat?.reindex(slot);
  }

  private invalid(index: number, reason: string, detail?: Record<string, number>, note?: string): Verdict {
    this.stats.invalid++;
    return this.judged(index, 'INVALID', null, undefined, reason, note ? note : undefined, detail ? detail : undefined, undefined);
  }

  /** Writes every field of this packet's verdict (the one object process() returns each time). */
  private judged(
    index: number,
    ctstate: CtState,
    dir: Direction | null,
    state: string | undefined,
    reason: string | undefined,
    note: string | undefined,
    detail: Record<string, number> | undefined,
    flowId: number | undefined,
  ): Verdict {
    const v = this.verdict;
    v.index = index;
    v.ctstate = ctstate;
    v.dir = dir;
    v.state = state;
    v.reason = reason;
    v.note = note;
    v.detail = detail;
    v.flowId = flowId;
    return v;
  }
}
