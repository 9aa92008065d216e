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
import type { FlowEvent } from '../../processors/flow';
import type { BatchSample, PacketSample, PipelineObserver } from '../../sinks/telemetry/observer';
import { StreamPipeline } from '../../cli/streamPipeline';
import type { StreamOptions } from '../../cli/streamPipeline';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { captureArb } from '../cli/workers/randomCaptures';
import { StagedTopic, committed, expectSameOutputs, runConfig, runToEnd, startRun, terminate, untilCommitted, untilProgress } from './runProcess';

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

/** What an observer is told, added up: packets (and bytes) by ctstate, transitions by type, batches' messages, dead letters. */
class Tally implements PipelineObserver {
  packets: Record<string, { packets: number; bytes: number }> = {};
  transitions: Record<string, number> = { NEW: 0, UPDATE: 0, DESTROY: 0 };
  messages = 0;
  deadLetters = 0;
  packet(p: PacketSample): void {
    const t = (this.packets[p.ctstate] ??= { packets: 0, bytes: 0 });
    t.packets++;
    t.bytes += p.bytes;
  }
  events(_partition: number, events: readonly FlowEvent[]): void {
    for (const e of events) this.transitions[e.type]++;
  }
  batch(b: BatchSample): void {
    this.messages += b.messages;
  }
  deadLetter(): void {
    this.deadLetters++;
  }
  table(): void {}
}

