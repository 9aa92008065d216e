/**
 * kafka/produceRequest.ts writes the bytes kafkajs's own Produce request encoder writes
 * (protocol/requests/produce/v3/request.js, used for versions 3 to 7), on random requests; and
 * kafka/kafkajsProduceSeam.ts puts it (and its linear message grouping) into kafkajs.
 */
import fc from 'fast-check';
import { encodeProduceRequest } from '../../kafka/produceRequest';
import type { ProduceMessage, ProduceRequestArgs } from '../../kafka/produceRequest';
import { acceptsChunkMessages, frameRequest, groupMessagesPerPartition, produceSeamStatus } from '../../kafka/kafkajsProduceSeam';
import { ChunkMessage } from '../../kafka/chunkMessage';
import '../../kafka/client';

interface KafkajsEncoder {
  buffer: Buffer;
}
interface Request {
  encode(): Promise<KafkajsEncoder>;
}

// kafkajs's own modules, the reference: the v3 request module itself is left as it is by the seam.
const kafkajsProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (args: ProduceRequestArgs) => Request;
const produceDefinition = require('kafkajs/src/protocol/requests/produce') as { protocol(o: { version: number }): (args: ProduceRequestArgs) => { request: Request } };
const Long = require('kafkajs/src/utils/long') as { fromValue(v: bigint): unknown };
const GZIP = 1;

async function kafkajsBytes(args: ProduceRequestArgs): Promise<Buffer> {
  return (await kafkajsProduceV3(args).encode()).buffer;
}

