/**
 * The Kafka pipeline's partition workers without a broker: what crosses the threads comes back
 * as it went (pack/unpack), a partition's steps in a worker are the steps its engine makes in
 * this thread (outputs, commit offsets, counts, transitions, state changes, restores), and a
 * worker that fails or dies fails its requests with its number and the partition, never hangs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { InputMessage, OutputMessage } from '../../../kafka/client';
import { openCapture } from '../../../ingest/capture/reader';
import { decodeFrame } from '../../../ingest/decode/index';
import { encodeFrameBatch, encodeSingleFrame } from '../../../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../../../ingest/kafka/capturedTraffic';
import { flowKeyHash } from '../../../ingest/kafka/partitionKey';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { OutputEncoder } from '../../../sinks/kafka/outputTopics';
import { ChunkMessage } from '../../../kafka/chunkMessage';
import { packInput, packOutput, packRecords, unpackInput, unpackOutput, unpackRecords } from '../../../cli/workers/partitionMessages';
import { PartitionRun } from '../../../cli/workers/partitionRun';
import type { PartitionRunConfig, PartitionStep } from '../../../cli/workers/partitionRun';
import { PartitionWorkers } from '../../../cli/workers/partitionWorkers';
import type { PartitionWorkerSetup } from '../../../cli/workers/partitionProtocol';
import { PipelineTelemetry } from '../../../sinks/telemetry/telemetry';
import { TableReadError } from '../../../sinks/telemetry/tableRequests';
import { flowPage, parseFlowQuery } from '../../../sinks/http/flowQuery';
import { captureArb } from './randomCaptures';
import { runCliAsync } from '../runCli';

const SAMPLE = join(__dirname, '..', '..', 'fixtures', 'sample.pcap');
const PARTITIONS = 3;
const outputs = { transitions: 'out.transitions', flows: 'out.flows', deadLetter: 'out.dead', verdicts: 'out.verdicts' };
const outputPartitions = { transitions: PARTITIONS, flows: PARTITIONS, verdicts: PARTITIONS, deadLetter: PARTITIONS };
const sysctl = makeSysctl(['nf_conntrack_udp_timeout=10', 'nf_conntrack_icmp_timeout=5']);

const bytesArb = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b));
const textArb = fc.string({ unit: 'grapheme', maxLength: 20 });

describe('what crosses to and from a partition worker', () => {
  test('input batches unpack to the messages packed', () => {
    const message = fc.record({
      offset: fc.bigInt({ min: 0n, max: (1n << 62n) - 1n }).map(String),
      key: fc.option(bytesArb),
      value: fc.option(bytesArb),
      timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
      headers: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), fc.nat(100), (ms, partition) => {
        const messages: InputMessage[] = ms.map((m) => ({ topic: 'in', partition, ...m }));
        expect(unpackInput(structuredClone(packInput('in', partition, messages)))).toEqual(messages);
      }),
    );
  });

  /** A message as its fields read (a ChunkMessage's value is a getter), to compare by value. */
  const plain = (m: OutputMessage) => (m instanceof ChunkMessage ? { topic: m.topic, key: m.key, partition: m.partition, timestampMs: m.timestampMs, value: Buffer.from(m.value) } : m);
  /** What unpacks as a range of the transferred bytes: a byte value with a partition and time, a text or no key, no headers. */
  const record = (m: OutputMessage) => Buffer.isBuffer(m.value) && m.partition !== undefined && m.timestampMs !== undefined && !Buffer.isBuffer(m.key) && m.headers === undefined;

  test('output messages unpack to the messages packed: strings stay strings, absent stays absent; records as ranges of the bytes', () => {
    const message = fc.record(
      {
        topic: fc.constantFrom('a', 'b', 'c'),
        value: fc.oneof(fc.constant(null), bytesArb, textArb),
        key: fc.oneof(fc.constant(null), bytesArb, textArb),
        partition: fc.nat(50),
        timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
        headers: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
      },
      { requiredKeys: ['topic', 'value'] },
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), (messages: OutputMessage[]) => {
        const unpacked = unpackOutput(structuredClone(packOutput(messages)));
        expect(unpacked.map(plain)).toEqual(messages);
        expect(unpacked.map((m) => m instanceof ChunkMessage)).toEqual(messages.map(record));
      }),
    );
  });

  test('chunk messages (a value that is a range of a shared chunk) unpack to messages with those bytes', () => {
    const chunkMessage = fc
      .record({ topic: fc.constantFrom('a', 'b'), key: fc.oneof(fc.constant(null), fc.string({ maxLength: 8 })), partition: fc.nat(50), timestampMs: fc.integer({ min: 0, max: 2 ** 45 }), chunk: fc.uint8Array({ minLength: 1, maxLength: 64 }), a: fc.nat(), b: fc.nat() })
      .map(({ topic, key, partition, timestampMs, chunk, a, b }) => {
        const [start, end] = [a % (chunk.length + 1), b % (chunk.length + 1)].sort((x, y) => x - y);
        return new ChunkMessage(topic, key, partition, timestampMs, Buffer.from(chunk), start, end);
      });
    fc.assert(
      fc.property(fc.array(fc.oneof(chunkMessage, fc.record({ topic: fc.constant('c'), value: bytesArb })), { maxLength: 20 }), (messages: OutputMessage[]) => {
        expect(unpackOutput(structuredClone(packOutput(messages))).map(plain)).toEqual(messages.map(plain));
      }),
    );
  });

  test('records (and tombstones) unpack to the records packed', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.option(fc.uint8Array({ maxLength: 30 }))), { maxLength: 20 }), (records) => {
        expect(unpackRecords(structuredClone(packRecords(records)))).toEqual(records);
      }),
    );
  });
});

