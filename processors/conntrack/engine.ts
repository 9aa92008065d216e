/**
 * ConntrackEngine: N independent shards chosen by a hash of the zone and the unordered address
 * pair, so both directions of a flow and the ICMP errors quoting it meet in one shard. Time is
 * advanced in every shard before each packet and expiries are merged in deadline order, entry
 * ids are the index of the packet that created the entry, and early drop picks the oldest
 * droppable entry engine-wide: the output is the same for any number of shards.
 *
 * Rules: NOTRACK rules are checked here, before any shard (the raw table runs before conntrack);
 * NAT rules bind new entries in the shard. A NAT'd entry's reply packets carry other addresses
 * than its original ones (the SNAT address, the DNAT'd server), so the address-pair shard key
 * would send the two sides to different shards: with NAT rules the engine runs one shard.
 * Helpers and expectations are engine-wide too (helpers/): an expected connection can have
 * another address pair than its master, so another shard; since packets are judged one at a
 * time, one shared expectation table gives the same answers for any shard count.
 */
import type { IcmpHeader, IpPacket } from '../packet';
import { IPPROTO } from '../packet';
import type { CtStats, FlowEvent, FlowRecord, Verdict } from '../flow';
import { emptyStats, makeVerdict } from '../flow';
import type { Conn } from './conn';
import { Helpers } from './helpers';
import type { ExpectEvent, ExpectationRecord, ExpectationTable } from './helpers/expectations';
import type { ConntrackRules } from './rules';
import { ConntrackShard } from './shard';
import type { ShardHooks } from './shard';
import type { Sysctl } from './sysctl';
import { makeSysctl } from './sysctl';
import { flowHash } from './tuple';
import { NotrackRules } from './rules/notrack';

export interface EngineOptions {
  sysctl?: Sysctl;
  /** Shards asked for; with NAT rules the engine uses one (see above). */
  shards?: number;
  rules?: ConntrackRules;
  /** Expectation events (conntrack -E expect), as they happen. */
  onExpectEvent?: (e: ExpectEvent) => void;
}

/**
 * The hash that places a packet's flow: zone and unordered address pair, so both directions of a
 * flow and the ICMP errors quoting it (by their inner addresses) get the same value. Shards, worker
 * threads and Kafka partitions all split the table by it.
 */
export function flowKeyOf(ip: IpPacket, zone: number): number {
  let a = ip.src;
  let b = ip.dst;
  if ((ip.proto === IPPROTO.ICMP || ip.proto === IPPROTO.ICMPV6) && ip.l4) {
    const inner = (ip.l4 as IcmpHeader).inner;
    if (inner) {
      a = inner.src;
      b = inner.dst;
    }
  }
  return flowHash(zone, a, b);
}

export class ConntrackEngine {
  readonly sysctl: Sysctl;
  private readonly shards: ConntrackShard[];
  private nowUs = 0;
  private readonly pending: FlowEvent[] = [];
  /** prefetch()'s scratch: the tuple hash of each packet's lookup, and the cell found for it. */
  private prefetchCells = new Int32Array(32);
  private prefetchHashes = new Int32Array(32);
  private prefetchSink = 0;
  /** The verdict of a packet the NOTRACK rules match (only its index changes). */
  private readonly untrackedVerdict = makeVerdict(0, 'UNTRACKED', null, undefined, 'notrack');
  /** The raw table's NOTRACK rules; null without any, so a packet costs one test. */
  private readonly notrack: NotrackRules | null;
  /**
   * Packets the NOTRACK rules made UNTRACKED. The kernel has no `conntrack -S` counter for them
   * (they never reach conntrack), so this one is ctflow's own, kept apart from CtStats.
   */
  untracked = 0;
  /** Present only when some rule assigns a helper: without one, no expectation can exist. */
  private readonly helpers: Helpers | undefined;
  private readonly onExpectEvent: ((e: ExpectEvent) => void) | undefined;
  /** While shards expire entries: expectation events held to be put in deadline order (see advance). */
  private expectHeld: ExpectEvent[] | null = null;

  constructor(opts: EngineOptions = {}) {
    this.sysctl = opts.sysctl ?? makeSysctl();
    const nat = opts.rules?.nat ?? [];
    const n = nat.length ? 1 : Math.max(1, Math.floor(opts.shards ?? 1));
    this.notrack = opts.rules?.notrack?.length ? new NotrackRules(opts.rules.notrack) : null;
    this.onExpectEvent = opts.onExpectEvent;
    const helperRules = opts.rules?.helpers ?? [];
    this.helpers = helperRules.length
      ? new Helpers(helperRules, () => this.sysctl.nf_conntrack_expect_max, (e) => this.expectEvent(e))
      : undefined;
    // The shards call back through one small class rather than closures made per engine, so the
    // JIT's inlined call targets stay the same from one engine to the next (no deoptimisation).
    const hooks = new EngineHooks(this);
    this.shards = Array.from({ length: n }, () => new ConntrackShard(this.sysctl, hooks, nat, this.helpers));
  }

  private expectEvent(e: ExpectEvent): void {
    if (this.expectHeld) this.expectHeld.push(e);
    else this.onExpectEvent?.(e);
  }

  /** The expectations waiting, oldest first (conntrack -L expect). */
  expectations(): ExpectationRecord[] {
    return this.helpers?.expectations.list(this.nowUs) ?? [];
  }

