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
 *   messages in order, the partitioner called once per message in order).
 */
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
type Partitioner = (o: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
type GroupMessages = (o: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }) => Record<string, unknown[]>;

const WRAPPED = Symbol('ctflow produce encoder');

export interface SeamStatus {
  encoder: 'ctflow' | 'kafkajs';
  grouping: 'ctflow' | 'kafkajs';
  /** Why kafkajs's own code is used, when it is. */
  reasons: string[];
}

const status: SeamStatus = { encoder: 'kafkajs', grouping: 'kafkajs', reasons: [] };

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
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
};

/** Leaves kafkajs's own code in place for these parts and says why, once, on stderr. */
function fallBack(parts: Array<'encoder' | 'grouping'>, reason: string): void {
  for (const part of parts) status[part] = 'kafkajs';
  status.reasons.push(reason);
  const what = parts.map((p) => (p === 'encoder' ? 'encodes produce requests' : 'groups messages per partition')).join(' and ');
  process.emitWarning(`kafkajs ${what} itself (slower, same bytes): ${reason}`, { code: 'CTFLOW_KAFKAJS_SEAM' });
}

function install(): void {
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== CHECKED_VERSION) {
    return fallBack(['encoder', 'grouping'], `kafkajs ${version} is not ${CHECKED_VERSION}, the release ctflow's encoder was checked against`);
  }
  installGrouping();
  installEncoder();
}

function installGrouping(): void {
  const cache = require.cache as Record<string, { exports: unknown } | undefined>;
  if (cache[require.resolve('kafkajs/src/producer/sendMessages')]) {
    return fallBack(['grouping'], 'kafkajs was loaded before kafka/client.ts');
  }
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
  const Encoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => KafkajsEncoder;
  const kafkajsProtocol = produce.protocol;
  let checked: Promise<boolean> | undefined;

  produce.protocol = ({ version }) => {
    const build = kafkajsProtocol({ version });
    if (version < FIRST_V2_BATCH_VERSION || version > LAST_CHECKED_VERSION) return build;
    return (args) => {
      const built = build(args);
      const kafkajsEncode = built.request.encode;
      built.request.encode = async () => {
        if (!(await (checked ??= selfCheck(build)))) return kafkajsEncode();
        const bytes = encodeProduceRequest(args);
        if (!bytes) return kafkajsEncode();
        // kafkajs takes the body as one of its Encoders (protocol/request.js copies `buffer` out of it).
        const encoder = new Encoder(0);
        encoder.buf = bytes;
        encoder.offset = bytes.length;
        return encoder;
      };
      return built;
    };
  };
  produce[WRAPPED] = true;
  status.encoder = 'ctflow';
}

/** Encodes one request with the parts of a produce that vary, both ways, and compares the bytes. */
async function selfCheck(build: BuildRequest): Promise<boolean> {
  const args = sampleRequest();
  const ours = encodeProduceRequest(args);
  const theirs = await build(args).request.encode();
  const same = ours !== undefined && ours.equals(theirs.buf.subarray(0, theirs.offset));
  if (!same) fallBack(['encoder'], 'its bytes differ from kafkajs\'s on the start-up sample');
  return same;
}

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
            ],
          },
          { partition: 0, firstSequence: 0, messages: [{ value: '', timestamp: String(ts) }] },
        ],
      },
    ],
  };
}

install();