const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  // Lone surrogates: UTF-8 encoding replaces them, and both sides must count the same bytes.
  fc.string({ unit: fc.constantFrom('\ud800', '\udfff', 'a', 'é'), maxLength: 6 }),
);
const bytes = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)) },
  // Values whose varint length takes 2 and 3 bytes, up to a large flow record.
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 70_000 }).map((n) => Buffer.alloc(n, n & 0xff)) },
);
const keyOrValue = fc.oneof(fc.constant(null), fc.constant(undefined), bytes, text);
const headerValue = fc.oneof(text, bytes);
const headers = fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })), { maxKeys: 4 }), { nil: undefined });
const timestamp = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }).map(String),
  // Strings of different lengths, where kafkajs's sort by string order differs from numeric order.
  fc.integer({ min: -2000, max: 20_000 }).map(String),
  fc.integer({ min: 0, max: 2_000_000_000_000 }),
  fc.constantFrom(0, '0'),
  // Numbers of 13 digits (compared as numbers by the encoder) next to longer ones and strings.
  fc.integer({ min: 1e12, max: 1e13 - 1 }),
  fc.integer({ min: 1e13 - 1000, max: 1e13 + 1000 }),
);
const message: fc.Arbitrary<ProduceMessage> = fc.record(
  { key: keyOrValue, value: keyOrValue, timestamp, headers },
  { requiredKeys: ['value'] },
);
const producerId = fc.oneof(
  fc.constant(undefined),
  fc.constant(-1),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map((v) => Long.fromValue(v)),
);
const request: fc.Arbitrary<ProduceRequestArgs> = fc.record({
  acks: fc.constantFrom(-1, 0, 1),
  timeout: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  transactionalId: fc.oneof(fc.constant(undefined), fc.constant(null), text),
  producerId,
  producerEpoch: fc.option(fc.integer({ min: 0, max: 32767 }), { nil: undefined }),
  topicData: fc.array(
    fc.record({
      topic: fc.string({ minLength: 1, maxLength: 30 }),
      partitions: fc.array(
        fc.record({
          partition: fc.oneof(fc.nat(1000), fc.nat(1000).map(String)),
          firstSequence: fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { nil: undefined }),
          messages: fc.array(message, { maxLength: 25 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** Runs with Date.now() fixed: kafkajs stamps messages without a timestamp with it, once per partition. */
async function atTime<T>(now: number, f: () => Promise<T>): Promise<T> {
  const spy = jest.spyOn(Date, 'now').mockReturnValue(now);
  try {
    return await f();
  } finally {
    spy.mockRestore();
  }
}

describe('produce request encoder', () => {
  it("writes kafkajs's bytes for random requests (keys, values, headers, timestamps, producer id/epoch/sequence, transactions)", async () => {
    await fc.assert(
      fc.asyncProperty(request, fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }), async (args, now) => {
        await atTime(now, async () => {
          const ours = encodeProduceRequest(args);
          expect(ours).toBeDefined();
          expect(ours!.equals(await kafkajsBytes(args))).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("a partition's batch of hundreds of records, as the pipeline sends them", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ key: bytes, value: bytes, timestamp: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }).map(String) }), { minLength: 200, maxLength: 800 }), async (messages) => {
        const args: ProduceRequestArgs = { acks: -1, timeout: 30000, producerId: '17', producerEpoch: 2, topicData: [{ topic: 't.flows', partitions: [{ partition: 3, firstSequence: 1234, messages }] }] };
        expect(encodeProduceRequest(args)!.equals(await kafkajsBytes(args))).toBe(true);
      }),
      { numRuns: 10 },
    );
  });

  it("kafkajs writes a positive safe integer timestamp as a number as it writes its string (kafka/client.ts sends numbers)", async () => {
    const ts = fc.oneof(fc.integer({ min: 1, max: 2 ** 53 - 1 }), fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }), fc.integer({ min: 1, max: 20_000 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ value: bytes, timestamp: fc.option(ts, { nil: undefined }) }), { minLength: 1, maxLength: 30 }), async (list) => {
        const args = (messages: ProduceMessage[]): ProduceRequestArgs => ({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages }] }] });
        await atTime(1_700_000_000_000, async () => {
          const asNumbers = await kafkajsBytes(args(list));
          const asStrings = await kafkajsBytes(args(list.map((m) => ({ ...m, timestamp: m.timestamp === undefined ? undefined : String(m.timestamp) }))));
          expect(asNumbers.equals(asStrings)).toBe(true);
          // Deltas of 2^51 ms and more are left to kafkajs (undefined here).
          const ours = encodeProduceRequest(args(list));
          if (ours) expect(ours.equals(asStrings)).toBe(true);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('leaves to kafkajs what it does not reproduce: compression, other key types, null header values, fractional timestamps', () => {
    const base = (m: ProduceMessage, compression?: number): ProduceRequestArgs => ({ acks: -1, timeout: 1000, compression, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [m] }] }] });
    expect(encodeProduceRequest(base({ value: Buffer.from('x') }))).toBeDefined();
    expect(encodeProduceRequest(base({ value: Buffer.from('x') }, GZIP))).toBeUndefined();
    expect(encodeProduceRequest(base({ key: 5, value: 'x' }))).toBeUndefined();
    expect(encodeProduceRequest(base({ value: new Uint8Array(3) }))).toBeUndefined();
    expect(encodeProduceRequest(base({ value: 'x', headers: { h: null } }))).toBeUndefined();
    expect(encodeProduceRequest(base({ value: 'x', timestamp: '1.5' }))).toBeUndefined();
  });
});

/**
 * The request with some messages made ChunkMessages (their Buffer value inside a larger chunk):
 * those a ChunkMessage can be, a text or no key, no headers, a positive whole millisecond time.
 */
let chunkMessagesMade = 0;
function withChunkMessages(args: ProduceRequestArgs, pick: boolean[], pad: number): ProduceRequestArgs {
  let i = 0;
  return {
    ...args,
    topicData: args.topicData.map((t) => ({
      ...t,
      partitions: t.partitions.map((p) => ({
        ...p,
        messages: p.messages.map((m) => {
          const ms = Number(m.timestamp);
          const fits = Buffer.isBuffer(m.value) && (m.key === undefined || m.key === null || typeof m.key === 'string') && m.headers === undefined && Number.isSafeInteger(ms) && ms > 0 && String(ms) === String(m.timestamp);
          if (!fits || !pick[i++ % pick.length]) return m;
          const value = m.value as Buffer;
          const chunk = Buffer.concat([Buffer.alloc(pad, 0x7b), value, Buffer.alloc(pad + 3, 0x7d)]);
          chunkMessagesMade++;
          return new ChunkMessage(t.topic, m.key as string | null | undefined, Number(p.partition), ms, chunk, pad, pad + value.length);
        }),
      })),
    })),
  };
}

describe('ChunkMessages', () => {
  it("are written as kafkajs writes the same messages with Buffer values, directly and through the seam (compressed ones by kafkajs)", async () => {
    await fc.assert(
      fc.asyncProperty(request, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), fc.nat(40), fc.integer({ min: 3, max: 7 }), fc.constantFrom(undefined, GZIP), async (args, pick, pad, version, compression) => {
        await atTime(1_700_000_000_000, async () => {
          const chunked = withChunkMessages(args, pick, pad);
          const want = await kafkajsBytes(args);
          expect(encodeProduceRequest(chunked)!.equals(want)).toBe(true);
          const viaSeam = (await produceDefinition.protocol({ version })({ ...chunked, compression }).request.encode()).buffer;
          expect(viaSeam.equals(await kafkajsBytes({ ...args, compression }))).toBe(true);
        });
      }),
      { numRuns: 150 },
    );
    expect(chunkMessagesMade).toBeGreaterThan(10); // the property saw ChunkMessages, not only plain messages
  });

  it('give their value as a Buffer to everyone else', () => {
    const m = new ChunkMessage('t', 'k', 2, 5, Buffer.from('ab{"x":1}cd'), 2, 9);
    expect(m.value.toString()).toBe('{"x":1}');
    expect(m.valueLength).toBe(7);
  });
});

