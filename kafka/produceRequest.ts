/**
 * The body of a Kafka Produce request (versions 3 to 7 share it) with one uncompressed record
 * batch v2 per partition, written into a single Buffer sized beforehand.
 *
 * It produces exactly the bytes kafkajs 2.2.4's own encoder writes for the same request
 * (protocol/requests/produce/v3/request.js, recordBatch/v0, recordBatch/record/v0,
 * recordBatch/header/v0), including its choices where Kafka leaves room: base offset 0, partition
 * leader epoch 0, record attributes 0, the batch's first and max timestamps taken as the smallest
 * and largest timestamp *as strings* (kafkajs sorts them with Array.prototype.sort's default
 * order), a message without a timestamp stamped with one Date.now() per partition. kafkajs builds
 * an Encoder per record and per header, a Buffer per varint, and copies the growing bytes at each
 * level; this writes every byte once.
 *
 * Anything outside what it reproduces exactly (compression, keys or values that are neither
 * strings nor Buffers, odd timestamps) makes it return undefined: the caller then lets kafkajs
 * encode the request. A message may be a ChunkMessage (chunkMessage.ts): its value bytes are
 * copied from its chunk, where kafkajs encodes the same bytes from `value` (its Buffer view).
 */
import { ChunkMessage } from './chunkMessage';
import { crc32c } from './crc32c';

/** What kafkajs's producer (sendMessages.js) hands the Produce request: kafkajs's message shape. */
export interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  timestamp?: unknown;
  headers?: unknown;
}

export interface ProducePartitionData {
  partition: number | string;
  firstSequence?: number;
  messages: ProduceMessage[];
}

export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  /** A kafkajs Long, or the string/number kafkajs keeps it as. */
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: Array<{ topic: string; partitions: ProducePartitionData[] }>;
}

const NO_COMPRESSION = 0;
const MAGIC_V2 = 2;
/** Record batch attribute bit 4: the batch belongs to a transaction. */
const TRANSACTIONAL_BIT = 0x10;
/** Record batch v2 bytes before its records, from the base offset to the record count (Kafka's RECORD_BATCH_OVERHEAD). */
const BATCH_OVERHEAD = 61;
/** Bytes of the batch counted by its length field: all but the base offset (8) and the length (4). */
const BATCH_LENGTH_EXCLUDES = 12;
/** |timestamp delta| below this keeps its zigzag value an exact double (< 2^53). */
const MAX_EXACT_DELTA = 2 ** 51;

/**
 * Per record of the request being encoded: its body size and timestamp delta, filled by the
 * sizing pass and read by the writing pass. Shared across calls: the encoder is synchronous.
 */
let bodySizes = new Int32Array(4096);
let deltas = new Float64Array(4096);

function reserve(records: number): void {
  if (records <= bodySizes.length) return;
  const n = Math.max(records, bodySizes.length * 2);
  bodySizes = new Int32Array(n);
  deltas = new Float64Array(n);
}

interface PartitionPlan {
  partition: number | string;
  firstSequence: number;
  messages: ProduceMessage[];
  firstTimestamp: bigint;
  maxTimestamp: bigint;
  /** Index of its first record in bodySizes/deltas. */
  firstRecord: number;
  recordsBytes: number;
}

/**
 * The request's bytes after kafkajs's request header, or undefined where kafkajs should encode it.
 * With `headroom`, the buffer starts with that many bytes left unwritten, then the body: room for
 * the request's size and header, so the framed request can be sent without another copy.
 */
