/**
 * PipelineTelemetry: the observer that remembers. It folds what a pipeline reports into running
 * totals (packets, bytes, INVALID reasons, transitions, flows, dead letters) and keeps each
 * partition's lag and table, so every exporter reads the same numbers at its own pace: the
 * Prometheus registry when scraped, the OTLP reader when it exports, the live API on request.
 *
 * Per-packet work is one Map update with a numeric key; labels are only spelled out when an
 * exporter reads, which keeps the hot path cheap at millions of packets per second.
 */
import type { CtState, FlowEvent } from '../../processors/flow';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import { entryState, TRACKED_PROTOS, unrepliedTimeoutSeconds } from './labels';
import { isRemote } from './observer';
import type { BatchSample, PacketSample, PipelineObserver, RemoteTable, TableSource, TableView } from './observer';
import { answerTables, mergeAnswers } from './tableRequests';
import type { TableAnswer, TableRequest } from './tableRequests';
import type { TableSnapshot } from './tableSnapshot';

export const CTSTATES: readonly CtState[] = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'];
const CTSTATE_INDEX: Record<CtState, number> = { NEW: 0, ESTABLISHED: 1, RELATED: 2, INVALID: 3, UNTRACKED: 4 };

export interface TrafficCount {
  zone: number;
  proto: number;
  ctstate: CtState;
  packets: number;
  bytes: number;
}

export interface InvalidCount {
  zone: number;
  proto: number;
  reason: string;
  packets: number;
}

export interface TransitionCount {
  proto: number;
  from: string;
  to: string;
  count: number;
}

export interface FlowCount {
  zone: number;
  proto: number;
  /** Destroyed flows only: why the entry ended. */
  reason?: string;
  count: number;
}

export interface PartitionStatus {
  partition: number;
  messages: number;
  packets: number;
  deadLetters: number;
  /** Messages behind the high watermark, when the source knows it. */
  consumerLag?: number;
  /** Packet clock after the last batch (µs). */
  packetClockUs?: number;
}

/**
 * The running totals, as plain data: a telemetry in another thread (a share of a capture replay)
 * sends them, and this thread's adds them up (every total is a sum over packets or flows).
 */
export interface TelemetryCounts {
  traffic: TrafficCount[];
  invalid: InvalidCount[];
  transitions: TransitionCount[];
  created: FlowCount[];
  destroyed: FlowCount[];
  protosSeen: number[];
}

export interface TelemetryOptions {
  /** Flows in the top-N (default 20). */
  topFlows?: number;
  /** A table snapshot younger than this is reused (ms, default 10 s). */
  refreshMs?: number;
  /** Wall clock in ms (tests pass their own). */
  now?: () => number;
}

/** The state a flow leaves from at NEW and arrives at on DESTROY, in the transition counts. */
export const BEFORE_NEW = 'NONE';
export const AFTER_DESTROY = 'DESTROYED';

export class PipelineTelemetry implements PipelineObserver {
  readonly topN: number;
  private readonly refreshMs: number;
  readonly now: () => number;
  private readonly traffic = new Map<number, TrafficCount>();
  private readonly invalid = new Map<string, InvalidCount>();
  private readonly transitionCounts = new Map<string, TransitionCount>();
  private readonly created = new Map<number, FlowCount>();
  private readonly destroyed = new Map<string, FlowCount>();
  /** Each partition's open flows and the state they were last counted in (for from/to transitions). */
  private readonly flowStates = new Map<number, Map<number, string>>();
  private readonly parts = new Map<number, PartitionStatus>();
  private readonly tableViews = new Map<number, TableView | RemoteTable>();
  private readonly protosSeen = new Set<number>(TRACKED_PROTOS);
  private readonly batchListeners = new Set<(b: BatchSample) => void>();
  private cached?: TableSnapshot;
  /** The walk under way, which every reader that comes meanwhile waits for rather than start another. */
  private walking?: Promise<TableSnapshot>;

