/**
 * How a partition's input batches, output messages and state records cross between the pipeline
 * and a partition worker (partitionWorkers.ts): each as one byte buffer plus small typed arrays,
 * all transferred (moved, not copied) by postMessage. Posting the messages as objects would make
 * the structured clone copy every Buffer's whole backing store (kafkajs slices a fetch response,
 * the output encoder slices shared chunks) and allocate an object per message on both sides.
 */
import type { InputMessage, OutputMessage } from '../../kafka/client';
import { ChunkMessage } from '../../kafka/chunkMessage';

/** A fetched batch: the values, keys and headers (as JSON) of its messages, back to back. */
export interface PackedInput {
  topic: string;
  partition: number;
  /** Shared when several threads read one batch (report --topic's shares: topicShare.ts); never transferred then. */
  bytes: ArrayBuffer | SharedArrayBuffer;
  /** INPUT_FIELDS numbers per message: value start, length (-1: null), key start, length, headers start, length. */
  layout: Int32Array;
  offsets: BigInt64Array;
  timestamps: Float64Array;
}

/** Output messages: their values and keys back to back; strings travel as UTF-8 and come back as strings. */
export interface PackedOutput {
  topics: string[];
  bytes: ArrayBuffer;
  /** OUTPUT_FIELDS numbers per message: topic index, partition (-1: none), value kind, start, length, key kind, start, length. */
  layout: Int32Array;
  /** NaN: no timestamp. */
  timestamps: Float64Array;
  /** Headers are rare (dead letters only): [message index, headers]. */
  headers: Array<[number, Record<string, string>]>;
}

/** A partition's state (restore, checkpoint) or its changes: keys, and the values back to back. */
export interface PackedRecords {
  keys: string[];
  bytes: ArrayBuffer;
  /** -1: null (a tombstone). */
  lengths: Int32Array;
}

const INPUT_FIELDS = 6;
const OUTPUT_FIELDS = 8;
/** Value and key kinds in PackedOutput.layout. */
const ABSENT = 0;
const NULL = 1;
const BYTES = 2;
const TEXT = 3;

const hasKeys = (o: object): boolean => {
  for (const _ in o) return true;
  return false;
};

/** Copies a batch's payloads once into one buffer (a batch is one transfer, not one per message). */
export function packInput(topic: string, partition: number, messages: readonly InputMessage[]): PackedInput {
  const n = messages.length;
  const headers = messages.map((m) => (hasKeys(m.headers) ? Buffer.from(JSON.stringify(m.headers)) : undefined));
  let size = 0;
  for (let i = 0; i < n; i++) size += (messages[i].value?.length ?? 0) + (messages[i].key?.length ?? 0) + (headers[i]?.length ?? 0);
  const bytes = new Uint8Array(size);
  const layout = new Int32Array(n * INPUT_FIELDS);
  const offsets = new BigInt64Array(n);
  const timestamps = new Float64Array(n);
  let at = 0;
  const put = (b: Uint8Array | null | undefined, field: number): void => {
    layout[field] = at;
    layout[field + 1] = b ? b.length : -1;
    if (b) {
      bytes.set(b, at);
      at += b.length;
    }
  };
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    put(m.value, i * INPUT_FIELDS);
    put(m.key, i * INPUT_FIELDS + 2);
    put(headers[i], i * INPUT_FIELDS + 4);
    offsets[i] = BigInt(m.offset);
    timestamps[i] = m.timestampMs;
  }
  return { topic, partition, bytes: bytes.buffer, layout, offsets, timestamps };
}

/** The batch's messages again, their Buffers views of the one transferred buffer. */
export function unpackInput(p: PackedInput): InputMessage[] {
  const all = Buffer.from(p.bytes);
  const view = (field: number): Buffer | null => (p.layout[field + 1] < 0 ? null : all.subarray(p.layout[field], p.layout[field] + p.layout[field + 1]));
  const out: InputMessage[] = new Array(p.offsets.length);
  for (let i = 0; i < out.length; i++) {
    const f = i * INPUT_FIELDS;
    const headers = view(f + 4);
    out[i] = { topic: p.topic, partition: p.partition, offset: p.offsets[i].toString(), key: view(f + 2), value: view(f), timestampMs: p.timestamps[i], headers: headers ? JSON.parse(headers.toString('utf8')) : {} };
  }
  return out;
}

