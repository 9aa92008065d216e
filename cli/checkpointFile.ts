/**
 * The local checkpoint of one partition's state (exactly-once `ctflow run`, docs/state-dir.md):
 * the state store's entries in their changelog record form (key -> bytes, so a restore decodes
 * them exactly as it decodes the changelog), the changelog offset they are the compaction of, and
 * the input position. Kafka Streams keeps the same pair locally (its RocksDB store plus the
 * `.checkpoint` file of changelog offsets) so that a restart reads only the changelog's tail.
 *
 * Format version 1, all integers big-endian:
 *
 *   magic "CTFLOWCP" (8) | u16 version | u16 flags (0) | u64 file length | u64 written at (ms since
 *   the epoch) | u64 changelog offset | u8 has position | u64 next input offset | f64 packet clock
 *   (µs) | u32 partition | str group | str input topic | u32 entry count |
 *   entries: str key, u32 value length, value bytes | SHA-256 of everything before it (32)
 *
 * where str is a u32 byte length then UTF-8. The length in the header tells a truncated file from
 * a corrupted one; the digest catches any other change. Encoding and decoding only: files are
 * cli/stateDirectory.ts's.
 */
import { createHash } from 'node:crypto';
import type { Position } from './stateStore';

export const CHECKPOINT_MAGIC = 'CTFLOWCP';
export const CHECKPOINT_VERSION = 1;
const DIGEST_BYTES = 32;

/** What the file says about whose state it is; checked against the partition being restored. */
export interface CheckpointIdentity {
  group: string;
  inputTopic: string;
  partition: number;
}

export interface Checkpoint extends CheckpointIdentity {
  /** Wall clock when it was written (ms): compared with the changelog's delete.retention.ms. */
  writtenMs: number;
  /**
   * The changelog offset the entries are the compaction of: every committed record before it is
   * in them, so a restore reads the changelog from here to its end.
   */
  changelogOffset: bigint;
  /** The input position of the last commit (absent when nothing was committed yet). */
  position?: Position;
  records: Map<string, Uint8Array>;
}

/** A checkpoint as written: its records may be any map (the processor's snapshot). */
export type CheckpointToWrite = Omit<Checkpoint, 'records'> & { records: ReadonlyMap<string, Uint8Array> };

/** Why a checkpoint cannot be used: said in the log line of the full restore that replaces it. */
export class CheckpointFormatError extends Error {}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The file's bytes, as a list of chunks to write in order (one per entry would be too many: they are gathered into ~1 MiB chunks). */
export function encodeCheckpoint(c: CheckpointToWrite): Buffer[] {
  const group = utf8.encode(c.group);
  const topic = utf8.encode(c.inputTopic);
  const head = Buffer.alloc(8 + 2 + 2 + 8 + 8 + 8 + 1 + 8 + 8 + 4 + 4 + group.length + 4 + topic.length + 4);
  let at = head.write(CHECKPOINT_MAGIC, 0, 'latin1');
  at = head.writeUInt16BE(CHECKPOINT_VERSION, at);
  at = head.writeUInt16BE(0, at);
  const lengthAt = at;
  at += 8;
  at = head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(c.writtenMs))), at);
  at = head.writeBigUInt64BE(c.changelogOffset, at);
  at = head.writeUInt8(c.position ? 1 : 0, at);
  at = head.writeBigUInt64BE(c.position ? BigInt(c.position.nextOffset) : 0n, at);
  at = head.writeDoubleBE(c.position?.lastPacketUs ?? 0, at);
  at = head.writeUInt32BE(c.partition, at);
  at = head.writeUInt32BE(group.length, at);
  at += Buffer.from(group.buffer, group.byteOffset, group.length).copy(head, at);
  at = head.writeUInt32BE(topic.length, at);
  at += Buffer.from(topic.buffer, topic.byteOffset, topic.length).copy(head, at);
  head.writeUInt32BE(c.records.size, at);

  const chunks: Buffer[] = [head];
  const CHUNK = 1 << 20;
  let chunk = Buffer.allocUnsafe(CHUNK);
  let used = 0;
  const flush = () => {
    if (used > 0) chunks.push(chunk.subarray(0, used));
    chunk = Buffer.allocUnsafe(CHUNK);
    used = 0;
  };
  for (const [key, value] of c.records) {
    // At most 3 bytes per UTF-16 unit; the key is written in place and its length put before it.
    const need = 8 + key.length * 3 + value.length;
    if (need > CHUNK) {
      flush();
      chunk = Buffer.allocUnsafe(need);
    } else if (used + need > CHUNK) flush();
    const keyBytes = chunk.write(key, used + 4, 'utf8');
    chunk.writeUInt32BE(keyBytes, used);
    used += 4 + keyBytes;
    used = chunk.writeUInt32BE(value.length, used);
    chunk.set(value, used);
    used += value.length;
  }
  flush();
  const total = chunks.reduce((n, b) => n + b.length, 0) + DIGEST_BYTES;
  head.writeBigUInt64BE(BigInt(total), lengthAt);
  const hash = createHash('sha256');
  for (const b of chunks) hash.update(b);
  chunks.push(hash.digest());
  return chunks;
}

