/**
 * PartitionProcessor: the engine as one Kafka partition sees it. Each partition gets its own
 * engine and its own packet clock (keys put every flow on one partition, so no flow spans two),
 * the way a Kafka Streams task owns its partition's state. That keeps a replay deterministic
 * however the partitions interleave. Besides the engine's events and verdicts it makes the flow
 * accounting records (at DESTROY and every active timeout) and knows the oldest packet an open
 * flow still depends on, which bounds the offset that may be committed.
 */
import { AwaitingVerdict } from '../awaitingVerdict';
import type { CapturedPacket } from '../packet';
import type { Counters, FlowAccountingRecord, FlowEvent, FlowRecord, InvalidPacket } from '../flow';
import { tuplePorts } from '../conntrack/tuple';
import { ConntrackPipeline } from '../pipeline';
import type { PacketVerdict } from '../pipeline';
import type { Sysctl } from '../conntrack/sysctl';
import type { ConntrackRules } from '../conntrack/rules';
import { StateTracker, restoreState } from './stateChangelog';
import type { ChangelogState, StateRecord } from './stateChangelog';

export interface PartitionProcessorOptions {
  sysctl: Sysctl;
  /**
   * NOTRACK, NAT and helper rules. NAT needs both sides of a flow in this partition
   * (docs/topics.md). Each partition has its own expectation table: topics are keyed by the
   * address pair, and without NAT an FTP or TFTP data connection has its master's pair (the
   * helpers trust no other address), so it reaches the same partition.
   */
  rules?: ConntrackRules;
  /** Emit an accounting record for a flow every this many µs of packet time; 0 turns it off. */
  activeTimeoutUs: number;
  /** Keep per-packet verdicts in the output (they are the bulk of the output; off by default). */
  verdicts: boolean;
  /**
   * Note what changes, for stateChanges() (the state changelog, stateChangelog.ts). Off by
   * default: the engine then pays one null test per packet.
   */
  trackState?: boolean;
  /** Told of every judged packet with what metrics count it by (plain values: processors know no metrics library). */
  onJudged?(zone: number, proto: number, bytes: number, v: PacketVerdict): void;
}

/** What one call produced; the caller takes it with drain(). */
export interface PartitionOutput {
  /** Transitions, each with the ctstate of the packet that caused it. */
  events: FlowEvent[];
  verdicts: PacketVerdict[];
  records: FlowAccountingRecord[];
  /** Every INVALID packet, with its tuple and reason (always kept: users alert on them). */
  invalid: InvalidPacket[];
}

/** A flow's accounting while it is open (saved with its entry by the state changelog). */
export interface OpenFlow {
  /** The entry as its last NEW or UPDATE event showed it (what active records carry). */
  flow: FlowRecord;
  /** Index of its first packet (the commit bound: oldestOpenPacket). */
  first: number;
  firstUs: number;
  lastUs: number;
  lastRecordUs: number;
  seen: { orig: Counters; reply: Counters };
  sent: { orig: Counters; reply: Counters };
}

/** A packet as a partition receives it: not yet numbered, with its zone when the source gives one. */
export type ZonedPacket = Omit<CapturedPacket, 'index'> & { zone?: number };

const zero = (): { orig: Counters; reply: Counters } => ({ orig: { packets: 0, bytes: 0 }, reply: { packets: 0, bytes: 0 } });

export class PartitionProcessor {
  private readonly pipeline: ConntrackPipeline;
  private out: PartitionOutput = { events: [], verdicts: [], records: [], invalid: [] };
  private readonly open = new Map<number, OpenFlow>();
  /** Flows in the order they started: [flow id, first packet index]; ended ones are skipped lazily. */
  private readonly startOrder: number[] = [];
  private startHead = 0;
  /** Packets pushed whose verdict has not come out (held ones are part of the saved state). */
  private readonly awaiting = new AwaitingVerdict<ZonedPacket>();
  /** Events of the packet being judged, waiting for its ctstate. */
  private eventsFrom = 0;
  private readonly ports = { sport: 0, dport: 0 };
  private nextIndex = 0;
  private readonly expired: FlowEvent[] = [];
  private readonly tracker: StateTracker | null;

