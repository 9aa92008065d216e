/**
 * The captured-traffic topic's two message forms (documented in docs/topics.md):
 *
 *  - a batch: many link-layer frames in one message value, in ctflow's own binary layout
 *    ("CTFB", version 1, all integers big-endian):
 *        magic "CTFB" | version u8 = 1 | 3 reserved bytes = 0 | count u32
 *        count x ( tsSec u32 | tsUsec u32 | linkType u16 | interfaceId u16 | capLen u32 | origLen u32 | capLen bytes )
 *    This is what `ctflow produce` writes: per-frame overhead is 20 bytes, against Kafka's
 *    ~70 bytes of record overhead and a header set per message in the other form;
 *  - one frame per message: the value is the frame itself; headers `ctflow-linktype` (decimal,
 *    required), `ctflow-ts-us` (decimal µs since the epoch; the message timestamp in ms when
 *    absent), optional `ctflow-origlen` and `ctflow-interface`. Meant for agents that forward
 *    frames one by one.
 *
 * Either form may carry a `ctflow-zone` header (decimal, 0..65535): the conntrack zone of every
 * frame in the message, used when the zone comes from the message (docs/zones.md).
 *
 * Decoding never trusts a length: a message that does not parse throws TopicFormatError naming
 * what is wrong, and the caller sends the whole message to the dead-letter topic.
 */
import type { CaptureFrame } from '../capture/types';

export class TopicFormatError extends Error {}

export const BATCH_MAGIC = 0x43544642; // "CTFB"
export const BATCH_VERSION = 1;
const BATCH_HEADER = 12;
const FRAME_HEADER = 20;

export const FRAME_HEADERS = {
  linkType: 'ctflow-linktype',
  tsUs: 'ctflow-ts-us',
  origLength: 'ctflow-origlen',
  interfaceId: 'ctflow-interface',
} as const;

/** The message's conntrack zone, on either form of captured traffic and on packet events. */
export const ZONE_HEADER = 'ctflow-zone';

/** A frame as it travels in a topic: a CaptureFrame without the file position. */
export type TopicFrame = Omit<CaptureFrame, 'frame'>;

export function isFrameBatch(value: Uint8Array): boolean {
  return value.length >= 4 && value[0] === 0x43 && value[1] === 0x54 && value[2] === 0x46 && value[3] === 0x42;
}

export function batchSize(frames: readonly TopicFrame[]): number {
  let n = BATCH_HEADER;
  for (const f of frames) n += FRAME_HEADER + f.data.length;
  return n;
}

export function encodeFrameBatch(frames: readonly TopicFrame[]): Buffer {
  const buf = Buffer.allocUnsafe(batchSize(frames));
  buf.writeUInt32BE(BATCH_MAGIC, 0);
  buf.writeUInt32BE(BATCH_VERSION << 24, 4);
  buf.writeUInt32BE(frames.length, 8);
  let o = BATCH_HEADER;
  for (const f of frames) {
    const sec = Math.floor(f.tsUs / 1e6);
    if (sec < 0 || sec > 0xffffffff) throw new TopicFormatError(`timestamp ${f.tsUs} µs does not fit the batch format (seconds 0..2^32-1)`);
    buf.writeUInt32BE(sec, o);
    buf.writeUInt32BE(f.tsUs - sec * 1e6, o + 4);
    buf.writeUInt16BE(f.linkType & 0xffff, o + 8);
    buf.writeUInt16BE(f.interfaceId & 0xffff, o + 10);
    buf.writeUInt32BE(f.data.length, o + 12);
    buf.writeUInt32BE(Math.max(f.origLength, f.data.length), o + 16);
    buf.set(f.data, o + FRAME_HEADER);
    o += FRAME_HEADER + f.data.length;
  }
  return buf;
}

