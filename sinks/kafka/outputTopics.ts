/**
 * Turns what the engine produced into Kafka messages for the output topics (docs/topics.md):
 * transitions (and INVALID packets), flow accounting records, optional per-packet verdicts, and dead letters. Each
 * output message goes to the partition of the input it came from (modulo the output's partition
 * count), so with equal counts an output partition holds exactly one input partition's results
 * in order: replaying a topic twice writes the same bytes to the same partitions.
 */
import type { FlowAccountingRecord, FlowEvent, InvalidPacket } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import { flowHash } from '../../processors/conntrack/tuple';
import type { InputMessage, OutputMessage } from '../../kafka/client';
import { JsonBytes } from '../jsonBytes';
import { writeEvent, writeFlowRecord, writeInvalid, writeVerdict } from '../jsonRecordBytes';

export interface OutputTopicNames {
  transitions: string;
  flows: string;
  /** Per-packet verdicts; absent to not write them. */
  verdicts?: string;
  deadLetter: string;
}

export interface OutputPartitions {
  transitions: number;
  flows: number;
  verdicts: number;
  deadLetter: number;
}

/** Header names on dead-letter messages. */
export const DEAD_LETTER_HEADERS = {
  reason: 'ctflow-error',
  topic: 'ctflow-source-topic',
  partition: 'ctflow-source-partition',
  offset: 'ctflow-source-offset',
  frame: 'ctflow-source-frame',
} as const;

/** The flow's key (8 hex digits of the zone + unordered address pair hash), as `ctflow produce` keys input. */
function keyOf(e: { flow: { zone: number; orig: { src: string; dst: string } } }): string {
  return flowHash(e.flow.zone, e.flow.orig.src, e.flow.orig.dst).toString(16).padStart(8, '0');
}

export class OutputEncoder {
  /**
   * Values are written as UTF-8 bytes into shared chunks (sinks/jsonBytes.ts), not as strings: a
   * message waits for its produce request and acknowledgement, and a view of a chunk costs the
   * garbage collector far less to keep alive than a JSON string (scavenges of one bench replay
   * took 4.6 s with string values, 1.6 s with Buffers).
   */
  private readonly json = new JsonBytes();

  constructor(private readonly topics: OutputTopicNames, private readonly partitions: OutputPartitions) {}

  transitions(events: readonly FlowEvent[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.transitions;
    for (const e of events) {
      out.push({ topic: this.topics.transitions, key: keyOf(e), value: writeEvent(this.json, e), partition, timestampMs: Math.floor(e.tsUs / 1000) });
    }
  }

  /** INVALID packets go to the transitions topic too, as type INVALID with their reason. */
  invalid(packets: readonly InvalidPacket[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.transitions;
    for (const r of packets) {
      const key = flowHash(r.zone, r.src, r.dst).toString(16).padStart(8, '0');
      out.push({ topic: this.topics.transitions, key, value: writeInvalid(this.json, r), partition, timestampMs: Math.floor(r.tsUs / 1000) });
    }
  }

  flowRecords(records: readonly FlowAccountingRecord[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.flows;
    for (const r of records) {
      out.push({ topic: this.topics.flows, key: keyOf(r), value: writeFlowRecord(this.json, r), partition, timestampMs: Math.floor(r.tsUs / 1000) });
    }
  }

  verdicts(verdicts: readonly PacketVerdict[], inputPartition: number, out: OutputMessage[]): void {
    const topic = this.topics.verdicts;
    if (!topic) return;
    const partition = inputPartition % this.partitions.verdicts;
    for (const v of verdicts) out.push({ topic, value: writeVerdict(this.json, v), partition, timestampMs: Math.floor(v.tsUs / 1000) });
  }

  /** The original bytes (the whole message, or one frame of a batch), where they came from, and why. */
  deadLetter(source: InputMessage, reason: string, out: OutputMessage[], part?: { frame: number; bytes: Uint8Array }): void {
    const headers: Record<string, string> = {
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.topic]: source.topic,
      [DEAD_LETTER_HEADERS.partition]: String(source.partition),
      [DEAD_LETTER_HEADERS.offset]: source.offset,
    };
    if (part) headers[DEAD_LETTER_HEADERS.frame] = String(part.frame);
    const value = part ? Buffer.from(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength) : source.value;
    out.push({
      topic: this.topics.deadLetter,
      key: source.key,
      value,
      partition: source.partition % this.partitions.deadLetter,
      timestampMs: source.timestampMs,
      headers,
    });
  }
}