export function encodeProduceRequest(req: ProduceRequestArgs, headroom = 0): Buffer | undefined {
  if ((req.compression ?? NO_COMPRESSION) !== NO_COMPRESSION) return undefined;
  // kafkajs's defaults for a request without them (produce/v3/request.js).
  const transactionalId = req.transactionalId === undefined ? null : req.transactionalId;
  const producerId = req.producerId === undefined ? -1n : int64Of(req.producerId);
  const producerEpoch = req.producerEpoch === undefined ? 0 : req.producerEpoch;
  if (producerId === undefined) return undefined;

  let total = stringSize(transactionalId) + 2 + 4 + 4;
  let records = 0;
  for (const t of req.topicData) for (const p of t.partitions) records += p.messages.length;
  reserve(records);

  const plans: PartitionPlan[][] = [];
  let next = 0;
  for (const t of req.topicData) {
    total += stringSize(t.topic) + 4;
    const topicPlans: PartitionPlan[] = [];
    for (const p of t.partitions) {
      const plan = planPartition(p, next);
      if (!plan) return undefined;
      next += p.messages.length;
      total += 8 + BATCH_OVERHEAD + plan.recordsBytes;
      topicPlans.push(plan);
    }
    plans.push(topicPlans);
  }

  const w = new Writer(Buffer.allocUnsafe(headroom + total));
  w.pos = headroom;
  w.string(transactionalId);
  w.int16(req.acks);
  w.int32(req.timeout);
  w.int32(req.topicData.length);
  req.topicData.forEach((t, i) => {
    w.string(t.topic);
    w.int32(t.partitions.length);
    for (const plan of plans[i]) writePartition(w, plan, transactionalId ? TRANSACTIONAL_BIT : 0, producerId, producerEpoch);
  });
  // Every byte of the allocUnsafe buffer must have been written, exactly once.
  if (w.pos !== headroom + total) throw new Error(`produce request encoder wrote ${w.pos - headroom} bytes of ${total}`);
  return w.buf;
}

/** Timestamps and record sizes of one partition's batch; undefined if kafkajs should encode the request. */
function planPartition(p: ProducePartitionData, firstRecord: number): PartitionPlan | undefined {
  const messages = p.messages;
  const now = Date.now();
  // The smallest and largest timestamp in Array.prototype.sort's default order: by their string
  // forms, so "999" comes after "1000". (Of equal strings, such as 5 and "5", a stable sort keeps
  // the first smallest and the last largest; they stand for the same int64 either way.)
  // Numbers of 13 digits (ms times from 2001 to 2286, what ctflow sends) order as their strings
  // do, so they are compared as numbers, without a string per message; any other timestamp
  // switches to comparing strings.
  let first: string | number | undefined;
  let max: string | number | undefined;
  let firstText = '';
  let maxText = '';
  let asText = false;
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) return undefined;
    const ts = m.timestamp;
    if (ts === undefined || ts === null) continue;
    if (!asText && typeof ts === 'number' && ts >= 1e12 && ts < 1e13 && Number.isInteger(ts)) {
      if (first === undefined) first = max = ts;
      else {
        if (ts < (first as number)) first = ts;
        if (ts >= (max as number)) max = ts;
      }
      continue;
    }
    if (typeof ts !== 'string' && typeof ts !== 'number') return undefined;
    if (!asText) {
      asText = true;
      if (first !== undefined) (firstText = String(first)), (maxText = String(max));
    }
    const text = String(ts);
    if (first === undefined) {
      first = max = ts;
      firstText = maxText = text;
    } else {
      if (text < firstText) (first = ts), (firstText = text);
      if (text >= maxText) (max = ts), (maxText = text);
    }
  }
  if (first === undefined) first = max = now;
  const firstTimestamp = int64Of(first);
  const maxTimestamp = int64Of(max);
  if (firstTimestamp === undefined || maxTimestamp === undefined) return undefined;

  let recordsBytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    // The same expression as kafkajs's, coercions included: a string timestamp minus a string first.
    const delta = ((m.timestamp || now) as number) - (first as number);
    if (!Number.isSafeInteger(delta) || Math.abs(delta) >= MAX_EXACT_DELTA) return undefined;
    const key = bytesFieldSize(m.key);
    const value = bytesFieldSize(valueOf(m));
    const headers = m.headers === undefined ? 1 : headersSize(m.headers);
    if (key < 0 || value < 0 || headers < 0) return undefined;
    const body = 1 + varlongSize(zigzag64(delta)) + varintSize(i) + key + value + headers;
    bodySizes[firstRecord + i] = body;
    deltas[firstRecord + i] = delta;
    recordsBytes += varintSize(body) + body;
  }
  const firstSequence = p.firstSequence === undefined ? 0 : p.firstSequence;
  return { partition: p.partition, firstSequence, messages, firstTimestamp, maxTimestamp, firstRecord, recordsBytes };
}