  get count(): number {
    let n = 0;
    for (const s of this.shards) n += s.count;
    return n;
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** The shard a packet belongs to: ICMP errors go where the flow they quote lives. */
  shardOf(ip: IpPacket, zone: number): number {
    if (this.shards.length === 1) return 0;
    return flowKeyOf(ip, zone) % this.shards.length;
  }

  /** Moves packet time forward, destroying expired entries; their DESTROY events go to `out`. */
  advance(nowUs: number, out: FlowEvent[]): void {
    if (nowUs < this.nowUs) nowUs = this.nowUs; // time never runs backwards (reordered captures)
    this.nowUs = nowUs;
    if (this.shards.length === 1) {
      this.shards[0].expire(nowUs, out);
    } else {
      const start = out.length;
      // Masters expiring in different shards remove their expectations: hold those events and
      // order them as one shard would have (by deadline, then master id).
      if (this.helpers !== undefined) this.expectHeld = [];
      for (const s of this.shards) s.expire(nowUs, out);
      if (out.length - start > 1) {
        const merged = out.splice(start).sort((x, y) => x.tsUs - y.tsUs || x.flow.id - y.flow.id);
        out.push(...merged);
      }
      if (this.expectHeld) {
        const held = this.expectHeld.sort((x, y) => x.tsUs - y.tsUs || x.expectation.masterId - y.expectation.masterId);
        this.expectHeld = null;
        held.forEach((e) => this.onExpectEvent?.(e));
      }
    }
    if (this.helpers !== undefined) this.helpers.expectations.expire(nowUs);
  }

  /**
   * Judges one (reassembled) IP packet at packet time `tsUs`; events it causes go to `out`. The
   * verdict is an object the engine reuses for every packet (no allocation per packet): read it
   * before the next call, or keep a copy (copyVerdict), never the object itself.
   */
  process(ip: IpPacket, tsUs: number, index: number, out: FlowEvent[], zone = 0): Verdict {
    this.advance(tsUs, out);
    if (this.notrack !== null && this.notrack.matches(ip, zone)) {
      this.untracked++;
      const v = this.untrackedVerdict;
      v.index = index;
      return v;
    }
    const shard = this.shards[this.shardOf(ip, zone)];
    shard.nowUs = this.nowUs;
    const v = shard.process(ip, zone, this.nowUs, index, this.pending);
    if (this.pending.length) {
      out.push(...this.pending);
      this.pending.length = 0;
    }
    return v;
  }

  /**
   * A hint with no effect on any state or output: touches the memory that judging ips[from, to)
   * will read first (each lookup's table cell, then the entry it names). At a million entries
   * those are cache misses, a few hundred nanoseconds each, and one packet's misses depend on each
   * other; done for a group of packets (16 or so) before judging them with process(), the group's
   * misses overlap and process() finds the lines in cache. JavaScript has no prefetch instruction,
   * so these are real loads. Engines with several shards ignore it.
   */
  prefetch(ips: ArrayLike<IpPacket>, from: number, to: number, zone = 0): void {
    if (this.shards.length !== 1 || to <= from) return;
    if (this.prefetchCells.length < to - from) {
      this.prefetchCells = new Int32Array(to - from);
      this.prefetchHashes = new Int32Array(to - from);
    }
    this.prefetchSink = (this.prefetchSink + this.shards[0].prefetch(ips, from, to, zone, this.prefetchHashes, this.prefetchCells)) | 0;
  }

  /** early_drop: evict the oldest entry that is not assured (or is closing), engine-wide. Shards call it when the table is full. */
  makeRoom(): boolean {
    let victim: Conn | undefined;
    let owner: ConntrackShard | undefined;
    for (const s of this.shards) {
      const c = s.oldestDroppable();
      if (c && (!victim || c.id < victim.id)) {
        victim = c;
        owner = s;
      }
    }
    if (!victim || !owner) return false;
    owner.evict(victim, this.pending);
    return true;
  }

  /** The table as it stands now, oldest entry first. */
  list(): FlowRecord[] {
    const all: Array<[Conn, ConntrackShard]> = [];
    for (const s of this.shards) for (const c of s.entries()) all.push([c, s]);
    all.sort((a, b) => a[0].id - b[0].id);
    return all.map(([c, s]) => s.snapshotOf(c, this.nowUs));
  }

  stats(): CtStats {
    const total = emptyStats();
    for (const s of this.shards) {
      for (const k of Object.keys(total) as Array<keyof CtStats>) total[k] += s.stats[k];
    }
    return total;
  }

  /** conntrack -F: destroys every entry. */
  flush(out: FlowEvent[]): void {
    for (const s of this.shards) s.flush(out);
  }

  get clockUs(): number {
    return this.nowUs;
  }

  // state changelog (processors/stream/stateChangelog.ts) ------------------------------------------

  /** The one shard of a one-shard engine: the state changelog saves a partition's engine, which has one. */
  soleShard(): ConntrackShard {
    if (this.shards.length !== 1) throw new Error(`the state changelog needs a one-shard engine (this one has ${this.shards.length})`);
    return this.shards[0];
  }

  /** The expectation table, when helpers are assigned. */
  get expectationTable(): ExpectationTable | undefined {
    return this.helpers?.expectations;
  }

  /** Sets the clock and the NOTRACK counter of a restored engine (before any packet). */
  restoreClock(nowUs: number, untracked: number): void {
    this.nowUs = nowUs;
    this.untracked = untracked;
  }
}

/** What a shard asks of the engine it belongs to (see ShardHooks). */
class EngineHooks implements ShardHooks {
  constructor(private readonly engine: ConntrackEngine) {}

  makeRoom(): boolean {
    return this.engine.makeRoom();
  }

  totalCount(): number {
    return this.engine.count;
  }
}
