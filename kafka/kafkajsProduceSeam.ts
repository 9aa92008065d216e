/**
 * Puts ctflow's produce request encoder (produceRequest.ts) and a linear message grouping into
 * kafkajs, which spends a third of a Kafka replay's CPU building produce requests: per record it
 * allocates an Encoder and copies bytes level by level, computes CRC-32C a byte at a time, and
 * groups the messages of a partition by copying the partition's array once per message
 * (quadratic in the messages per partition of a request).
 *
 * kafkajs has no plug-in point for either, so this reaches into its modules, and only into the
 * release it was checked against, kafkajs 2.2.4 (package.json pins it exactly; it is also
 * kafkajs's last release). Any other version, or a failed self-check, leaves kafkajs as it is and
 * says so once on stderr: the wire bytes are the same either way, only the CPU differs.
 *
 * - Encoding: kafkajs looks its Produce request up per request through the `protocol` function of
 *   its Produce request definition (protocol/requests/produce/index.js, called from
 *   broker/index.js). Wrapping that function replaces `encode` of the requests it builds
 *   (versions 3 to 7 share one body) and keeps everything else: api key and version, response
 *   parsing, retries, sequence numbers. Compressed requests, and messages of shapes the encoder
 *   does not reproduce, are encoded by kafkajs. Before the first use, one sample request is
 *   encoded both ways and compared byte for byte.
 * - Grouping: producer/sendMessages.js takes producer/groupMessagesPerPartition.js when it is
 *   loaded, so the replacement goes into node's module cache before kafkajs is first required:
 *   client.ts imports this module before kafkajs. It returns the same object (partition to
 *   messages in order, the partitioner called in order for each message that names no partition
 *   number: for one that does, kafkajs's partitioners return that number).
 * - Framing: protocol/request.js puts the request header and size in front of the body by copying
 *   the body into a growing Encoder twice (each growth a zero-filled Buffer.alloc): for a 512 KiB
 *   produce, two 1 MiB allocations and two copies. ctflow's encoder leaves room in front of the
 *   body, and the replacement (put into node's module cache before network/connection.js loads
 *   it, as for grouping) writes the size and header there: the socket gets the encoder's own
 *   buffer. Requests the encoder did not write are framed by kafkajs's function.
 */
import { ChunkMessage } from './chunkMessage';
import { encodeProduceRequest } from './produceRequest';
import type { ProduceRequestArgs } from './produceRequest';

const CHECKED_VERSION = '2.2.4';
/** Produce versions whose body is produce/v3/request.js's (v4 to v7 reuse it): record batches v2. */
const FIRST_V2_BATCH_VERSION = 3;
/** kafkajs 2.2.4's highest Produce version. */
const LAST_CHECKED_VERSION = 7;

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
}
interface ProduceRequest {
  encode(): Promise<KafkajsEncoder>;
}
type BuildRequest = (args: ProduceRequestArgs) => { request: ProduceRequest; response: unknown };
interface ProduceDefinition {
  versions: string[];
  protocol(o: { version: number }): BuildRequest;
}
/** protocol/request.js: a request's size, header and body, as connection.js writes it to the socket. */
type FrameRequest = (o: { correlationId: number; clientId: string | null; request: { apiKey: number; apiVersion: number; encode(): Promise<KafkajsEncoder> } }) => Promise<KafkajsEncoder>;
type Partitioner = (o: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
type GroupMessages = (o: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }) => Record<string, unknown[]>;

const WRAPPED = Symbol('ctflow produce encoder');

/**
 * Bytes the produce encoder leaves in front of a body for the request's size and header (4 + 2 +
 * 2 + 4 + 2 + the client id's bytes); a longer client id makes kafkajs frame the request.
 */
const HEADROOM = 256;

export interface SeamStatus {
  encoder: 'ctflow' | 'kafkajs';
  grouping: 'ctflow' | 'kafkajs';
  framing: 'ctflow' | 'kafkajs';
  /** Why kafkajs's own code is used, when it is. */
  reasons: string[];
}

const status: SeamStatus = { encoder: 'kafkajs', grouping: 'kafkajs', framing: 'kafkajs', reasons: [] };

/** Bodies written by ctflow's encoder (kafkajs Encoders), to the whole buffer with HEADROOM bytes before the body. */
const withHeadroom = new WeakMap<KafkajsEncoder, Buffer>();

/** What is installed, for tests and diagnostics. */
export function produceSeamStatus(): SeamStatus {
  return { ...status, reasons: [...status.reasons] };
}

/**
 * kafkajs's own grouping, without the copy: the same partition-to-messages object. kafkajs's
 * `{ ...result, [p]: [...current, message] }` copies a partition's array for each of its messages.
 */
export const groupMessagesPerPartition: GroupMessages = ({ topic, partitionMetadata, messages, partitioner }) => {
  const result: Record<string, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    // A message naming its partition goes there: kafkajs's partitioners return it first thing,
    // after building an argument object and filtering the partition list per message.
    const named = (message as { partition?: unknown }).partition;
    const partition = typeof named === 'number' ? named : partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
};