function writePartition(w: Writer, plan: PartitionPlan, attributes: number, producerId: bigint, producerEpoch: number): void {
  const { messages, firstRecord } = plan;
  const batchBytes = BATCH_OVERHEAD + plan.recordsBytes;
  // sendMessages.js passes partition ids as the string keys of its grouping; writeInt32BE turns
  // them into numbers exactly as kafkajs's Encoder (which calls it too) does.
  w.int32(plan.partition as number);
  w.int32(batchBytes);
  w.int64(0n); // base offset: the broker assigns offsets
  w.int32(batchBytes - BATCH_LENGTH_EXCLUDES);
  w.int32(0); // partition leader epoch: set by the broker
  w.int8(MAGIC_V2);
  const crcAt = w.pos;
  w.pos += 4; // CRC, written once the bytes it covers are
  const crcFrom = w.pos;
  w.int16(attributes);
  w.int32(messages.length - 1); // last offset delta
  w.int64(plan.firstTimestamp);
  w.int64(plan.maxTimestamp);
  w.int64(producerId);
  w.int16(producerEpoch);
  w.int32(plan.firstSequence);
  w.int32(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    w.varint(bodySizes[firstRecord + i]);
    w.int8(0); // record attributes: none defined
    w.varlong(zigzag64(deltas[firstRecord + i]));
    w.varint(i); // offset delta
    w.bytesField(m.key);
    w.bytesField(valueOf(m));
    if (m.headers === undefined) w.varint(0);
    else w.headers(m.headers as Record<string, unknown>);
  }
  w.buf.writeUInt32BE(crc32c(w.buf, crcFrom, w.pos), crcAt);
}

/** kafkajs's Long.fromValue, as a bigint; undefined where kafkajs would throw or where it is not a plain number. */
function int64Of(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isNaN(v) ? 0n : Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'string') {
    if (v === 'NaN' || v === 'Infinity' || v === '+Infinity' || v === '-Infinity') return 0n;
    return /^\s*[+-]?\d+\s*$/.test(v) ? BigInt(v) : undefined;
  }
  if (typeof v === 'object' && v !== null && typeof (v as { value?: unknown }).value === 'bigint') return (v as { value: bigint }).value;
  return undefined;
}

/** A message's value, or the message itself when it is a ChunkMessage: its bytes are copied from its chunk, without a view per record. */
function valueOf(m: ProduceMessage): unknown {
  return m instanceof ChunkMessage ? m : m.value;
}

/** A nullable string with an int16 length (Kafka's NULLABLE_STRING). */
function stringSize(s: string | null): number {
  return s === null ? 2 : 2 + Buffer.byteLength(s, 'utf8');
}

/** A key or value with a zigzag varint length, -1 for null; -1 (not encodable here) for other types. */
function bytesFieldSize(v: unknown): number {
  if (v === undefined || v === null) return 1;
  const n = v instanceof ChunkMessage ? v.valueEnd - v.valueStart : Buffer.isBuffer(v) ? v.length : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : -1;
  return n < 0 ? -1 : varintSize(n) + n;
}

/**
 * A record's headers: a varint count, then per value a varint-length key and value. An array
 * value is one header per element under the same key (kafkajs's IHeaders). -1 for what kafkajs
 * cannot encode either (null or non-string values) or would encode otherwise.
 */
function headersSize(h: unknown): number {
  if (typeof h !== 'object' || h === null) return -1;
  let count = 0;
  let size = 0;
  for (const k of Object.keys(h)) {
    const v = (h as Record<string, unknown>)[k];
    const keySize = varintSize(Buffer.byteLength(k, 'utf8')) + Buffer.byteLength(k, 'utf8');
    const values = Array.isArray(v) ? v : [v];
    for (const e of values) {
      if (e === null || e === undefined) return -1;
      const n = bytesFieldSize(e);
      if (n < 0) return -1;
      count++;
      size += keySize + n;
    }
  }
  return varintSize(count) + size;
}