describe('kafkajs produce seam', () => {
  it('is installed here (kafkajs 2.2.4, loaded after the seam)', () => {
    expect(produceSeamStatus()).toEqual({ encoder: 'ctflow', grouping: 'ctflow', framing: 'ctflow', reasons: [] });
    expect(acceptsChunkMessages()).toBe(true);
    // kafkajs's producer took the replacement when it was loaded.
    expect(require('kafkajs/src/producer/groupMessagesPerPartition')).toBe(groupMessagesPerPartition);
  });

  it('refuses to install into another kafkajs release, and says so once', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      jest.isolateModules(() => {
        jest.doMock('kafkajs/package.json', () => ({ version: '2.3.0' }));
        const seam = require('../../kafka/kafkajsProduceSeam') as typeof import('../../kafka/kafkajsProduceSeam');
        expect(seam.produceSeamStatus()).toMatchObject({ encoder: 'kafkajs', grouping: 'kafkajs', framing: 'kafkajs' });
        // kafkajs's own encoder copies messages with a spread, which would drop a ChunkMessage's value.
        expect(seam.acceptsChunkMessages()).toBe(false);
        expect(require('kafkajs/src/producer/groupMessagesPerPartition')).not.toBe(seam.groupMessagesPerPartition);
        const produce = require('kafkajs/src/protocol/requests/produce') as { protocol: unknown; [k: symbol]: unknown };
        expect(Object.getOwnPropertySymbols(produce)).toEqual([]);
      });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/kafkajs 2\.3\.0 is not 2\.2\.4/);
    } finally {
      warn.mockRestore();
      jest.dontMock('kafkajs/package.json');
    }
  });

  it('keeps kafkajs grouping when kafkajs was loaded first, and still encodes', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      jest.isolateModules(() => {
        require('kafkajs');
        const seam = require('../../kafka/kafkajsProduceSeam') as typeof import('../../kafka/kafkajsProduceSeam');
        expect(seam.produceSeamStatus()).toMatchObject({ encoder: 'ctflow', grouping: 'kafkajs', framing: 'kafkajs' });
      });
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  it("kafkajs's Produce requests v3 to v7 encode to kafkajs's bytes, compressed ones by kafkajs itself", async () => {
    await fc.assert(
      fc.asyncProperty(request, fc.integer({ min: 3, max: 7 }), fc.constantFrom(undefined, 0, GZIP), async (args, version, compression) => {
        const withCompression = { ...args, compression };
        await atTime(1_700_000_000_000, async () => {
          const viaSeam = (await produceDefinition.protocol({ version })(withCompression).request.encode()).buffer;
          expect(viaSeam.equals(await kafkajsBytes(withCompression))).toBe(true);
        });
      }),
      { numRuns: 60 },
    );
  });

  it("frames requests as kafkajs's protocol/request.js does: produce requests in the room left in front of them, others by kafkajs", async () => {
    type Frame = (o: { correlationId: number; clientId: string | null; request: unknown }) => Promise<KafkajsEncoder>;
    let kafkajsFrame: Frame | undefined;
    let kafkajsProduce: typeof produceDefinition | undefined;
    jest.isolateModules(() => {
      kafkajsFrame = require('kafkajs/src/protocol/request');
      kafkajsProduce = require('kafkajs/src/protocol/requests/produce');
    });
    expect(kafkajsFrame).not.toBe(frameRequest);
    expect(require('kafkajs/src/protocol/request')).toBe(frameRequest);
    const clientId = fc.oneof(fc.constant(null), fc.string({ maxLength: 30 }), fc.string({ unit: fc.constantFrom('é', '\ud800', 'x'), maxLength: 120 }), fc.constant('c'.repeat(300)));
    await fc.assert(
      fc.asyncProperty(request, fc.integer({ min: 3, max: 7 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), clientId, async (args, version, correlationId, id) => {
        await atTime(1_700_000_000_000, async () => {
          const request = produceDefinition.protocol({ version })(args).request as unknown as { apiKey: number; apiVersion: number; encode(): Promise<{ buf: Buffer; offset: number }> };
          const payload = await request.encode();
          const ours = await frameRequest({ correlationId, clientId: id, request: { apiKey: request.apiKey, apiVersion: request.apiVersion, encode: async () => payload } });
          const theirs = await kafkajsFrame!({ correlationId, clientId: id, request: kafkajsProduce!.protocol({ version })(args).request });
          expect(ours.buf.subarray(0, ours.offset).equals(theirs.buffer)).toBe(true);
          // Uncompressed, with a client id that fits the room: framed where the encoder wrote the body.
          const fits = args.compression === undefined && Buffer.byteLength(id ?? '') <= 256 - 14;
          expect(ours.buf.buffer === payload.buf.buffer).toBe(fits);
        });
      }),
      { numRuns: 150 },
    );
  });

  it("groups messages by partition as kafkajs does: same object, arrays in order, the partitioner called in order", () => {
    let kafkajsGrouping: typeof groupMessagesPerPartition | undefined;
    // A fresh module registry holds kafkajs's own module, untouched by the seam.
    jest.isolateModules(() => {
      kafkajsGrouping = require('kafkajs/src/producer/groupMessagesPerPartition');
    });
    expect(kafkajsGrouping).not.toBe(groupMessagesPerPartition);
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.nat(), p: fc.option(fc.nat(7), { nil: undefined }) }), { maxLength: 60 }), fc.nat(8), (messages, partitions) => {
        const run = (group: typeof groupMessagesPerPartition) => {
          const calls: unknown[] = [];
          let next = 0;
          // Explicit partitions, else round robin: the result depends on the call order.
          const partitioner = ({ message }: { message: unknown }) => {
            calls.push(message);
            const p = (message as { p?: number }).p;
            return p ?? next++ % Math.max(1, partitions);
          };
          const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i }));
          return { result: group({ topic: 't', partitionMetadata, messages, partitioner }), calls };
        };
        expect(run(groupMessagesPerPartition)).toEqual(run(kafkajsGrouping!));
      }),
      { numRuns: 300 },
    );
  });

  it("a message naming its partition goes there without a partitioner call, where kafkajs's own partitioners would put it", () => {
    let kafkajsGrouping: typeof groupMessagesPerPartition | undefined;
    jest.isolateModules(() => {
      kafkajsGrouping = require('kafkajs/src/producer/groupMessagesPerPartition');
    });
    const { Partitioners } = require('kafkajs') as typeof import('kafkajs');
    fc.assert(
      fc.property(fc.array(fc.record({ key: fc.option(fc.string(), { nil: null }), partition: fc.option(fc.nat(7), { nil: undefined }) }), { maxLength: 60 }), (messages) => {
        const partitionMetadata = Array.from({ length: 8 }, (_, i) => ({ partitionId: i, leader: 0 }));
        let calls = 0;
        // A keyed message without a partition is placed by its key's hash: deterministic in both runs.
        const keyed = messages.map((m) => ({ ...m, key: m.key ?? 'k' }));
        const run = (group: typeof groupMessagesPerPartition, count: boolean) => {
          const partitioner = Partitioners.DefaultPartitioner();
          return group({
            topic: 't',
            partitionMetadata,
            messages: keyed,
            partitioner: (o) => {
              if (count) calls++;
              return partitioner(o as Parameters<typeof partitioner>[0]);
            },
          });
        };
        expect(run(groupMessagesPerPartition, true)).toEqual(run(kafkajsGrouping!, false));
        expect(calls).toBe(keyed.filter((m) => m.partition === undefined).length);
      }),
      { numRuns: 200 },
    );
  });
});