/** Leaves kafkajs's own code in place for these parts and says why, once, on stderr. */
type Part = 'encoder' | 'grouping' | 'framing';
const WHAT: Record<Part, string> = { encoder: 'encodes produce requests', grouping: 'groups messages per partition', framing: 'frames produce requests' };

function fallBack(parts: Part[], reason: string): void {
  for (const part of parts) status[part] = 'kafkajs';
  status.reasons.push(reason);
  const what = parts.map((p) => WHAT[p]).join(' and ');
  process.emitWarning(`kafkajs ${what} itself (slower, same bytes): ${reason}`, { code: 'CTFLOW_KAFKAJS_SEAM' });
}

function install(): void {
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== CHECKED_VERSION) {
    return fallBack(['encoder', 'grouping', 'framing'], `kafkajs ${version} is not ${CHECKED_VERSION}, the release ctflow's encoder was checked against`);
  }
  // Both replace a module in node's module cache, which only works before kafkajs loads it.
  const cache = require.cache as Record<string, unknown>;
  if (cache[require.resolve('kafkajs/src/producer/sendMessages')] || cache[require.resolve('kafkajs/src/network/connection')]) {
    fallBack(['grouping', 'framing'], 'kafkajs was loaded before kafka/client.ts');
  } else {
    installGrouping();
    installFraming();
  }
  installEncoder();
}

/** kafkajs's protocol/request.js as it is, for requests ctflow's encoder did not write. */
let kafkajsFrame: FrameRequest | undefined;

function installFraming(): void {
  const cache = require.cache as Record<string, { exports: unknown } | undefined>;
  const path = require.resolve('kafkajs/src/protocol/request');
  kafkajsFrame = require(path) as FrameRequest;
  const entry = cache[path];
  if (entry) entry.exports = frameRequest;
  if (require(path) !== frameRequest) return fallBack(['framing'], "node's module cache cannot be written here");
  status.framing = 'ctflow';
}

/**
 * protocol/request.js's bytes (int32 size of what follows, int16 api key, int16 api version,
 * int32 correlation id, the client id as a nullable int16-length string, the body), written into
 * the room ctflow's encoder left in front of the body.
 */
export const frameRequest: FrameRequest = async (o) => {
  const payload = await o.request.encode();
  const whole = withHeadroom.get(payload);
  const clientId = o.clientId;
  const idBytes = clientId === null || clientId === undefined ? 0 : Buffer.byteLength(clientId, 'utf8');
  const header = 4 + 2 + 2 + 4 + 2 + idBytes;
  if (!whole || header > HEADROOM || !kafkajsFrame) {
    return kafkajsFrame!({ ...o, request: { apiKey: o.request.apiKey, apiVersion: o.request.apiVersion, encode: async () => payload } });
  }
  const start = HEADROOM - header;
  let at = whole.writeInt32BE(whole.length - start - 4, start);
  at = whole.writeInt16BE(o.request.apiKey, at);
  at = whole.writeInt16BE(o.request.apiVersion, at);
  at = whole.writeInt32BE(o.correlationId, at);
  if (clientId === null || clientId === undefined) at = whole.writeInt16BE(-1, at);
  else at += whole.write(clientId, whole.writeInt16BE(idBytes, at), idBytes, 'utf8');
  return asEncoder(whole.subarray(start));
};

function asEncoder(bytes: Buffer): KafkajsEncoder {
  const Encoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => KafkajsEncoder;
  const encoder = new Encoder(0);
  encoder.buf = bytes;
  encoder.offset = bytes.length;
  return encoder;
}

function installGrouping(): void {
  const cache = require.cache as Record<string, { exports: unknown } | undefined>;
  const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition');
  require(path);
  const entry = cache[path];
  if (entry) entry.exports = groupMessagesPerPartition;
  if (require(path) !== groupMessagesPerPartition) return fallBack(['grouping'], "node's module cache cannot be written here");
  status.grouping = 'ctflow';
}

