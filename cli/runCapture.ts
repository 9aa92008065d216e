/**
 * Runs one capture file through the in-process pipeline (reader -> decoder -> ConntrackPipeline),
 * handing verdicts and events to the caller. Frames that cannot be decoded are collected with
 * their index and reason (a dead-letter list), never dropped silently.
 *
 * runCapture() reads the whole capture in one go. CaptureRun is the same loop taken in steps, for
 * callers that must let the event loop run between packets (`ctflow replay --http` answers scrapes
 * while it replays, and paces the capture with --speed): one loop, so both see the same verdicts.
 */
import { AwaitingVerdict } from '../processors/awaitingVerdict';
import { readFileSync } from 'node:fs';
import { readPackets } from '../ingest/packetSource';
import type { PacketStream, ReadSummary } from '../ingest/packetSource';
import type { FlowEvent } from '../processors/flow';
import type { CapturedPacket, IpPacket } from '../processors/packet';
import { ConntrackPipeline, PREFETCH_GROUP } from '../processors/pipeline';
import type { PacketVerdict } from '../processors/pipeline';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackEngine } from '../processors/conntrack/engine';
import type { ConntrackRules } from '../processors/conntrack/rules';
import type { ExpectEvent } from '../processors/conntrack/helpers/expectations';

export interface RunOptions {
  sysctl: Sysctl;
  shards: number;
  /** NOTRACK, NAT and helper rules (--notrack, --nat, --helper); none by default. */
  rules?: ConntrackRules;
  /** Expectations created and destroyed (conntrack -E expect). */
  onExpectEvent?(e: ExpectEvent): void;
  onVerdict?(v: PacketVerdict): void;
  /**
   * Each verdict with the packet it judges, for callers that need what is on the packet and not
   * on the verdict (zone, protocol, length). A held fragment's verdict comes out once its datagram
   * completes or is given up, so the pairing is by index, not by order.
   */
  onPacket?(p: CapturedPacket, v: PacketVerdict): void;
  onEvent?(e: FlowEvent): void;
  /** Called every 4096 packets with the number read so far. */
  onProgress?(packets: number): void;
  /** A frame that cannot be decoded, as the reader meets it (it is in the summary's list too); capture bytes only. */
  onMalformed?(frame: number, reason: string): void;
  /** Each packet's conntrack zone (processors/zones.ts); zone 0 for all when absent. */
  zoneOf?(p: CapturedPacket): number;
}

export interface RunResult {
  engine: ConntrackEngine;
  summary: ReadSummary;
  packets: number;
}

export class CliError extends Error {}