/** The frames of a capture as 4-frame batch messages, split over PARTITIONS partitions by flow key (as `ctflow produce` does). */
function batchesOf(pcap: Uint8Array): InputMessage[][] {
  const frames: TopicFrame[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const f of openCapture(pcap)) {
    const d = decodeFrame(f);
    frames[(d.kind === 'ip' ? flowKeyHash(d.packet.ip) : 0) % PARTITIONS].push({ tsUs: f.tsUs, linkType: f.linkType, interfaceId: f.interfaceId, data: f.data.slice(), origLength: f.origLength });
  }
  return frames.map((list, partition) => {
    const messages: InputMessage[] = [];
    for (let i = 0; i < list.length; i += 4) {
      const chunk = list.slice(i, i + 4);
      // Every other message one frame with headers, and now and then one that is no frame batch (a dead letter).
      const single = i % 8 === 4 ? encodeSingleFrame(chunk[0]) : undefined;
      const value = i % 40 === 20 ? Buffer.from('no frames here') : single ? single.value : encodeFrameBatch(chunk);
      messages.push({ topic: 'in', partition, offset: String(messages.length), key: null, value, timestampMs: Math.floor(chunk[0].tsUs / 1000), headers: single?.headers ?? {} });
    }
    return messages;
  });
}

const config = (changelog: boolean): PartitionRunConfig => ({ kind: 'captured-traffic', sysctl, activeTimeoutUs: 30e6, verdicts: true, changelog, encoder: new OutputEncoder(outputs, outputPartitions) });
const setup = (changelog: boolean): Omit<PartitionWorkerSetup, 'worker'> => ({ kind: 'captured-traffic', sysctl, activeTimeoutUs: 30e6, verdicts: true, changelog, outputs, outputPartitions, samples: false, events: true });
const START = { start: 0n, end: BigInt(Number.MAX_SAFE_INTEGER), nextOffset: '0', lastPacketUs: 0 };
/** A step as the pipeline reads it, without the timing. */
// A message by its fields, not its own properties: in this thread the output records are
// ChunkMessages (their value a place in a shared chunk), unpacked from a worker plain objects.
const comparable = (s: PartitionStep | undefined) =>
  s && { ...s, processingSeconds: 0, messages: s.messages.map((m) => ({ topic: m.topic, partition: m.partition, timestampMs: m.timestampMs, headers: m.headers, value: m.value?.toString(), key: m.key?.toString() })) };

