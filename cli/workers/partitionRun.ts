/**
 * One input partition's synchronous work in the Kafka pipeline (cli/streamPipeline.ts): decode
 * its messages, run its engine (or fleet table), encode the outputs, and say which offset may be
 * committed after them. The same code runs in the pipeline's own thread (workers 1) and in a
 * partition worker (partitionWorker.ts), so the outputs cannot depend on where it ran.
 *
 * It touches nothing outside the partition: counters, metrics, the event-time merge, the
 * changelog topic and commits stay with the pipeline, which reads them off each PartitionStep.
 */
import type { FlowEvent } from '../../processors/flow';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import type { ConntrackRules } from '../../processors/conntrack/rules';
import { PartitionProcessor } from '../../processors/stream/partitionProcessor';
import type { PartitionProcessorOptions } from '../../processors/stream/partitionProcessor';
import type { StateRecord } from '../../processors/stream/stateChangelog';
import { CommitPoint } from '../../processors/stream/commitPoint';
import { FleetProcessor } from '../../processors/stream/fleetProcessor';
import type { ZoneOf } from '../../processors/zones';
import type { InputMessage, OutputMessage } from '../../kafka/client';
import { decodeInputMessage } from '../../ingest/kafka/inputMessages';
import type { InputHandlers, InputKind } from '../../ingest/kafka/inputMessages';
import { FlowEventFormatError, parseFlowEventMessage } from '../../ingest/flowEvents/index';
import type { OutputEncoder } from '../../sinks/kafka/outputTopics';

export interface PartitionRunConfig {
  kind: InputKind | 'flow-events';
  sysctl: Sysctl;
  rules?: ConntrackRules;
  activeTimeoutUs: number;
  verdicts: boolean;
  /** exactly-once: every step carries the state's changes (the changelog records to write with its outputs). */
  changelog: boolean;
  zoneOf?: ZoneOf;
  encoder: OutputEncoder;
  onJudged?: PartitionProcessorOptions['onJudged'];
}

/** Where a partition's reading starts and ends, and (exactly-once) the state it was restored to. */
export interface PartitionStart {
  /** replay: [start, end) offsets to read; live: 0 and no end. */
  start: bigint;
  end: bigint;
  /** The offset after the last message read (where the state ends). */
  nextOffset: string;
  lastPacketUs: number;
  records?: ReadonlyMap<string, Uint8Array>;
}

/** What one batch or tick of a partition produced. */
export interface PartitionStep {
  messages: OutputMessage[];
  /** The offset to commit once `messages` are written (exactly-once: after `stateChanges` too). */
  commit?: string;
  stateChanges?: StateRecord[];
  /** Transitions, in the order the engine made them (a worker may leave them out when nobody reads them: see eventCount). */
  events: FlowEvent[];
  eventCount: number;
  /** Why each dead letter of this step was written, in order. */
  deadLetters: string[];
  /** Input messages read, packets judged by this step; packets judged by the partition so far. */
  inputMessages: number;
  packets: number;
  totalPackets: number;
  invalid: number;
  skipped: number;
  flowRecords: number;
  nextOffset: string;
  lastPacketUs: number;
  /** Every offset of a replay window has been read. */
  done: boolean;
  processingSeconds: number;
}

export class PartitionRun {
  readonly proc: PartitionProcessor;
  /** Flow-events input: the partition's fleet table instead of an engine. */
  private fleet?: FleetProcessor;
  private readonly commitPoint = new CommitPoint();
  private readonly start: bigint;
  private readonly end: bigint;
  done: boolean;
  lastPacketUs: number;
  nextOffset: string;
  private skipped = 0;

  constructor(private readonly partition: number, private readonly c: PartitionRunConfig, at: PartitionStart) {
    const opts: PartitionProcessorOptions = { sysctl: c.sysctl, rules: c.rules, activeTimeoutUs: c.activeTimeoutUs, verdicts: c.verdicts, onJudged: c.onJudged, trackState: c.changelog };
    this.proc = at.records?.size ? PartitionProcessor.restore(opts, at.records) : new PartitionProcessor(opts);
    this.start = at.start;
    this.end = at.end;
    this.done = at.start >= at.end;
    this.lastPacketUs = at.lastPacketUs;
    this.nextOffset = at.nextOffset;
  }