/**
 * Reads a checkpoint; throws CheckpointFormatError saying what is wrong (not a checkpoint, another
 * format version, truncated, checksum mismatch, malformed). Entry values are views into `bytes`.
 */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new CheckpointFormatError(why);
  };
  if (b.length < 20 || b.toString('latin1', 0, 8) !== CHECKPOINT_MAGIC) fail(`not a ctflow checkpoint (${b.length < 8 ? `${b.length} bytes` : 'no CTFLOWCP magic'})`);
  const version = b.readUInt16BE(8);
  if (version !== CHECKPOINT_VERSION) fail(`format version ${version} (this build reads version ${CHECKPOINT_VERSION})`);
  const flags = b.readUInt16BE(10);
  if (flags !== 0) fail(`unknown flags ${flags}`);
  const length = b.readBigUInt64BE(12);
  if (BigInt(b.length) < length) fail(`truncated: ${b.length} of ${length} bytes`);
  if (BigInt(b.length) > length) fail(`${BigInt(b.length) - length} bytes past its end`);
  const body = b.subarray(0, b.length - DIGEST_BYTES);
  if (!createHash('sha256').update(body).digest().equals(b.subarray(b.length - DIGEST_BYTES))) fail('checksum mismatch');

  let at = 20;
  const need = (n: number) => {
    if (at + n > body.length) fail(`malformed: field at byte ${at} runs past the entries`);
  };
  const u32 = () => {
    need(4);
    const v = body.readUInt32BE(at);
    at += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = body.readBigUInt64BE(at);
    at += 8;
    return v;
  };
  const str = () => {
    const n = u32();
    need(n);
    const s = fromUtf8.decode(body.subarray(at, at + n));
    at += n;
    return s;
  };
  const writtenMs = Number(u64());
  const changelogOffset = u64();
  need(1);
  const hasPosition = body.readUInt8(at++);
  const nextOffset = u64();
  need(8);
  const lastPacketUs = body.readDoubleBE(at);
  at += 8;
  const partition = u32();
  const group = str();
  const inputTopic = str();
  const count = u32();
  const records = new Map<string, Uint8Array>();
  // The loop of a million entries, so without the helpers' closures; every length is still checked.
  const end = body.length;
  for (let i = 0; i < count; i++) {
    if (at + 4 > end) fail(`malformed: entry ${i} runs past the entries`);
    const k = body.readUInt32BE(at);
    if (at + 8 + k > end) fail(`malformed: entry ${i} runs past the entries`);
    const key = body.toString('utf8', at + 4, at + 4 + k);
    at += 4 + k;
    const n = body.readUInt32BE(at);
    at += 4;
    if (at + n > end) fail(`malformed: entry ${i} runs past the entries`);
    records.set(key, new Uint8Array(body.buffer, body.byteOffset + at, n));
    if (records.size !== i + 1) fail(`malformed: key '${key}' twice`);
    at += n;
  }
  if (at !== body.length) fail(`malformed: ${body.length - at} bytes after the last entry`);
  const c: Checkpoint = { group, inputTopic, partition, writtenMs, changelogOffset, records };
  if (hasPosition === 1) c.position = { nextOffset: nextOffset.toString(), lastPacketUs };
  else if (hasPosition !== 0) fail(`malformed: position flag ${hasPosition}`);
  return c;
}