  constructor(o: TelemetryOptions = {}) {
    this.topN = o.topFlows ?? 20;
    this.refreshMs = o.refreshMs ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  // ---- PipelineObserver -------------------------------------------------------------------

  packet(p: PacketSample): void {
    const t = this.trafficOf(p.zone, p.proto, p.ctstate);
    t.packets++;
    t.bytes += p.bytes;
    if (p.ctstate === 'INVALID') this.invalidOf(p.zone, p.proto, p.reason ?? 'unknown').packets++;
  }

  events(partition: number, events: readonly FlowEvent[]): void {
    let states = this.flowStates.get(partition);
    if (!states) {
      states = new Map();
      this.flowStates.set(partition, states);
    }
    for (const e of events) {
      const f = e.flow;
      const state = entryState(f);
      const before = states.get(f.id);
      if (e.type === 'NEW') {
        this.transition(f.proto, BEFORE_NEW, state);
        states.set(f.id, state);
        this.countCreated(f.zone, f.proto);
        this.protosSeen.add(f.proto);
      } else if (e.type === 'UPDATE') {
        // A flow first seen mid-life (observer attached late, host events) has no known start: not counted.
        if (before !== undefined && before !== state) this.transition(f.proto, before, state);
        states.set(f.id, state);
      } else {
        if (before !== undefined && before !== state) this.transition(f.proto, before, state);
        this.transition(f.proto, state, AFTER_DESTROY);
        states.delete(f.id);
        this.countDestroyed(f.zone, f.proto, e.reason ?? 'unknown');
      }
    }
  }

  batch(b: BatchSample): void {
    const s = this.part(b.partition);
    s.messages += b.messages;
    s.packets += b.packets;
    if (b.packetClockUs !== undefined) s.packetClockUs = b.packetClockUs;
    if (b.highWatermark !== undefined && b.nextOffset !== undefined) {
      const lag = BigInt(b.highWatermark) - BigInt(b.nextOffset);
      s.consumerLag = lag > 0n ? Number(lag) : 0;
    }
    for (const l of this.batchListeners) l(b);
  }

  /** Counted by partition only: reasons are free text, unbounded as a label. */
  deadLetter(partition: number, _reason: string): void {
    this.part(partition).deadLetters++;
  }

  table(partition: number, view: TableView | RemoteTable | undefined): void {
    // A new engine (first batch, or a rebalance) starts with no flows: forget the old states.
    this.flowStates.delete(partition);
    this.cached = undefined;
    this.walking = undefined;
    if (view) {
      this.tableViews.set(partition, view);
      this.part(partition);
    } else {
      // Revoked: its lag is another member's now; its counters stay, counters never go back.
      this.tableViews.delete(partition);
      const s = this.parts.get(partition);
      if (s) {
        delete s.consumerLag;
        delete s.packetClockUs;
      }
    }
  }

  // ---- readers ------------------------------------------------------------------------------

  trafficCounts(): Iterable<TrafficCount> {
    return this.traffic.values();
  }

  invalidCounts(): Iterable<InvalidCount> {
    return this.invalid.values();
  }

  transitions(): Iterable<TransitionCount> {
    return this.transitionCounts.values();
  }

  createdCounts(): Iterable<FlowCount> {
    return this.created.values();
  }

  destroyedCounts(): Iterable<FlowCount> {
    return this.destroyed.values();
  }

  partitions(): PartitionStatus[] {
    return [...this.parts.values()].sort((a, b) => a.partition - b.partition);
  }

  /** Seconds between the wall clock and a partition's packet clock (undefined before its first batch). */
  eventTimeLagSeconds(p: PartitionStatus): number | undefined {
    return p.packetClockUs === undefined ? undefined : this.now() / 1e3 - p.packetClockUs / 1e6;
  }

  /** Whether any partition's table is open. */
  hasTables(): boolean {
    return this.tableViews.size > 0;
  }

  /**
   * Asks every open table, in this thread or in the partition workers holding them (one request
   * per worker, for its partitions), and merges the answers as one pass over all tables would
   * give them. Nothing crosses threads unless someone asks.
   */
  async ask<R extends TableRequest>(request: R): Promise<TableAnswer<R>> {
    const local: Array<[number, TableView]> = [];
    const remote = new Map<TableSource, number[]>();
    for (const [partition, view] of [...this.tableViews].sort((a, b) => a[0] - b[0])) {
      if (!isRemote(view)) local.push([partition, view]);
      else if (remote.has(view.source)) remote.get(view.source)!.push(partition);
      else remote.set(view.source, [partition]);
    }
    const asked = Promise.all([...remote].map(([source, partitions]) => source.ask(partitions, request)));
    // This thread's tables are read now, as they stand when the request comes.
    const here = answerTables(local, request);
    return mergeAnswers(request, [here, ...(await asked)]);
  }

  /** The knobs of the tables (all partitions share one configuration); undefined before any table. */
  sysctl(): Sysctl | undefined {
    return this.tableViews.values().next().value?.sysctl;
  }

  /** The unreplied-entry timeout of every protocol tracked or seen in a NEW flow. */
  unrepliedTimeouts(): Array<{ proto: number; seconds: number }> {
    const s = this.sysctl();
    if (!s) return [];
    return [...this.protosSeen].sort((a, b) => a - b).map((proto) => ({ proto, seconds: unrepliedTimeoutSeconds(proto, s) }));
  }

  /** The tables as of at most refreshMs ago (walks them again when older). */
  snapshot(): Promise<TableSnapshot> {
    const now = this.now();
    if (this.cached && now - this.cached.takenAtMs < this.refreshMs) return Promise.resolve(this.cached);
    if (this.walking) return this.walking;
    const walk = this.ask({ kind: 'snapshot', topN: this.topN }).then((parts) => {
      // A table that came or went during the walk made it stale: the next reader walks again.
      if (this.walking === walk) this.cached = { ...parts, takenAtMs: now };
      return { ...parts, takenAtMs: now };
    });
    this.walking = walk;
    const done = () => {
      if (this.walking === walk) this.walking = undefined;
    };
    walk.then(done, done);
    return walk;
  }

  /** Walks the tables now (at the end of a replay, so its final state is what is served). */
  refresh(): Promise<TableSnapshot> {
    this.cached = undefined;
    this.walking = undefined;
    return this.snapshot();
  }

  counts(): TelemetryCounts {
    return { traffic: [...this.traffic.values()], invalid: [...this.invalid.values()], transitions: [...this.transitionCounts.values()], created: [...this.created.values()], destroyed: [...this.destroyed.values()], protosSeen: [...this.protosSeen] };
  }

  /** Adds another telemetry's totals to these (the flows it counted are not tracked here: its transitions come counted). */
  addCounts(c: TelemetryCounts): void {
    for (const t of c.traffic) {
      const mine = this.trafficOf(t.zone, t.proto, t.ctstate);
      mine.packets += t.packets;
      mine.bytes += t.bytes;
    }
    for (const i of c.invalid) this.invalidOf(i.zone, i.proto, i.reason).packets += i.packets;
    for (const t of c.transitions) this.transition(t.proto, t.from, t.to, t.count);
    for (const f of c.created) this.countCreated(f.zone, f.proto, f.count);
    for (const f of c.destroyed) this.countDestroyed(f.zone, f.proto, f.reason ?? 'unknown', f.count);
    for (const proto of c.protosSeen) this.protosSeen.add(proto);
  }

  /** Histogram exporters see every batch as it happens. */
  onBatch(listener: (b: BatchSample) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  private part(partition: number): PartitionStatus {
    let s = this.parts.get(partition);
    if (!s) {
      s = { partition, messages: 0, packets: 0, deadLetters: 0 };
      this.parts.set(partition, s);
    }
    return s;
  }

  /** The traffic count of (zone, proto, ctstate), made at 0 on first use. */
  private trafficOf(zone: number, proto: number, ctstate: CtState): TrafficCount {
    const key = (zone * 256 + proto) * 8 + CTSTATE_INDEX[ctstate];
    let t = this.traffic.get(key);
    if (!t) {
      t = { zone, proto, ctstate, packets: 0, bytes: 0 };
      this.traffic.set(key, t);
    }
    return t;
  }

  /** The INVALID count of (zone, proto, reason), made at 0 on first use. */
  private invalidOf(zone: number, proto: number, reason: string): InvalidCount {
    const key = `${zone}/${proto}/${reason}`;
    let i = this.invalid.get(key);
    if (!i) {
      i = { zone, proto, reason, packets: 0 };
      this.invalid.set(key, i);
    }
    return i;
  }

  private countCreated(zone: number, proto: number, count = 1): void {
    this.countFlow(this.created, zone * 256 + proto, zone, proto, undefined, count);
  }

  private countDestroyed(zone: number, proto: number, reason: string, count = 1): void {
    this.countFlow(this.destroyed, `${zone}/${proto}/${reason}`, zone, proto, reason, count);
  }

  private transition(proto: number, from: string, to: string, count = 1): void {
    const key = `${proto}/${from}/${to}`;
    const t = this.transitionCounts.get(key);
    if (t) t.count += count;
    else this.transitionCounts.set(key, { proto, from, to, count });
  }

  private countFlow<K>(m: Map<K, FlowCount>, key: K, zone: number, proto: number, reason?: string, count = 1): void {
    const c = m.get(key);
    if (c) c.count += count;
    else m.set(key, reason === undefined ? { zone, proto, count } : { zone, proto, reason, count });
  }
}