/** Kafka's zigzag encoding of a 32-bit signed int (as kafkajs computes it). */
function zigzag32(v: number): number {
  return (v << 1) ^ (v >> 31);
}

/** Zigzag of a safe integer below 2^51 in magnitude, exact as a double. */
function zigzag64(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function varintSize(v: number): number {
  let u = zigzag32(v);
  let n = 1;
  while ((u & 0xffffff80) !== 0) {
    n++;
    u >>>= 7;
  }
  return n;
}

/** Bytes of an unsigned LEB128 of a non-negative integer below 2^53. */
function varlongSize(u: number): number {
  let n = 1;
  while (u >= 0x80) {
    n++;
    u = Math.floor(u / 0x80);
  }
  return n;
}

/** Writes big-endian fixed-width fields, varints and Kafka's byte fields at a moving position. */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  int8(v: number): void {
    this.buf[this.pos++] = v;
  }

  int16(v: number): void {
    this.pos = this.buf.writeInt16BE(v, this.pos);
  }

  int32(v: number): void {
    this.pos = this.buf.writeInt32BE(v, this.pos);
  }

  int64(v: bigint): void {
    this.pos = this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.pos);
  }

  /** Zigzag varint of a 32-bit signed int. */
  varint(v: number): void {
    let u = zigzag32(v);
    while ((u & 0xffffff80) !== 0) {
      this.buf[this.pos++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    this.buf[this.pos++] = u;
  }

  /** Unsigned LEB128 of an already zigzagged value below 2^53. */
  varlong(u: number): void {
    while (u >= 0x80) {
      this.buf[this.pos++] = (u % 0x80) | 0x80;
      u = Math.floor(u / 0x80);
    }
    this.buf[this.pos++] = u;
  }

  string(s: string | null): void {
    if (s === null) return this.int16(-1);
    const n = Buffer.byteLength(s, 'utf8');
    this.int16(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  /** A key, value or header value: varint length (-1 for null) and the bytes. */
  bytesField(v: unknown): void {
    if (v === undefined || v === null) return this.varint(-1);
    if (v instanceof ChunkMessage) return this.chunkBytes(v.chunk, v.valueStart, v.valueEnd);
    if (Buffer.isBuffer(v)) {
      this.varint(v.length);
      // TypedArray set (a V8 builtin), not Buffer copy: a few hundred bytes per record, where
      // copy's argument checks cost more than the bytes.
      this.buf.set(v, this.pos);
      this.pos += v.length;
    } else {
      const s = v as string;
      const n = Buffer.byteLength(s, 'utf8');
      this.varint(n);
      this.pos += this.buf.write(s, this.pos, n, 'utf8');
    }
  }

  /**
   * Bytes [start, end) of a chunk with their varint length. The range is copied through a plain
   * Uint8Array view made here, which dies at once (a view kept per message from when the record
   * was written survived until the acknowledgement); a byte-by-byte loop was several times slower
   * than the view and TypedArray set.
   */
  private chunkBytes(chunk: Buffer, start: number, end: number): void {
    const n = end - start;
    this.varint(n);
    this.buf.set(new Uint8Array(chunk.buffer, chunk.byteOffset + start, n), this.pos);
    this.pos += n;
  }

  headers(h: Record<string, unknown>): void {
    const keys = Object.keys(h);
    let count = 0;
    for (const k of keys) count += Array.isArray(h[k]) ? (h[k] as unknown[]).length : 1;
    this.varint(count);
    for (const k of keys) {
      const v = h[k];
      for (const e of Array.isArray(v) ? v : [v]) {
        const n = Buffer.byteLength(k, 'utf8');
        this.varint(n);
        this.pos += this.buf.write(k, this.pos, n, 'utf8');
        this.bytesField(e);
      }
    }
  }
}