export function packOutput(messages: readonly OutputMessage[]): PackedOutput {
  const n = messages.length;
  const topics: string[] = [];
  const topicIndex = new Map<string, number>();
  const layout = new Int32Array(n * OUTPUT_FIELDS);
  const timestamps = new Float64Array(n);
  const headers: Array<[number, Record<string, string>]> = [];
  let size = 0;
  for (const m of messages) {
    // A ChunkMessage's value getter makes a view of its chunk each time: its length is known without one.
    if (m instanceof ChunkMessage) size += m.valueLength;
    else if (typeof m.value === 'string') size += Buffer.byteLength(m.value);
    else if (m.value) size += m.value.length;
    if (typeof m.key === 'string') size += Buffer.byteLength(m.key);
    else if (m.key) size += m.key.length;
  }
  const buffer = new ArrayBuffer(size);
  const bytes = Buffer.from(buffer);
  let at = 0;
  const put = (v: Buffer | string | null | undefined, field: number): void => {
    layout[field] = v === undefined ? ABSENT : v === null ? NULL : typeof v === 'string' ? TEXT : BYTES;
    layout[field + 1] = at;
    if (typeof v === 'string') at += bytes.write(v, at);
    else if (v) {
      bytes.set(v, at);
      at += v.length;
    }
    layout[field + 2] = at - layout[field + 1];
  };
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    const f = i * OUTPUT_FIELDS;
    let t = topicIndex.get(m.topic);
    if (t === undefined) {
      t = topics.push(m.topic) - 1;
      topicIndex.set(m.topic, t);
    }
    layout[f] = t;
    layout[f + 1] = m.partition ?? -1;
    timestamps[i] = m.timestampMs ?? NaN;
    if (m.headers) headers.push([i, m.headers]);
    if (m instanceof ChunkMessage) {
      layout[f + 2] = BYTES;
      layout[f + 3] = at;
      at += m.chunk.copy(bytes, at, m.valueStart, m.valueEnd);
      layout[f + 4] = m.valueLength;
    } else put(m.value, f + 2);
    put(m.key, f + 5);
  }
  return { topics, bytes: buffer, layout, timestamps, headers };
}

export function unpackOutput(p: PackedOutput): OutputMessage[] {
  const all = Buffer.from(p.bytes);
  const field = (f: number): Buffer | string | null | undefined => {
    const kind = p.layout[f];
    if (kind === ABSENT) return undefined;
    if (kind === NULL) return null;
    const b = all.subarray(p.layout[f + 1], p.layout[f + 1] + p.layout[f + 2]);
    return kind === TEXT ? b.toString('utf8') : b;
  };
  const out: OutputMessage[] = new Array(p.timestamps.length);
  const withHeaders = new Set(p.headers.map(([i]) => i));
  for (let i = 0; i < out.length; i++) {
    const f = i * OUTPUT_FIELDS;
    const partition = p.layout[f + 1];
    const ts = p.timestamps[i];
    if (p.layout[f + 2] === BYTES && p.layout[f + 5] !== BYTES && partition >= 0 && !Number.isNaN(ts) && !withHeaders.has(i)) {
      // A transition or flow record: its value stays a range of the transferred bytes, as the
      // one-thread pipeline's records stay ranges of their chunk (kafka/chunkMessage.ts says why).
      const key = field(f + 5);
      out[i] = new ChunkMessage(p.topics[p.layout[f]], key as string | null | undefined, partition, ts, all, p.layout[f + 3], p.layout[f + 3] + p.layout[f + 4]);
      continue;
    }
    const m: OutputMessage = { topic: p.topics[p.layout[f]], value: field(f + 2) ?? null };
    const key = field(f + 5);
    if (key !== undefined) m.key = key;
    if (p.layout[f + 1] >= 0) m.partition = p.layout[f + 1];
    if (!Number.isNaN(p.timestamps[i])) m.timestampMs = p.timestamps[i];
    out[i] = m;
  }
  for (const [i, h] of p.headers) out[i].headers = h;
  return out;
}

/** Keyed values (a state, or its changes with null for a tombstone) as one buffer. */
export function packRecords(records: Iterable<readonly [string, Uint8Array | null]>): PackedRecords {
  const entries = [...records];
  const lengths = new Int32Array(entries.length);
  let size = 0;
  entries.forEach(([, v], i) => {
    lengths[i] = v ? v.length : -1;
    size += v?.length ?? 0;
  });
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const [, v] of entries) {
    if (!v) continue;
    bytes.set(v, at);
    at += v.length;
  }
  return { keys: entries.map(([k]) => k), bytes: bytes.buffer, lengths };
}

export function unpackRecords(p: PackedRecords): Array<[string, Uint8Array | null]> {
  let at = 0;
  return p.keys.map((k, i) => {
    const n = p.lengths[i];
    if (n < 0) return [k, null];
    at += n;
    return [k, new Uint8Array(p.bytes, at - n, n)];
  });
}

/** What postMessage should move rather than copy. */
export const transferInput = (p: PackedInput): ArrayBuffer[] => [p.bytes as ArrayBuffer, p.layout.buffer as ArrayBuffer, p.offsets.buffer as ArrayBuffer, p.timestamps.buffer as ArrayBuffer];
export const transferOutput = (p: PackedOutput): ArrayBuffer[] => [p.bytes, p.layout.buffer as ArrayBuffer, p.timestamps.buffer as ArrayBuffer];
export const transferRecords = (p: PackedRecords): ArrayBuffer[] => [p.bytes, p.lengths.buffer as ArrayBuffer];