/** The frames of a batch message; `data` are views into `value`, not copies. */
export function decodeFrameBatch(value: Uint8Array): TopicFrame[] {
  if (value.length < BATCH_HEADER) throw new TopicFormatError(`frame batch of ${value.length} bytes is shorter than its ${BATCH_HEADER}-byte header`);
  if (!isFrameBatch(value)) throw new TopicFormatError('not a frame batch: the value does not start with "CTFB"');
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const version = value[4];
  if (version !== BATCH_VERSION) throw new TopicFormatError(`frame batch version ${version} is not supported (only ${BATCH_VERSION})`);
  const count = view.getUint32(8);
  const frames: TopicFrame[] = [];
  let o = BATCH_HEADER;
  for (let i = 0; i < count; i++) {
    if (o + FRAME_HEADER > value.length) throw new TopicFormatError(`frame batch truncated: header of frame ${i} of ${count} is cut at byte ${value.length}`);
    const usec = view.getUint32(o + 4);
    if (usec >= 1e6) throw new TopicFormatError(`frame ${i}: microseconds field ${usec} is not below 1,000,000`);
    const capLen = view.getUint32(o + 12);
    const start = o + FRAME_HEADER;
    if (start + capLen > value.length) throw new TopicFormatError(`frame batch truncated: frame ${i} of ${count} claims ${capLen} bytes, ${value.length - start} remain`);
    frames.push({
      tsUs: view.getUint32(o) * 1e6 + usec,
      linkType: view.getUint16(o + 8),
      interfaceId: view.getUint16(o + 10),
      data: value.subarray(start, start + capLen),
      origLength: view.getUint32(o + 16),
    });
    o = start + capLen;
  }
  if (o !== value.length) throw new TopicFormatError(`frame batch has ${value.length - o} bytes after its ${count} frames`);
  return frames;
}

export type MessageHeaders = Record<string, string | undefined>;

export function encodeSingleFrame(f: TopicFrame): { value: Buffer; headers: Record<string, string> } {
  const headers: Record<string, string> = {
    [FRAME_HEADERS.linkType]: String(f.linkType),
    [FRAME_HEADERS.tsUs]: String(f.tsUs),
  };
  if (f.origLength > f.data.length) headers[FRAME_HEADERS.origLength] = String(f.origLength);
  if (f.interfaceId) headers[FRAME_HEADERS.interfaceId] = String(f.interfaceId);
  return { value: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), headers };
}

function headerInt(headers: MessageHeaders, name: string, max: number): number | undefined {
  const text = headers[name];
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text) || Number(text) > max) throw new TopicFormatError(`header ${name}='${text.slice(0, 40)}' is not an integer from 0 to ${max}`);
  return Number(text);
}

export function decodeSingleFrame(value: Uint8Array, headers: MessageHeaders, messageTimestampMs: number): TopicFrame {
  const linkType = headerInt(headers, FRAME_HEADERS.linkType, 0xffff);
  if (linkType === undefined) throw new TopicFormatError(`single-frame message without the ${FRAME_HEADERS.linkType} header`);
  const tsUs = headerInt(headers, FRAME_HEADERS.tsUs, Number.MAX_SAFE_INTEGER) ?? messageTimestampMs * 1000;
  return {
    tsUs,
    linkType,
    interfaceId: headerInt(headers, FRAME_HEADERS.interfaceId, 0xffff) ?? 0,
    data: value,
    origLength: Math.max(headerInt(headers, FRAME_HEADERS.origLength, 0xffffffff) ?? 0, value.length),
  };
}

/** The zone a message's `ctflow-zone` header names, if it has one; a bad value makes the message a dead letter. */
export function messageZone(headers: MessageHeaders): number | undefined {
  const text = headers[ZONE_HEADER];
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 0xffff) throw new TopicFormatError(`header ${ZONE_HEADER}='${text.slice(0, 40)}' is not a zone (an integer from 0 to 65535)`);
  return Number(text);
}

/** A captured-traffic message in either form: the link-type header marks a single frame, the magic a batch. */
export function decodeCapturedTraffic(value: Uint8Array, headers: MessageHeaders, messageTimestampMs: number): TopicFrame[] {
  if (headers[FRAME_HEADERS.linkType] !== undefined) return [decodeSingleFrame(value, headers, messageTimestampMs)];
  if (isFrameBatch(value)) return decodeFrameBatch(value);
  throw new TopicFormatError(`captured-traffic message is neither a frame batch (no "CTFB" magic) nor a single frame (no ${FRAME_HEADERS.linkType} header)`);
}