  constructor(private readonly opts: PartitionProcessorOptions) {
    this.pipeline = new ConntrackPipeline(
      { verdict: (v) => this.onVerdict(v), event: (e) => this.onEvent(e) },
      { sysctl: opts.sysctl, shards: 1, zoneOf: (p) => (p as ZonedPacket).zone ?? 0, rules: opts.rules },
    );
    this.tracker = opts.trackState ? new StateTracker() : null;
    if (this.tracker) this.pipeline.engine.soleShard().changes = this.tracker.entries;
  }

  /**
   * Changelog records for everything that changed since the last call (or since construction or
   * restore): entries created or modified (their full value), entries gone (tombstones), and the
   * partition's meta record when it changed. Only with trackState; call it between packets.
   */
  stateChanges(): StateRecord[] {
    if (!this.tracker) throw new Error('stateChanges() needs a PartitionProcessor made with trackState');
    return this.tracker.collect({ pipeline: this.pipeline, open: this.open, waiting: this.awaiting.held, nextIndex: this.nextIndex });
  }

  /**
   * The whole state as the compacted changelog holds it once every stateChanges() so far was
   * written (a local checkpoint's content); undefined while changes are pending. Only with trackState.
   */
  stateSnapshot(): Map<string, Uint8Array> | undefined {
    if (!this.tracker) throw new Error('stateSnapshot() needs a PartitionProcessor made with trackState');
    return this.tracker.snapshot({ pipeline: this.pipeline, open: this.open, waiting: this.awaiting.held, nextIndex: this.nextIndex });
  }

  /**
   * A processor rebuilt from the latest value of every key (a compacted changelog read to its end;
   * keys whose latest value is null are absent), with the options the saved one had. It goes on
   * exactly as the saved one would have.
   */
  static restore(opts: PartitionProcessorOptions, records: ChangelogState): PartitionProcessor {
    const p = new PartitionProcessor(opts);
    const { parts, meta } = restoreState(p.pipeline, records);
    p.nextIndex = parts.nextIndex;
    for (const [index, packet] of parts.waiting) p.awaiting.held.set(index, packet);
    // Flows join startOrder when they start, which is id order (ids number the creating packets).
    for (const [id, f] of parts.open) {
      p.open.set(id, f);
      p.startOrder.push(id, f.first);
    }
    p.tracker?.restoredFrom(meta);
    return p;
  }

  /** Packets numbered by this processor, in partition order (index i as `ctflow classify` counts). */
  get packets(): number {
    return this.nextIndex;
  }

  push(p: ZonedPacket): number {
    const index = this.nextIndex++;
    this.eventsFrom = this.out.events.length;
    this.awaiting.pushing(index, p);
    this.pipeline.pushNumbered(p, index);
    this.awaiting.pushed();
    return index;
  }

  /**
   * Moves the clock without a packet (live mode: an idle partition follows wall time), so
   * timeouts fire on a quiet partition too.
   */
  advanceTo(tsUs: number): void {
    this.pipeline.engine.advance(tsUs, this.expired);
    for (const e of this.expired) this.onEvent(e);
    this.expired.length = 0;
  }

  /** End of input: incomplete fragment trains are reported. Open flows stay open, as in `ctflow events`. */
  end(): void {
    this.pipeline.end();
  }

  drain(): PartitionOutput {
    const o = this.out;
    this.out = { events: [], verdicts: [], records: [], invalid: [] };
    return o;
  }

  /** Index of the first packet of the oldest flow still open (or the next index when none is). */
  oldestOpenPacket(): number {
    while (this.startHead < this.startOrder.length && !this.open.has(this.startOrder[this.startHead])) this.startHead += 2;
    if (this.startHead > 4096 && this.startHead * 2 > this.startOrder.length) {
      this.startOrder.splice(0, this.startHead);
      this.startHead = 0;
    }
    return this.startHead < this.startOrder.length ? this.startOrder[this.startHead + 1] : this.nextIndex;
  }

  get openFlows(): number {
    return this.open.size;
  }

  get engine(): ConntrackPipeline['engine'] {
    return this.pipeline.engine;
  }