/** Every timeout 1 s. */
const QUICK = ['tcp_timeout_established', 'tcp_timeout_time_wait', 'tcp_timeout_fin_wait', 'tcp_timeout_close_wait', 'tcp_timeout_last_ack', 'tcp_timeout_close', 'tcp_timeout_syn_sent', 'tcp_timeout_syn_recv', 'tcp_timeout_unacknowledged', 'tcp_timeout_max_retrans', 'udp_timeout', 'udp_timeout_stream', 'icmp_timeout', 'icmpv6_timeout', 'generic_timeout'].map((k) => `nf_conntrack_${k}=1`);

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

  test('a live at-least-once run with 2 workers writes and tells its observer what one thread does, and idle partitions follow wall time in their workers', async () => {
    let runs = 0;
    const live = async (workers: number, idleMs: number, knobs: string[], until?: (t: Tally) => boolean, input = topic) => {
      const prefix = `${topic}.live${workers}-${idleMs}-${knobs.length}-${runs++}.`;
      const outputs = { transitions: `${prefix}transitions`, flows: `${prefix}flows`, deadLetter: `${prefix}dead-letter`, verdicts: `${prefix}verdicts` };
      const tally = new Tally();
      const o: StreamOptions = { kind: 'captured-traffic', inputTopic: input, outputs, sysctl: makeSysctl(knobs), activeTimeoutUs: 0, mode: 'live', groupId: `${prefix}group`, workers, idleMs, commitIntervalMs: 0, fetchMaxBytes: 4096, maxInFlightBatches: 3, observer: tally };
      const p = new StreamPipeline(connect(), o);
      await p.run();
      const c = connect();
      const ends = await (await c.admin()).offsets(input);
      await c.close();
      const caughtUp = () => ends.every((e) => p.positions().get(e.partition) === e.high);
      for (const deadline = Date.now() + 60_000; !caughtUp() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(caughtUp()).toBe(true);
      if (until) for (const deadline = Date.now() + 30_000; !until(tally) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
      await p.stop();
      return { prefix, tally, counters: { ...p.counters, commits: 0, pauses: 0, writes: 0 } };
    };
    const one = await live(1, 3_600_000, SHORT);
    const two = await live(2, 3_600_000, SHORT);
    expect(two.counters).toEqual(one.counters);
    expect(two.tally).toEqual(one.tally);

    expect(one.tally.packets.INVALID?.packets).toBeGreaterThan(0);
    expect(one.tally.deadLetters).toBe(1);
    expect(await outputsOf(two.prefix)).toEqual(await outputsOf(one.prefix));
    // Every timeout 1 s: without ticks the flows open at each partition's end stay open; with them, every flow ends.
    // (On a topic whose packet times only go forward: a tick moves a partition's clock on from its last packet.)
    const forward = `${topic}-forward`;
    const produced = await cliAsync('produce', sample, '--topic', forward, '--partitions', '2', '--brokers', brokers, '--quiet');
    expect(produced.code).toBe(0);
    const still = await live(2, 3_600_000, QUICK, undefined, forward);
    expect(still.tally.transitions.DESTROY).toBeLessThan(still.tally.transitions.NEW);
    const ticked = await live(2, 100, QUICK, (t) => t.transitions.DESTROY === t.transitions.NEW, forward);
    expect(ticked.tally.transitions.NEW).toBeGreaterThan(0);
    expect(ticked.tally.transitions.DESTROY).toBe(ticked.tally.transitions.NEW);
  }, 300_000);

  /** A replay of `input` with 2 partition workers into topics named from `prefix`. */
  const replayWithWorkers = (input: string, prefix: string): StreamOptions => ({
    kind: 'captured-traffic',
    inputTopic: input,
    outputs: { transitions: `${prefix}transitions`, flows: `${prefix}flows`, deadLetter: `${prefix}dead-letter` },
    sysctl: makeSysctl(),
    activeTimeoutUs: 0,
    mode: 'replay',
    groupId: '',
    workers: 2,
  });

  test('steps back from the workers are written together: fewer produce requests than batches', async () => {
    const input = `${topic}-single`;
    const produced = await cliAsync('produce', sample, '--topic', input, '--partitions', '4', '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(produced.code).toBe(0);
    const p = new StreamPipeline(connect(), { ...replayWithWorkers(input, `${topic}.coalesce.`), fetchMaxBytes: 4096 });
    await p.run();
    // A step used to count as ready only at the head of the queue: one request per batch.
    expect(p.counters.batches).toBeGreaterThan(100);
    expect(p.counters.writes).toBeLessThan(p.counters.batches * 0.8);
  }, 120_000);

  test('a replay whose workers die ends with an error naming the worker, and does not hang', async () => {
    const o: StreamOptions = {
      ...replayWithWorkers(topic, `${topic}.dead.`),
      // A zone policy that is no policy: each worker throws as it starts.
      zoneOf: () => 0,
      zoneSource: { policy: { map: null } as never, topic },
    };
    await expect(new StreamPipeline(connect(), o).run()).rejects.toThrow(/^partition worker [01] (failed|exited)/);
  }, 120_000);

  test('an exactly-once run with 2 workers, stopped mid-stream and restarted, writes what one thread writes', async () => {
    const eosInput = `${topic}-eos`;
    const r = await cliAsync('produce', sample, '--topic', eosInput, '--partitions', '3', '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(r.code).toBe(0);
    const ref = runConfig(dir, eosInput, `ctflow-kworkers-eos-ref-${runId}`);
    writeFileSync(ref.path, readFileSync(ref.path, 'utf8').replace('pipeline:\n', 'pipeline:\n  workers: 1\n'));
    await runToEnd(ref, brokers, eosInput);
    // Its input written in two halves, so the stop comes mid-stream however fast the run is.
    const staged = await StagedTopic.copyOf(brokers, eosInput, `${eosInput}-two`);
    await staged.upTo(0.5);
    const two = runConfig(dir, staged.topic, `ctflow-kworkers-eos-two-${runId}`);
    writeFileSync(two.path, readFileSync(two.path, 'utf8').replace('pipeline:\n', 'pipeline:\n  workers: 2\n'));
    // Stopped (SIGTERM) mid-stream: its workers' states are checkpointed; the next run restores them into its workers.
    const first = startRun(two.path, brokers);
    await untilProgress(brokers, two.group, staged.topic);
    expect(await terminate(first)).toBe(0);
    expect(first.err()).toMatch(/checkpoint of \d+ state entries/);
    expect((await committed(brokers, two.group, staged.topic)).done).toBeLessThan(staged.total);
    await staged.upTo(1);
    const second = startRun(two.path, brokers);
    await untilCommitted(brokers, two.group, staged.topic, 240_000);
    expect(await terminate(second)).toBe(0);
    expect(second.err()).toMatch(/restored [1-9]\d* state entries from the checkpoint/);
    await expectSameOutputs(brokers, ref, two, ['transitions', 'flows', 'deadLetter']);
  }, 600_000);
});

if (!brokers) {
  test.skip('Kafka pipeline with partition workers: skipped because KAFKA_BROKERS is not set', () => undefined);
}