describe('partition workers', () => {
  test('each partition gives in a worker the steps it gives in this thread, batch after batch, ticks and restores included', async () => {
    const pcaps = [new Uint8Array(readFileSync(SAMPLE)), ...fc.sample(captureArb, { seed: 11, numRuns: 3 })];
    for (const changelog of [false, true]) {
      const workers = new PartitionWorkers(2, setup(changelog));
      let steps = 0;
      try {
        for (const pcap of pcaps) {
          const batches = batchesOf(pcap);
          const local = batches.map((_, p) => new PartitionRun(p, config(changelog), START));
          batches.forEach((_, p) => void workers.open(p, START));
          for (let p = 0; p < PARTITIONS; p++) {
            // Several batches of a partition in flight at once, as the pipeline posts them.
            const remote = [];
            for (let i = 0; i < batches[p].length; i += 3) remote.push(workers.batch('in', p, batches[p].slice(i, i + 3)));
            for (let i = 0, k = 0; i < batches[p].length; i += 3, k++) {
              expect(comparable(await remote[k])).toEqual(comparable(local[p].batch(batches[p].slice(i, i + 3))));
              steps++;
            }
            expect(comparable(await workers.tick(p, 60_000))).toEqual(comparable(local[p].tick(60_000)));
            if (!changelog) continue;
            // A restore from the state: the worker's engine goes on as this thread's restored one does.
            const state = local[p].snapshot()!;
            expect(await workers.snapshot(p)).toEqual(state);
            const at = { ...START, nextOffset: local[p].nextOffset, lastPacketUs: local[p].lastPacketUs, records: state };
            const restored = new PartitionRun(p, config(true), at);
            void workers.open(p, at);
            expect(comparable(await workers.tick(p, 600_000))).toEqual(comparable(restored.tick(600_000)));
          }
        }
        expect(steps).toBeGreaterThan(100);
      } finally {
        await workers.stop();
      }
    }
  }, 60_000);

  test('a request for a partition the worker does not hold fails naming the worker and the partition', async () => {
    const workers = new PartitionWorkers(2, setup(false));
    try {
      await expect(workers.batch('in', 3, [])).rejects.toThrow(/^partition worker 1, partition 3: partition 3 is not open in this worker$/);
      // The worker lives on: the partition opened, it works.
      await workers.open(3, START);
      expect((await workers.batch('in', 3, []))?.inputMessages).toBe(0);
    } finally {
      await workers.stop();
    }
  });

  test('a worker that dies fails what it held and everything after, and nothing waits', async () => {
    // A zone policy that is no policy: the worker throws as it starts.
    const workers = new PartitionWorkers(1, { ...setup(false), zones: { policy: { map: null } as never, topic: 'in' } });
    try {
      const pending = workers.open(0, START);
      await expect(pending).rejects.toThrow(/^partition worker 0 (failed|exited)/);
      await expect(workers.batch('in', 0, [])).rejects.toThrow(/^partition worker 0 (failed|exited)/);
    } finally {
      await workers.stop();
    }
  });

  test('ready() resolves once every thread answers, and rejects naming a thread that could not start', async () => {
    const good = new PartitionWorkers(2, setup(false));
    try {
      await good.ready();
      await good.open(1, START); // answering, with nothing held up behind the readiness request
    } finally {
      await good.stop();
    }
    const bad = new PartitionWorkers(2, { ...setup(false), zones: { policy: { map: null } as never, topic: 'in' } });
    try {
      await expect(bad.ready()).rejects.toThrow(/^partition worker [01] (failed|exited)/);
    } finally {
      await bad.stop();
    }
  });

  test('requests after stop() fail instead of waiting', async () => {
    const workers = new PartitionWorkers(1, setup(false));
    await workers.open(0, START);
    await workers.stop();
    await expect(workers.tick(0, 1)).rejects.toThrow(/partition worker 0/);
  });
});