  private onEvent(e: FlowEvent): void {
    this.out.events.push(e);
    const id = e.flow.id;
    if (e.type === 'NEW') {
      const first = e.packetIndex ?? this.nextIndex - 1;
      this.open.set(id, { flow: e.flow, first, firstUs: e.tsUs, lastUs: e.tsUs, lastRecordUs: e.tsUs, seen: zero(), sent: zero() });
      this.startOrder.push(id, first);
    } else if (e.type === 'DESTROY') {
      const f = this.open.get(id);
      this.open.delete(id);
      const c = e.flow.counters;
      const sent = f?.sent ?? zero();
      this.out.records.push({
        kind: 'end',
        flow: e.flow,
        reason: e.reason,
        firstUs: f?.firstUs ?? e.flow.startUs,
        lastUs: e.flow.lastUs,
        delta: {
          orig: { packets: c.orig.packets - sent.orig.packets, bytes: c.orig.bytes - sent.orig.bytes },
          reply: { packets: c.reply.packets - sent.reply.packets, bytes: c.reply.bytes - sent.reply.bytes },
        },
        tsUs: e.tsUs,
      });
    } else {
      const f = this.open.get(id);
      if (f) f.flow = e.flow;
      if (this.tracker) this.tracker.flowChanged(id);
    }
  }

  private onVerdict(v: PacketVerdict): void {
    const p = this.awaiting.take(v.index);
    const length = p?.ip.length ?? 0;
    const events = this.out.events;
    for (let i = this.eventsFrom; i < events.length; i++) if (events[i].packetIndex === v.index) events[i].ctstate = v.ctstate;
    if (this.opts.verdicts) this.out.verdicts.push(v);
    if (p) this.opts.onJudged?.(p.zone ?? 0, p.ip.proto, length, v);
    if (v.ctstate === 'INVALID' && p) this.invalidPacket(v, p);
    if (v.flowId === undefined || v.dir === null || v.ctstate === 'INVALID' || v.ctstate === 'UNTRACKED') return;
    const f = this.open.get(v.flowId);
    if (!f) return;
    if (this.tracker) this.tracker.flowChanged(v.flowId);
    const c = v.dir === 'original' ? f.seen.orig : f.seen.reply;
    c.packets++;
    c.bytes += length;
    f.lastUs = v.tsUs;
    const every = this.opts.activeTimeoutUs;
    if (every > 0 && v.tsUs - f.lastRecordUs >= every) this.activeRecord(f, v.tsUs);
  }

  private invalidPacket(v: PacketVerdict, p: ZonedPacket): void {
    const ip = p.ip;
    if (!tuplePorts(ip, this.ports)) this.ports.sport = this.ports.dport = 0;
    const r: InvalidPacket = { tsUs: v.tsUs, zone: p.zone ?? 0, family: ip.family, proto: ip.proto, src: ip.src, dst: ip.dst, sport: this.ports.sport, dport: this.ports.dport, dir: v.dir };
    if (v.flowId !== undefined) r.flowId = v.flowId;
    if (v.state !== undefined) r.state = v.state;
    if (v.reason !== undefined) r.reason = v.reason;
    if (v.detail !== undefined) r.detail = v.detail;
    if (v.note !== undefined) r.note = v.note;
    this.out.invalid.push(r);
  }

  /** Counts since the last record, from the packets seen here (the end record settles on conntrack's own counters). */
  private activeRecord(f: OpenFlow, tsUs: number): void {
    const d = {
      orig: { packets: f.seen.orig.packets - f.sent.orig.packets, bytes: f.seen.orig.bytes - f.sent.orig.bytes },
      reply: { packets: f.seen.reply.packets - f.sent.reply.packets, bytes: f.seen.reply.bytes - f.sent.reply.bytes },
    };
    f.sent = { orig: { ...f.seen.orig }, reply: { ...f.seen.reply } };
    f.lastRecordUs = tsUs;
    this.out.records.push({ kind: 'active', flow: f.flow, firstUs: f.firstUs, lastUs: f.lastUs, delta: d, tsUs });
  }
}
