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
import { ChunkMessage } from '../../kafka/chunkMessage';
import { JsonBytes } from '../jsonBytes';
import { putEvent, putFlowRecord, putInvalid, putVerdict } from '../jsonRecordBytes';

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

/** Two hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
const KEY_CACHE_BITS = 13;

/**
 * The hex text of flow hashes (8 digits of the zone + unordered address pair hash, as `ctflow
 * produce` keys input). A flow's transitions and records all carry its key, so the text is kept
 * in a small direct-mapped cache by hash instead of being formatted for every message.
 */
class FlowKeys {
  private readonly hashes = new Int32Array(1 << KEY_CACHE_BITS);
  private readonly texts: Array<string | undefined> = new Array<string | undefined>(1 << KEY_CACHE_BITS).fill(undefined);

  of(zone: number, src: string, dst: string): string {
    const h = flowHash(zone, src, dst);
    const slot = h & ((1 << KEY_CACHE_BITS) - 1);
    const cached = this.texts[slot];
    if (cached !== undefined && this.hashes[slot] === (h | 0)) return cached;
    const text = HEX[h >>> 24] + HEX[(h >>> 16) & 255] + HEX[(h >>> 8) & 255] + HEX[h & 255];
    this.hashes[slot] = h;
    this.texts[slot] = text;
    return text;
  }
}

export class OutputEncoder {
  /**
   * Values are written as UTF-8 bytes into shared chunks (sinks/jsonBytes.ts), not as strings: a
   * message waits for its produce request and acknowledgement, and a view of a chunk costs the
   * garbage collector far less to keep alive than a JSON string (scavenges of one bench replay
   * took 4.6 s with string values, 1.6 s with Buffers). A message is a ChunkMessage: the record's
   * place in its chunk, read by the produce encoder without a Buffer view per record.
   */
  private readonly json = new JsonBytes();
  private readonly keys = new FlowKeys();

  constructor(private readonly topics: OutputTopicNames, private readonly partitions: OutputPartitions) {}

  transitions(events: readonly FlowEvent[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.transitions;
    for (const e of events) {
      putEvent(this.json, e);
      out.push(this.message(this.topics.transitions, this.keys.of(e.flow.zone, e.flow.orig.src, e.flow.orig.dst), partition, e.tsUs));
    }
  }

  /** INVALID packets go to the transitions topic too, as type INVALID with their reason. */
  invalid(packets: readonly InvalidPacket[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.transitions;
    for (const r of packets) {
      putInvalid(this.json, r);
      out.push(this.message(this.topics.transitions, this.keys.of(r.zone, r.src, r.dst), partition, r.tsUs));
    }
  }

  flowRecords(records: readonly FlowAccountingRecord[], inputPartition: number, out: OutputMessage[]): void {
    const partition = inputPartition % this.partitions.flows;
    for (const r of records) {
      putFlowRecord(this.json, r);
      out.push(this.message(this.topics.flows, this.keys.of(r.flow.zone, r.flow.orig.src, r.flow.orig.dst), partition, r.tsUs));
    }
  }

  verdicts(verdicts: readonly PacketVerdict[], inputPartition: number, out: OutputMessage[]): void {
    const topic = this.topics.verdicts;
    if (!topic) return;
    const partition = inputPartition % this.partitions.verdicts;
    for (const v of verdicts) {
      putVerdict(this.json, v);
      out.push(this.message(topic, undefined, partition, v.tsUs));
    }
  }

  /** The record just written into the JSON chunk, as a message stamped with its time in ms. */
  private message(topic: string, key: string | undefined, partition: number, tsUs: number): ChunkMessage {
    const j = this.json;
    return new ChunkMessage(topic, key, partition, Math.floor(tsUs / 1000), j.chunk, j.recordStart, j.recordEnd);
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