  /** Reads a fetched batch: undefined when the window was already read to its end. */
  batch(messages: readonly InputMessage[]): PartitionStep | undefined {
    if (this.done) return undefined;
    const t0 = process.hrtime.bigint();
    const packetsBefore = this.proc.packets;
    const out: OutputMessage[] = [];
    const deadLetters: string[] = [];
    const enc = this.c.encoder;
    // One set of handlers per batch, not per message (one frame per message means 300k closures
    // per 300k packets); `m` is the message being decoded.
    let m: InputMessage = messages[0];
    const dead = (reason: string, part?: { frame: number; bytes: Uint8Array }) => {
      deadLetters.push(reason);
      enc.deadLetter(m, reason, out, part);
    };
    const handlers: InputHandlers = {
      packet: (p) => {
        this.proc.push(p);
        this.lastPacketUs = p.tsUs;
      },
      dead,
      skipped: () => this.skipped++,
    };
    let read = 0;
    let nextOffset = BigInt(this.nextOffset);
    for (m of messages) {
      const offset = BigInt(m.offset);
      // Below the window, or already read: kafkajs delivers a batch again when the consumer is
      // paused and resumed while the batch is still being handled (its offset not yet resolved).
      if (offset < this.start || offset < nextOffset) continue;
      if (offset >= this.end) break;
      read++;
      this.commitPoint.addMessage(this.proc.packets, m.offset);
      if (this.c.kind === 'flow-events') this.readFlowEvent(m, dead);
      else decodeInputMessage(this.c.kind, m, handlers, this.c.zoneOf);
      nextOffset = offset + 1n;
      if (nextOffset >= this.end) {
        this.done = true;
        this.proc.end();
      }
    }
    const next = read > 0 ? nextOffset.toString() : undefined;
    if (next) this.nextOffset = next;
    const step = this.step(out, next, read, packetsBefore, t0);
    step.deadLetters = deadLetters;
    return step;
  }

  /** An idle partition's clock moved on by `idleMs` of wall time (live): undefined before its first packet. */
  tick(idleMs: number): PartitionStep | undefined {
    if (this.lastPacketUs === 0) return undefined;
    const t0 = process.hrtime.bigint();
    this.proc.advanceTo(this.lastPacketUs + idleMs * 1000);
    return this.step([], this.nextOffset, 0, this.proc.packets, t0);
  }

  /** exactly-once: the whole state, for a checkpoint (undefined while changes are pending). */
  snapshot(): Map<string, Uint8Array> | undefined {
    return this.proc.stateSnapshot();
  }

  /** Drains the engine into `out`; `next` set: the offset reached, with its commit point. */
  private step(out: OutputMessage[], next: string | undefined, inputMessages: number, packetsBefore: number, t0: bigint): PartitionStep {
    const r = this.proc.drain();
    if (this.fleet) {
      const f = this.fleet.drain();
      r.events.push(...f.events);
      r.records.push(...f.records);
      this.skipped += f.ignored.length;
    }
    const enc = this.c.encoder;
    enc.transitions(r.events, this.partition, out);
    enc.invalid(r.invalid, this.partition, out);
    enc.flowRecords(r.records, this.partition, out);
    enc.verdicts(r.verdicts, this.partition, out);
    const skipped = this.skipped;
    this.skipped = 0;
    return {
      messages: out,
      // exactly-once: the next offset, since the state's changes go out with it; at-least-once:
      // the oldest open flow's first message, since the state lives only in memory.
      commit: next === undefined ? undefined : this.c.changelog ? next : this.commitPoint.safeOffset(this.proc.oldestOpenPacket(), this.proc.packets, next),
      stateChanges: next !== undefined && this.c.changelog ? this.proc.stateChanges() : undefined,
      events: r.events,
      eventCount: r.events.length,
      deadLetters: [],
      inputMessages,
      packets: this.proc.packets - packetsBefore,
      totalPackets: this.proc.packets,
      invalid: r.invalid.length,
      skipped,
      flowRecords: r.records.length,
      nextOffset: this.nextOffset,
      lastPacketUs: this.lastPacketUs,
      done: this.done,
      processingSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  }

  /**
   * One conntrack event from a host: the host is the `ctflow-host` header, else the message key
   * (agents key by host so a host's events stay in order on one partition).
   */
  private readFlowEvent(m: InputMessage, dead: (reason: string) => void): void {
    if (m.value === null) {
      dead('message has no value (a tombstone) on an input topic');
      return;
    }
    const host = m.headers['ctflow-host'] ?? (m.key && m.key.length ? m.key.toString('utf8') : undefined);
    try {
      const e = parseFlowEventMessage(m.value.toString('utf8'), { host });
      this.fleet ??= new FleetProcessor();
      this.fleet.apply(e, m.timestampMs * 1000);
      this.lastPacketUs = Math.max(this.lastPacketUs, e.tsUs ?? m.timestampMs * 1000);
    } catch (err) {
      if (err instanceof FlowEventFormatError) dead(err.message);
      else throw err;
    }
  }
}