describe('reading the tables of partitions in workers', () => {
  const queries = ['proto=tcp&sort=-bytes&limit=7', 'state=ESTABLISHED', 'proto=udp&status=UNREPLIED&sort=timeout', 'src=10.0.0.0/8&offset=3&limit=4', 'sort=-last&limit=1000'];

  test('stats, /flows pages and the table snapshot asked of two workers are those of the same engines in this thread', async () => {
    const pcaps = [new Uint8Array(readFileSync(SAMPLE)), ...fc.sample(captureArb, { seed: 5, numRuns: 2 })];
    const workers = new PartitionWorkers(2, setup(false));
    try {
      for (const pcap of pcaps) {
        const batches = batchesOf(pcap);
        const local = batches.map((_, p) => new PartitionRun(p, config(false), START));
        batches.forEach((_, p) => void workers.open(p, START));
        // Half of each partition read: open flows in every table.
        for (let p = 0; p < PARTITIONS; p++) {
          const half = batches[p].slice(0, Math.ceil(batches[p].length / 2));
          local[p].batch(half);
          void workers.batch('in', p, half);
        }
        const here = new PipelineTelemetry({ topFlows: 5 });
        const there = new PipelineTelemetry({ topFlows: 5 });
        for (let p = 0; p < PARTITIONS; p++) {
          here.table(p, local[p].proc.engine);
          there.table(p, { sysctl, source: workers.tablesOf(p) });
        }
        const mine = await here.ask({ kind: 'stats' });
        expect(mine.reduce((n, t) => n + t.entries, 0)).toBeGreaterThan(0);
        expect(await there.ask({ kind: 'stats' })).toEqual(mine);
        expect(await there.refresh()).toEqual({ ...(await here.refresh()), takenAtMs: expect.any(Number) });
        let listed = 0;
        for (const text of queries) {
          const query = parseFlowQuery(new URLSearchParams(text));
          const page = flowPage(await here.ask({ kind: 'flows', query }), query);
          expect(flowPage(await there.ask({ kind: 'flows', query }), query)).toEqual(page);
          listed += page.flows.length;
        }
        expect(listed).toBeGreaterThan(0);
      }
    } finally {
      await workers.stop();
    }
  }, 60_000);

  test('a worker that is gone or too slow fails the read with a TableReadError naming it, never hangs', async () => {
    const workers = new PartitionWorkers(2, setup(false), 1);
    try {
      const batches = batchesOf(new Uint8Array(readFileSync(SAMPLE)));
      await workers.open(1, START);
      // Every batch of the partition queued ahead of the read: the worker answers long after 1 ms.
      for (let i = 0; i < batches[1].length; i++) void workers.batch('in', 1, batches[1].slice(i, i + 1)).catch(() => undefined);
      await expect(workers.tablesOf(1).ask([1], { kind: 'stats' })).rejects.toThrow(new TableReadError('partition worker 1 (partition 1) did not answer a table read within 1 ms'));
    } finally {
      await workers.stop();
    }
    await expect(workers.tablesOf(0).ask([0, 2], { kind: 'stats' })).rejects.toThrow(/^cannot read the tables of partition worker 0 \(partitions 0,2\): partition worker 0 stopped$/);
    await expect(workers.tablesOf(0).ask([0], { kind: 'stats' })).rejects.toBeInstanceOf(TableReadError);
  });
});

describe('--workers on the Kafka commands, before connecting', () => {
  test('a bad worker count is refused by name', async () => {
    for (const argv of [['replay', '--topic', 't'], ['run']]) {
      const r = await runCliAsync(...argv, '--brokers', '127.0.0.1:1', '--workers', '0');
      expect(r.code).toBe(1);
      expect(r.err.join('\n')).toMatch(/--workers: '0' is not 'auto' or an integer from 1 to 64/);
    }
  });
});