export function loadCapture(path: string): Uint8Array {
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new CliError(`cannot read capture '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * A capture going through the pipeline a step at a time; the capture's format is checked on
 * construction. The packets come from capture bytes, or from a packet stream already made (a
 * Kafka topic's frames merged into packet-time order: cli/reportTopic.ts).
 */
export class CaptureRun {
  private readonly pipeline: ConntrackPipeline;
  private readonly stream: PacketStream;
  /**
   * Packets read ahead of the next push, [head, count): read PREFETCH_GROUP at a time so the
   * engine can load their table cells and entries together first (ConntrackEngine.prefetch: at
   * a million flows each lookup is two dependent cache misses, and a group's overlap). A step
   * may stop inside a group (its next packet is not due); the rest waits here.
   */
  private readonly ahead: CapturedPacket[] = [];
  private readonly aheadIps: IpPacket[] = [];
  /** The reader's frame count once each packet ahead had been read (see `frames`). */
  private readonly aheadFrames = new Float64Array(PREFETCH_GROUP);
  private head = 0;
  private count = 0;
  /** While reading ahead, the packets read so far in the group. */
  private reading = 0;
  /** Undecodable frames met while reading ahead, each before packet `before` of the group. */
  private metMalformed: Array<{ before: number; frame: number; reason: string }> = [];
  /** onPacket only: packets pushed whose verdict has not come out. */
  private readonly awaiting = new AwaitingVerdict<CapturedPacket>();
  private finished = false;
  /** IP packets pushed so far. */
  packets = 0;

  constructor(source: Uint8Array | PacketStream, private readonly opts: RunOptions) {
    const onPacket = opts.onPacket;
    this.pipeline = new ConntrackPipeline(
      {
        verdict: onPacket
          ? (v) => {
              opts.onVerdict?.(v);
              const p = this.awaiting.take(v.index);
              if (p) onPacket(p, v);
            }
          : (v) => opts.onVerdict?.(v),
        event: (e) => opts.onEvent?.(e),
        expectEvent: opts.onExpectEvent ? (e) => opts.onExpectEvent!(e) : undefined,
      },
      { sysctl: opts.sysctl, shards: opts.shards, rules: opts.rules, zoneOf: opts.zoneOf },
    );
    if (!(source instanceof Uint8Array)) {
      this.stream = source;
      return;
    }
    try {
      // Reported when the run reaches them, not when reading ahead passes them (see reportMalformed).
      this.stream = readPackets(source, opts.onMalformed ? { onMalformed: (frame, reason) => this.metMalformed.push({ before: this.reading, frame: frame.frame, reason }) } : {});
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }

  get engine(): ConntrackEngine {
    return this.pipeline.engine;
  }

  /** What the reader has found so far (final once the run is finished). */
  get summary(): ReadSummary {
    return this.stream.summary;
  }

  /** Capture frames fully processed: those read before the first packet still ahead. */
  get frames(): number {
    return this.head < this.count ? this.aheadFrames[this.head] - 1 : this.stream.summary.frames;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The time (µs) of the next packet to push; undefined at the end of the capture. */
  nextPacketUs(): number | undefined {
    if (this.head === this.count) this.readAhead();
    return this.head < this.count ? this.ahead[this.head].tsUs : undefined;
  }

  /**
   * Pushes packets until `max` more have gone in or the next one is later than `untilUs`
   * (true: call again), or the capture has ended (false: the pipeline is ended too, so
   * incomplete fragments have their verdicts).
   */
  step(max = Infinity, untilUs = Infinity): boolean {
    if (this.finished) return false;
    const { onPacket, onProgress } = this.opts;
    for (let n = 0; n < max; n++) {
      if (this.head === this.count && !this.readAhead()) {
        this.reportMalformed(Infinity);
        this.pipeline.end();
        this.finished = true;
        return false;
      }
      const p = this.ahead[this.head];
      if (p.tsUs > untilUs) return true;
      if (this.metMalformed.length) this.reportMalformed(this.head);
      this.head++;
      if (onPacket) {
        this.awaiting.pushing(p.index, p);
        this.pipeline.push(p);
        this.awaiting.pushed();
      } else this.pipeline.push(p);
      this.packets++;
      if (onProgress && (this.packets & 4095) === 0) onProgress(this.packets);
    }
    return true;
  }

  result(): RunResult {
    return { engine: this.pipeline.engine, summary: this.stream.summary, packets: this.packets };
  }

  /** Hands onMalformed the frames met before packet `upTo` of the group, as a run without read-ahead would have. */
  private reportMalformed(upTo: number): void {
    const due = this.metMalformed.filter((m) => m.before <= upTo);
    if (due.length === 0) return;
    this.metMalformed = this.metMalformed.filter((m) => m.before > upTo);
    for (const m of due) this.opts.onMalformed!(m.frame, m.reason);
  }

  /** Reads the next group of packets; false at the end of the capture. */
  private readAhead(): boolean {
    let n = 0;
    for (; n < PREFETCH_GROUP; n++) {
      this.reading = n;
      const r = this.stream.next();
      if (r.done) break;
      this.ahead[n] = r.value;
      this.aheadIps[n] = r.value.ip;
      this.aheadFrames[n] = this.stream.summary.frames;
    }
    this.head = 0;
    this.count = n;
    // The hint hashes in zone 0: with zones set, a packet elsewhere only loses its head start.
    if (n > 1) this.pipeline.engine.prefetch(this.aheadIps, 0, n);
    return n > 0;
  }
}

export function runCapture(source: Uint8Array | PacketStream, opts: RunOptions): RunResult {
  const run = new CaptureRun(source, opts);
  run.step();
  return run.result();
}

/** The dead-letter report for stderr: one line per undecodable frame, then a count. */
export function problemLines(summary: ReadSummary): string[] {
  const lines = summary.malformed.map((m) => {
    // A frame read from a topic is also named by its message, where kafka tools can find it.
    if (!m.message) return `ctflow: frame ${m.frame}: ${m.reason}`;
    const at = `${m.message.topic} partition ${m.message.partition} offset ${m.message.offset}`;
    return m.message.frameInMessage === undefined ? `ctflow: message ${at}: ${m.reason}` : `ctflow: frame ${m.frame} (${at}, frame ${m.message.frameInMessage} of the message): ${m.reason}`;
  });
  if (summary.captureProblem) {
    const cp = summary.captureProblem;
    lines.push(`ctflow: frame ${cp.frame} (byte ${cp.offset}): ${cp.reason}; the capture ends there`);
  }
  if (summary.malformed.length) lines.push(`ctflow: ${summary.malformed.length} malformed frame(s) skipped`);
  return lines;
}
