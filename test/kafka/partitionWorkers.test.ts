/**
 * `--workers N` for the Kafka pipeline against a real broker: the partitions' engines run in N
 * threads, and every output topic holds the same messages (per partition, same order, bytes,
 * keys, timestamps, headers) and `--events-out -` prints the same lines as with one thread;
 * live at-least-once and exactly-once runs with workers write what one thread writes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { brokers, cliAsync, connect, readTopic, runId } from './helpers';
import type { InputMessage } from '../../kafka/client';
import { StreamPipeline } from '../../cli/streamPipeline';
import type { StreamOptions } from '../../cli/streamPipeline';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { captureArb } from '../cli/workers/randomCaptures';
import { expectSameOutputs, runConfig, runToEnd, startRun, terminate, untilCommitted, untilProgress } from './runProcess';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const describeKafka = brokers ? describe : describe.skip;

/** Everything a reader can tell of a message but its offset: partition, key, value, time, headers. */
const seen = (m: InputMessage) => [m.partition, m.key?.toString('hex') ?? null, m.value?.toString('hex') ?? null, m.timestampMs, JSON.stringify(m.headers)];

async function outputsOf(prefix: string): Promise<Record<string, unknown[][]>> {
  const out: Record<string, unknown[][]> = {};
  for (const kind of ['transitions', 'flows', 'verdicts', 'dead-letter']) out[kind] = (await readTopic(`${prefix}${kind}`)).map(seen);
  return out;
}

/** Short timeouts, so flows end inside the captures and expiries interleave with packets. */
const SHORT = ['udp_timeout=10', 'tcp_timeout_syn_sent=20', 'tcp_timeout_established=60', 'icmp_timeout=5'].map((k) => `nf_conntrack_${k}`);