function installEncoder(): void {
  const produce = require('kafkajs/src/protocol/requests/produce') as ProduceDefinition & { [WRAPPED]?: true };
  if (produce[WRAPPED]) return;
  const highest = Math.max(...produce.versions.map(Number));
  if (highest !== LAST_CHECKED_VERSION || typeof produce.protocol !== 'function') {
    return fallBack(['encoder'], `kafkajs's Produce request is not the one checked (versions up to ${highest})`);
  }
  const kafkajsProtocol = produce.protocol;
  let checked: Promise<boolean> | undefined;

  produce.protocol = ({ version }) => {
    const build = kafkajsProtocol({ version });
    if (version < FIRST_V2_BATCH_VERSION || version > LAST_CHECKED_VERSION) return (args) => build(asPlainMessages(args));
    return (args) => {
      const built = build(args);
      const own = built.request.encode;
      // kafkajs copies each message with a spread, which leaves a ChunkMessage's value and
      // timestamp (getters) behind: it encodes them as plain objects.
      const kafkajsEncode = () => (hasChunkMessages(args) ? build(asPlainMessages(args)).request.encode() : own());
      built.request.encode = async () => {
        if (!(await (checked ??= selfCheck(build)))) return kafkajsEncode();
        const room = status.framing === 'ctflow' ? HEADROOM : 0;
        const bytes = encodeProduceRequest(args, room);
        if (!bytes) return kafkajsEncode();
        // kafkajs takes the body as one of its Encoders; frameRequest finds the room in front of it.
        const encoder = asEncoder(room ? bytes.subarray(room) : bytes);
        if (room) withHeadroom.set(encoder, bytes);
        return encoder;
      };
      return built;
    };
  };
  produce[WRAPPED] = true;
  status.encoder = 'ctflow';
  chunkMessages = true;
}

/** Whether a produce request may carry ChunkMessages (kafka/chunkMessage.ts) as messages: once the encoder is in place, which hands them to kafkajs as plain messages when kafkajs encodes. */
let chunkMessages = false;

export function acceptsChunkMessages(): boolean {
  return chunkMessages;
}

function hasChunkMessages(args: ProduceRequestArgs): boolean {
  for (const t of args.topicData) for (const p of t.partitions) for (const m of p.messages) if (m instanceof ChunkMessage) return true;
  return false;
}

/** The request with each ChunkMessage as the plain message kafkajs's encoder reads (its value a Buffer view of the chunk). */
function asPlainMessages(args: ProduceRequestArgs): ProduceRequestArgs {
  if (!hasChunkMessages(args)) return args;
  return {
    ...args,
    topicData: args.topicData.map((t) => ({
      ...t,
      partitions: t.partitions.map((p) => ({ ...p, messages: p.messages.map((m) => (m instanceof ChunkMessage ? { key: m.key, value: m.value, timestamp: m.timestamp } : m)) })),
    })),
  };
}

/** Encodes one request with the parts of a produce that vary, both ways, and compares the bytes. */
async function selfCheck(build: BuildRequest): Promise<boolean> {
  const args = sampleRequest();
  const ours = encodeProduceRequest(args);
  const theirs = await build(asPlainMessages(args)).request.encode();
  const same = ours !== undefined && ours.equals(theirs.buf.subarray(0, theirs.offset));
  if (!same) fallBack(['encoder'], 'its bytes differ from kafkajs\'s on the start-up sample');
  else if (status.framing === 'ctflow' && !(await framingAgrees(ours))) fallBack(['framing'], "its framing differs from kafkajs's on the start-up sample");
  return same;
}

/** Frames one body both ways (ctflow's in the room in front of it, kafkajs's by copying) and compares the bytes. */
async function framingAgrees(body: Buffer): Promise<boolean> {
  const whole = Buffer.alloc(HEADROOM + body.length);
  body.copy(whole, HEADROOM);
  const payload = asEncoder(whole.subarray(HEADROOM));
  withHeadroom.set(payload, whole);
  const request = { apiKey: 0, apiVersion: 7, encode: async () => payload };
  for (const clientId of ['ctflow-self-check-é', null]) {
    const ours = await frameRequest({ correlationId: 123456, clientId, request });
    const theirs = await kafkajsFrame!({ correlationId: 123456, clientId, request });
    if (!ours.buf.subarray(0, ours.offset).equals(theirs.buf.subarray(0, theirs.offset))) return false;
  }
  return true;
}

/** A message whose value is 9 bytes in the middle of a chunk. */
const SAMPLE_CHUNK_MESSAGE = new ChunkMessage('ctflow.self-check', 'k4', 1, 1_700_000_000_007, Buffer.from('xx{"b":[2]}yy'), 2, 11);

function sampleRequest(): ProduceRequestArgs {
  const ts = 1_700_000_000_000;
  return {
    acks: -1,
    timeout: 30000,
    transactionalId: 'ctflow-self-check',
    producerId: '4242',
    producerEpoch: 3,
    topicData: [
      {
        topic: 'ctflow.self-check',
        partitions: [
          {
            partition: 1,
            firstSequence: 77,
            messages: [
              { key: Buffer.from('k1'), value: Buffer.from('{"a":1}'), timestamp: String(ts + 5), headers: { 'ctflow-zone': '2' } },
              { key: null, value: Buffer.alloc(300, 0x61), timestamp: String(ts), headers: { h: ['x', Buffer.from('y')] } },
              { key: 'é', value: null, timestamp: String(ts + 1_000_000) },
              SAMPLE_CHUNK_MESSAGE,
            ],
          },
          { partition: 0, firstSequence: 0, messages: [{ value: '', timestamp: String(ts) }] },
        ],
      },
    ],
  };
}

install();