describeKafka('Kafka pipeline with partition workers (real broker)', () => {
  const topic = `ctflow-test-kworkers-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-kworkers-'));

  beforeAll(async () => {
    // A 4-partition topic holding the sample capture in 16-frame batches, two random captures one frame per message, and a malformed message.
    const produce = async (path: string, ...extra: string[]) => {
      const r = await cliAsync('produce', path, '--topic', topic, '--partitions', '4', '--brokers', brokers, '--quiet', ...extra);
      expect(r.err).toEqual([]);
      expect(r.code).toBe(0);
    };
    await produce(sample, '--batch-frames', '16');
    fc.sample(captureArb, { seed: 6, numRuns: 2 }).forEach((pcap, k) => writeFileSync(join(dir, `random${k}.pcap`), pcap));
    await produce(join(dir, 'random0.pcap'), '--single-frames');
    await produce(join(dir, 'random1.pcap'), '--single-frames', '--zone', '3');
    const conn = connect();
    const producer = await conn.producer();
    await producer.send([{ topic, partition: 2, value: Buffer.from('not a frame batch'), key: 'k' }]);
    await conn.close();
  }, 120_000);

  test('replay --workers 1, 2 and 3 write the same messages and print the same transitions', async () => {
    const replay = (workers: string) => cliAsync('replay', '--topic', topic, '--brokers', brokers, '--workers', workers, '--verdicts', '--events-out', '-', '--out-prefix', `${topic}.w${workers}.`, ...SHORT.flatMap((k) => ['--sysctl', k]));
    const one = await replay('1');
    expect(one.code).toBe(0);
    const reference = await outputsOf(`${topic}.w1.`);
    expect(reference.transitions.length).toBeGreaterThan(100);
    expect(reference.verdicts.length).toBeGreaterThan(1000);
    expect(reference['dead-letter'].length).toBe(1);
    expect(new Set(reference.verdicts.map((m) => m[0])).size).toBe(4); // every partition had packets
    expect(one.out.length).toBeGreaterThan(100);
    const summary = (err: string[]) => err.map((l) => l.replace(/ in [\d.]+s /, ' ').replace(/\.w\d\./, '.'));
    for (const workers of ['2', '3']) {
      const r = await replay(workers);
      expect(r.code).toBe(0);
      expect(r.out).toEqual(one.out);
      expect(summary(r.err)).toEqual(summary(one.err));
      expect(await outputsOf(`${topic}.w${workers}.`)).toEqual(reference);
    }
  }, 300_000);

  test('a live at-least-once run with 2 workers writes what one thread writes, and idle partitions follow wall time in their workers', async () => {
    const live = async (workers: number, idleMs: number) => {
      const prefix = `${topic}.live${workers}-${idleMs}.`;
      const outputs = { transitions: `${prefix}transitions`, flows: `${prefix}flows`, deadLetter: `${prefix}dead-letter`, verdicts: `${prefix}verdicts` };
      const o: StreamOptions = { kind: 'captured-traffic', inputTopic: topic, outputs, sysctl: makeSysctl(SHORT), activeTimeoutUs: 0, mode: 'live', groupId: `${prefix}group`, workers, idleMs, commitIntervalMs: 0, fetchMaxBytes: 4096, maxInFlightBatches: 3 };
      const p = new StreamPipeline(connect(), o);
      await p.run();
      const c = connect();
      const ends = await (await c.admin()).offsets(topic);
      await c.close();
      const caughtUp = () => ends.every((e) => p.positions().get(e.partition) === e.high);
      for (const deadline = Date.now() + 60_000; !caughtUp() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(caughtUp()).toBe(true);
      const atEnd = p.counters.events;
      // With a short idle time, ticks move the idle partitions' clocks on, and their flows expire.
      if (idleMs < 1000) for (const deadline = Date.now() + 30_000; p.counters.events === atEnd && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
      await p.stop();
      return { prefix, atEnd, events: p.counters.events };
    };
    const one = await live(1, 3_600_000);
    const two = await live(2, 3_600_000);
    expect(two.events).toBe(one.events);
    expect(await outputsOf(two.prefix)).toEqual(await outputsOf(one.prefix));
    const ticked = await live(2, 100);
    expect(ticked.atEnd).toBe(one.events);
    expect(ticked.events).toBeGreaterThan(ticked.atEnd);
    const destroys = (await readTopic(`${ticked.prefix}transitions`)).filter((m) => JSON.parse(m.value!.toString()).type === 'DESTROY');
    expect(destroys.length).toBeGreaterThan((await readTopic(`${one.prefix}transitions`)).filter((m) => JSON.parse(m.value!.toString()).type === 'DESTROY').length);
  }, 300_000);

  test('an exactly-once run with 2 workers, stopped mid-stream and restarted, writes what one thread writes', async () => {
    const eosInput = `${topic}-eos`;
    const r = await cliAsync('produce', sample, '--topic', eosInput, '--partitions', '3', '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(r.code).toBe(0);
    const ref = runConfig(dir, eosInput, `ctflow-kworkers-eos-ref-${runId}`);
    await runToEnd(ref, brokers, eosInput);
    const two = runConfig(dir, eosInput, `ctflow-kworkers-eos-two-${runId}`);
    writeFileSync(two.path, readFileSync(two.path, 'utf8').replace('pipeline:\n', 'pipeline:\n  workers: 2\n'));
    // Stopped (SIGTERM) mid-stream: its workers' states are checkpointed; the next run restores them into its workers.
    const first = startRun(two.path, brokers);
    await untilProgress(brokers, two.group, eosInput);
    expect(await terminate(first)).toBe(0);
    expect(first.err()).toMatch(/checkpoint of \d+ state entries/);
    const second = startRun(two.path, brokers);
    await untilCommitted(brokers, two.group, eosInput, 240_000);
    expect(await terminate(second)).toBe(0);
    expect(second.err()).toMatch(/restored [1-9]\d* state entries from the checkpoint/);
    await expectSameOutputs(brokers, ref, two, ['transitions', 'flows', 'deadLetter']);
  }, 600_000);
});

if (!brokers) {
  test.skip('Kafka pipeline with partition workers: skipped because KAFKA_BROKERS is not set', () => undefined);
}
