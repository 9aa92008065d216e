/**
 * `npm run bench:kafka`: the Kafka pipeline end to end, against a real broker (KAFKA_BROKERS, or
 * one started here with scripts/kafka/broker.js and stopped at the end).
 *
 *  1. Throughput. A synthetic capture of many concurrent flows (bench/kafkaTraffic.ts) is produced
 *     once into a fresh topic as `ctflow produce` writes it, (a) in CTFB frame batches and (b) one
 *     frame per message; then a replay-mode StreamPipeline (`ctflow replay --topic`) is timed from
 *     start until every output is written and acknowledged: StreamPipeline.run() in replay mode
 *     resolves only then. For comparison, on the same capture: runCapture() in process (decode +
 *     engine, no Kafka), and the pipeline's own synchronous work without Kafka (decode, engine,
 *     JSON output encoding, per partition): the gap between that and the Kafka figure is what
 *     kafkajs and the broker cost.
 *  2. Latency. A live-mode StreamPipeline consumes while a producer writes frame batches at a
 *     fixed rate, each frame stamped with the wall time it was due; a consumer of one output topic
 *     takes, for each record, its arrival time minus its packet time (`ts`). Measured on
 *     (a) the transitions topic of a pipeline with the default outputs (`ctflow run` without
 *     outputs.verdicts), over the transitions a packet caused (those with a `packet` index), and
 *     (b) the verdicts topic of a pipeline with it on, one record per packet (--latency-on picks).
 *     Producer, pipeline and measuring consumer are separate processes (see kafkaWorker.ts). Beside
 *     the percentiles, a line by 5 s slices gives the records' p50/max and the pipeline's own
 *     input lag (sampled from its packet counter), to tell a start-up backlog, a stall and an
 *     overloaded pipeline apart.
 *  3. With --profile, one replay of each form runs under `node --cpu-prof`, and the profile is
 *     summarised by category and function (kafkaProfile.ts).
 *
 * Each measured run is a fresh child process. Figures are medians over --runs (default 3, or
 * BENCH_RUNS) with the slowest and fastest run: this is a shared 2-core machine running the broker
 * too, so compare medians and mind the spread. Progress goes to stderr, the table (or --json) to stdout.
 *
 * Options: --runs N (default 3), --packets N (default 300000), --partitions N (default 4),
 * --rate PPS[,PPS...] (latency rates, default 50000), --seconds S (latency window, default 25),
 * --warmup S (default 5), --fetch-min-bytes N (the live pipelines' fetchMinBytes, default 1),
 * --cases inprocess,codec,batched,single,latency (default all),
 * --latency-on transitions,verdicts (which output topic the latency is measured on; default both),
 * --workers N[,N...] (the Kafka throughput replays with each count of partition worker threads,
 * interleaved in every round, and a live pipeline for each in the latency case; default: one per
 * core, the pipeline's default; the targets are checked at that count),
 * --profile, --json (with npm, `npm run --silent bench:kafka -- --json`: npm's own banner goes to
 * stdout too). Profiles are kept in .cache/bench/ for Chrome DevTools or speedscope.
 */
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaConnection } from '../kafka/client';
import { benchCapture, sendInRounds, topicMessages } from './kafkaTraffic';
import { summarizeProfile } from './kafkaProfile';
import type { ProfileSummary } from './kafkaProfile';
import type { CodecResult, LiveResult, ProducerResult, ReplayResult, TimedResult, WorkerConfig } from './kafkaWorker';

interface BrokerHandle {
  brokers: string;
  pid: number;
  version: string;
  logFile: string;
}
interface BrokerModule {
  start(opts: { writeState: boolean; watchPid?: number | null; log?: (line: string) => void }): Promise<BrokerHandle>;
  stop(handle: BrokerHandle): Promise<{ stopped: boolean; graceful?: boolean }>;
  /** The broker `npm run kafka:start` recorded, and whether that pid is still it. */
  status(): Promise<{ running: boolean; brokers?: string; pid?: number }>;
  DEFAULT_VERSION: string;
}

const ROOT = join(__dirname, '..', '..');
// broker.js is plain CommonJS with no types (jest's global setup loads it as is).
const broker = require(join(ROOT, 'scripts', 'kafka', 'broker.js')) as BrokerModule;

// ---------------------------------------------------------------------------------------------
// Options

const CASES = ['inprocess', 'codec', 'batched', 'single', 'latency'] as const;
/** Seconds of packet time per slice of the latency profile. */
const SLICE_S = 5;
type Case = (typeof CASES)[number];
const LATENCY_ON = ['transitions', 'verdicts'] as const;
type LatencyOn = (typeof LATENCY_ON)[number];

interface Options {
  runs: number;
  packets: number;
  partitions: number;
  rates: number[];
  /** The output topics the latency is measured on, each with its own live pipeline. */
  latencyOn: LatencyOn[];
  seconds: number;
  warmup: number;
  /** The live pipelines' pipeline.fetchMinBytes (Kafka's fetch.min.bytes). */
  fetchMinBytes: number;
  cases: Set<Case>;
  /** Partition worker threads of the throughput replays, each count measured in every round. */
  workers: number[];
  profile: boolean;
  json: boolean;
}

function rates(argv: string[]): number[] {
  const i = argv.indexOf('--rate');
  if (i < 0) return [50_000];
  const list = (argv[i + 1] ?? '').split(',').map(Number);
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < 1)) throw new Error(`--rate: '${argv[i + 1]}' is not a list of packet rates`);
  return list;
}

/** The pipeline's own default (pipeline.workers: auto): one thread per core. */
const DEFAULT_WORKERS = availableParallelism();

function workerCounts(argv: string[]): number[] {
  const i = argv.indexOf('--workers');
  if (i < 0) return [DEFAULT_WORKERS];
  const list = (argv[i + 1] ?? '').split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error(`--workers: '${argv[i + 1]}' is not a list of thread counts from 1 to 64`);
  return list;
}

function options(argv: string[]): Options {
  const value = (name: string, fallback: number, min: number): number => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const n = Number(argv[i + 1]);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: '${argv[i + 1]}' is not a number >= ${min}`);
    return n;
  };
  const known = new Set(['--runs', '--packets', '--partitions', '--rate', '--seconds', '--warmup', '--cases', '--workers', '--latency-on', '--fetch-min-bytes', '--profile', '--json']);
  argv.forEach((a, i) => {
    if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (see the comment at the top of bench/kafka.bench.ts)`);
    if (!a.startsWith('--') && !(i > 0 && known.has(argv[i - 1]) && !['--profile', '--json'].includes(argv[i - 1]))) throw new Error(`unexpected argument '${a}'`);
  });
  const ci = argv.indexOf('--cases');
  const cases = new Set((ci >= 0 ? argv[ci + 1] ?? '' : CASES.join(',')).split(',').filter(Boolean) as Case[]);
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases: '${c}' is not one of ${CASES.join(', ')}`);
  const li = argv.indexOf('--latency-on');
  const latencyOn = (li >= 0 ? argv[li + 1] ?? '' : LATENCY_ON.join(',')).split(',').filter(Boolean) as LatencyOn[];
  for (const l of latencyOn) if (!LATENCY_ON.includes(l)) throw new Error(`--latency-on: '${l}' is not one of ${LATENCY_ON.join(', ')}`);
  return {
    runs: Math.floor(value('runs', Number(process.env.BENCH_RUNS ?? 3), 1)),
    packets: Math.floor(value('packets', 300_000, 1000)),
    partitions: Math.floor(value('partitions', 4, 1)),
    rates: rates(argv),
    latencyOn,
    seconds: value('seconds', 25, 1),
    fetchMinBytes: Math.floor(value('fetch-min-bytes', 1, 1)),
    warmup: value('warmup', 5, 0),
    cases,
    workers: workerCounts(argv),
    profile: argv.includes('--profile'),
    json: argv.includes('--json'),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

const progress = (line: string): void => {
  process.stderr.write(`bench:kafka: ${line}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const short = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k` : n.toFixed(0));
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)];
const quantile = (s: number[], q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];

/** Median and spread of a list of rates. */
interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}
const spread = (xs: number[]): Spread => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs });
/** Milliseconds, or "never" for a verdict that did not arrive. */
const ms = (x: number): string => (x === Infinity ? 'never (not arrived)' : `${fmt(x)} ms`);
const spreadText = (s: Spread): string => `${fmt(s.median)} (${short(s.min)}-${short(s.max)})`;

const children = new Set<ChildProcess>();

/**
 * The number after the first `key` in a JSON record, read in place: the measuring consumer shares
 * the two cores with the pipeline, so it does not JSON.parse 50k records a second to read a field.
 */
function numberAfter(record: Buffer, key: string): number {
  const at = record.indexOf(key);
  if (at < 0) throw new Error(`no ${key} in ${record.toString()}`);
  const from = at + key.length;
  let to = from;
  while (to < record.length && record[to] !== 0x2c /* , */ && record[to] !== 0x7d /* } */) to++;
  const n = Number(record.toString('latin1', from, to));
  if (!Number.isFinite(n)) throw new Error(`${key} is not a number in ${record.toString()}`);
  return n;
}

/** Longest wait for the verdicts of an overloaded pipeline after the producer stops. */
const TAIL_WAIT_S = 60;

interface Worker<R> {
  proc: ChildProcess;
  ready: Promise<void>;
  result: Promise<R>;
}

/** A kafkaWorker.js child with one role; its result comes back over IPC. */
function startWorker<R>(config: WorkerConfig, execArgv: string[] = []): Worker<R> {
  const proc = fork(join(__dirname, 'kafkaWorker.js'), [config.role], {
    execArgv: ['--max-old-space-size=8192', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  let onReady = (): void => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const result = new Promise<R>((resolve, reject) => {
    let got: R | undefined;
    proc.on('message', (m: { type: string; result?: R }) => {
      if (m.type === 'ready') onReady();
      if (m.type === 'result') got = m.result;
    });
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      if (got !== undefined) resolve(got);
      else reject(new Error(`bench worker (${config.role}) exited with ${signal ?? `code ${code}`} before reporting`));
    });
  });
  result.catch(() => onReady());
  proc.send(config);
  return { proc, ready, result };
}

let clockTicks = 100;
/** CPU seconds a process has used so far (Linux /proc), for the broker's share of a run. */
function processCpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The cases

interface ThroughputCase {
  label: string;
  pps: Spread;
  /** Kafka cases: the rate from the first batch on (connect, topic set-up and group join excluded). */
  steadyPps?: Spread;
  mbps: Spread;
  seconds: Spread;
  /** CPU seconds per wall second: node (the measured process) and broker. */
  nodeCpu: Spread;
  brokerCpu?: Spread;
  /**
   * Packets per CPU second of the node process, and of node + broker: less sensitive than
   * packets/s to other load on a shared machine (time spent waiting for a core does not count).
   */
  perNodeCpu: Spread;
  perTotalCpu?: Spread;
  notes: string[];
}

interface LatencyCase {
  rate: number;
  /** The output topic measured: transitions (default outputs) or verdicts (verdicts topic on). */
  on: LatencyOn;
  /** The live pipeline's partition worker threads. */
  workers: number;
  seconds: number;
  warmup: number;
  /** Records of the measured window: due (verdicts: one per frame; transitions: those that arrived plus the missing), and arrived. */
  expected: number;
  arrived: number;
  /** Records still missing when the bench gave up waiting (all frames, warm-up included): verdicts not arrived for produced frames, or transitions the pipeline wrote but the reader never saw. */
  missing: number;
  /** How long after the producer's end the bench waited for the tail. */
  waitedS: number;
  /** Measured records per second arriving while the producer ran (after the warm-up): does it keep up? */
  arrivalPps: number;
  /** Percentiles over the window's records; one that never arrived counts as Infinity. */
  ms: { p50: number; p90: number; p99: number; max: number };
  /**
   * p50 and max of the arrived records by slice of packet time (SLICE_S each, warm-up included):
   * whether the latency is a backlog left from the start that the pipeline never works off, or
   * stalls along the way.
   */
  slices: Array<{ fromS: number; p50: number; max: number; pipelineLagMs: number }>;
  producerLagMs: ProducerResult['lagMs'];
  /** 1-minute load average when the producer started and when it stopped (other work on the machine shows here). */
  loadavg: [number, number];
  pipelineLoopDelayMs: LiveResult['loopDelayMs'];
  /** The live pipeline's own counters: batches, backpressure pauses, commits. */
  pipeline: { batches: number; pauses: number; commits: number; outputs: number };
  cpuPerWall: { pipeline: number; producer: number; broker?: number; reader: number };
}

class Bench {
  private readonly base = `ctflow-bench-${process.pid}-${Date.now()}`;
  private readonly topics: string[] = [];
  private readonly tmp = mkdtempSync(join(tmpdir(), 'ctflow-bench-kafka-'));
  readonly pcapPath = join(this.tmp, 'capture.pcap');

  constructor(private readonly o: Options, private readonly brokers: string, private readonly brokerPid?: number) {}

  connection(clientId: string): KafkaConnection {
    return new KafkaConnection({ brokers: this.brokers.split(','), clientId, log: (level, m) => progress(`${level}: ${m}`) });
  }

  /**
   * Produces the capture into a fresh topic, cut into messages exactly as `ctflow produce` cuts it
   * (topicMessages). Not through produce() itself: it queues 64 messages per send, and kafkajs puts
   * all of one partition's messages of a send into one record batch, so 64 batches of ~330 KB
   * exceed the broker's 1 MiB max.message.bytes ("The request included a message larger than the
   * max message size") on any capture of more than a few thousand frames. sendInRounds keeps each
   * request to ~900 KiB per partition.
   */
  async produceTopic(singleFrames: boolean): Promise<{ topic: string; seconds: number; messages: number }> {
    const topic = `${this.base}-${singleFrames ? 'single' : 'batched'}`;
    this.topics.push(topic);
    const parts = topicMessages(new Uint8Array(readFileSync(this.pcapPath)), this.o.partitions, singleFrames);
    const t0 = Date.now();
    const conn = this.connection('ctflow-bench-produce');
    try {
      const admin = await conn.admin();
      // The topic settings `ctflow produce` uses: packet times as message times, kept forever.
      await admin.ensureTopics([{ topic, partitions: this.o.partitions, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } }]);
      await sendInRounds(await conn.producer(), topic, parts);
      const offsets = await admin.offsets(topic);
      return { topic, seconds: (Date.now() - t0) / 1000, messages: offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0) };
    } finally {
      await conn.close();
    }
  }

  /** One timed replay of `topic` in a child; its output topics are deleted afterwards. */
  async replayOnce(topic: string, run: string, execArgv: string[] = [], workers = 1): Promise<{ r: ReplayResult; brokerCpu?: number }> {
    const outPrefix = `${topic}.${run}.`;
    const b0 = processCpuSeconds(this.brokerPid);
    const r = await startWorker<ReplayResult>({ role: 'replay', brokers: this.brokers, topic, outPrefix, workers }, execArgv).result;
    const b1 = processCpuSeconds(this.brokerPid);
    await this.deleteTopics(['transitions', 'flows', 'dead-letter'].map((k) => `${outPrefix}${k}`));
    if (r.packets !== this.o.packets) throw new Error(`replay of ${topic} saw ${r.packets} packets, not ${this.o.packets}`);
    return { r, brokerCpu: b0 !== undefined && b1 !== undefined ? b1 - b0 : undefined };
  }

  async deleteTopics(topics: string[]): Promise<void> {
    const conn = this.connection('ctflow-bench-admin');
    try {
      await (await conn.admin()).deleteTopics(topics);
    } finally {
      await conn.close();
    }
  }

  /**
   * Produce-to-output latency at a fixed rate, with a live pipeline, producer and reader in three
   * processes, measured on the verdicts topic (every packet) or on the transitions topic (the
   * transitions a packet caused: NEW, UPDATE, and a DESTROY by RST or reopen; a DESTROY by timeout
   * carries the expiry time, not a packet's, and is left out). When the pipeline cannot keep up,
   * the backlog is waited for as long as records keep coming, at most TAIL_WAIT_S; what is still
   * missing then counts as infinitely late, so an overloaded pipeline shows as such instead of as
   * the latency of the records that made it.
   */
  async latency(rate: number, on: LatencyOn, workers: number, profDir?: string): Promise<LatencyCase> {
    const o = this.o;
    const topic = `${this.base}-live-${on}-${rate}-w${workers}`;
    const outputs = { transitions: `${topic}.transitions`, flows: `${topic}.flows`, deadLetter: `${topic}.dead-letter`, ...(on === 'verdicts' ? { verdicts: `${topic}.verdicts` } : {}) };
    this.topics.push(topic, ...Object.values(outputs));
    const conn = this.connection('ctflow-bench-reader');
    try {
      // As `ctflow produce` makes an input topic: message times are packet times, kept forever.
      await (await conn.admin()).ensureTopics([
        { topic, partitions: o.partitions, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } },
      ]);
      const profile = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
      const pipeline = startWorker<LiveResult>({ role: 'live', brokers: this.brokers, topic, outputs, groupId: `${topic}-group`, workers, fetchMinBytes: o.fetchMinBytes }, profile);
      await pipeline.ready; // consuming, and the output topics exist
      const packetMs: number[] = [];
      const latencyMs: number[] = [];
      const arrivals: number[] = [];
      let received = 0;
      let lastArrival = Date.now();
      const reader = await conn.consumer(`${topic}-reader`);
      // run() resolves once the reader has joined its group and owns its partitions (kafkajs's
      // run() joins and syncs first), as the live pipeline's did before it reported ready.
      const measured = on === 'verdicts' ? outputs.verdicts! : outputs.transitions;
      await reader.run({
        groupId: `${topic}-reader`,
        topics: [measured],
        fromBeginning: true,
        onBatch: async (b) => {
          // One arrival stamp per fetched batch, taken before any parsing: that is when the
          // records became visible to a downstream consumer.
          const arrival = Date.now();
          lastArrival = arrival;
          for (const m of b.messages) {
            received++;
            if (on === 'transitions' && m.value!.indexOf('"packet":') < 0) continue;
            const ts = numberAfter(m.value!, '"ts":') * 1000;
            packetMs.push(ts);
            latencyMs.push(arrival - ts);
            arrivals.push(arrival);
          }
        },
      });
      progress(`latency on ${on}: producing ${fmt(rate)} packets/s for ${o.warmup + o.seconds} s (the first ${o.warmup} s are warm-up)`);
      const b0 = processCpuSeconds(this.brokerPid);
      const reader0 = process.cpuUsage();
      const load0 = loadavg()[0];
      const producer = startWorker<ProducerResult>({ role: 'producer', brokers: this.brokers, topic, partitions: o.partitions, rate, seconds: o.warmup + o.seconds, flushMs: 5 });
      const pr = await producer.result;
      const b1 = processCpuSeconds(this.brokerPid);
      const readerCpu = process.cpuUsage(reader0);
      const load1 = loadavg()[0];
      const producedAt = Date.now();
      // Verdicts: until every frame's arrived. Transitions: their number is known only to the
      // pipeline, so until none has come for a few seconds (the pipeline's counters say below
      // whether any were still missing).
      const done = () => (on === 'verdicts' ? packetMs.length >= pr.frames : Date.now() - lastArrival > 3000);
      while (!done() && Date.now() - lastArrival < 15_000 && Date.now() - producedAt < TAIL_WAIT_S * 1000) await sleep(100);
      const waitedS = (Date.now() - producedAt) / 1000;
      pipeline.proc.send({ type: 'stop' });
      const lr = await pipeline.result;
      await reader.stop();
      const missing = on === 'verdicts' ? pr.frames - packetMs.length : Math.max(0, lr.counters.events - received);
      if (missing > 0) progress(`latency on ${on}: ${fmt(missing)} records still missing after waiting ${waitedS.toFixed(0)} s; counted as never arriving`);
      const from = pr.startMs + o.warmup * 1000;
      const to = pr.startMs + (o.warmup + o.seconds) * 1000;
      const window: number[] = [];
      let arrivedWhileProducing = 0;
      for (let i = 0; i < packetMs.length; i++) {
        if (packetMs[i] >= from && packetMs[i] < to) window.push(latencyMs[i]);
        if (arrivals[i] >= from && arrivals[i] < to) arrivedWhileProducing++;
      }
      // Verdicts: frame k is due at start + k/rate (the producer's schedule), so the window's
      // frames are known exactly. Transitions: every missing one is counted in the window.
      const expected =
        on === 'verdicts' ? Math.ceil(((o.warmup + o.seconds) * rate) - 1e-9) - Math.ceil(o.warmup * rate - 1e-9) : window.length + missing;
      const arrived = window.length;
      const bySlice = new Map<number, number[]>();
      for (let i = 0; i < packetMs.length; i++) {
        const k = Math.floor((packetMs[i] - pr.startMs) / 1000 / SLICE_S);
        if (k >= 0) (bySlice.get(k) ?? bySlice.set(k, []).get(k)!).push(latencyMs[i]);
      }
      // The pipeline's own lag: when it had taken n packets, packet n was due at start + n/rate.
      const pipelineLag = new Map<number, number>();
      for (const [wallMs, n] of lr.progress) {
        const k = Math.floor((wallMs - pr.startMs) / 1000 / SLICE_S);
        if (k < 0 || n >= pr.frames) continue;
        pipelineLag.set(k, Math.max(pipelineLag.get(k) ?? 0, wallMs - (pr.startMs + (n * 1000) / rate)));
      }
      const slices = [...bySlice].sort((a, b) => a[0] - b[0]).map(([k, xs]) => {
        const v = sorted(xs);
        return { fromS: k * SLICE_S, p50: quantile(v, 0.5), max: v[v.length - 1], pipelineLagMs: pipelineLag.get(k) ?? NaN };
      });
      const s = sorted(window);
      while (s.length < expected) s.push(Infinity);
      return {
        rate,
        on,
        workers,
        seconds: o.seconds,
        warmup: o.warmup,
        expected,
        arrived,
        missing,
        waitedS,
        arrivalPps: arrivedWhileProducing / o.seconds,
        ms: { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] },
        slices,
        producerLagMs: pr.lagMs,
        loadavg: [load0, load1],
        pipelineLoopDelayMs: lr.loopDelayMs,
        pipeline: { batches: lr.counters.batches, pauses: lr.counters.pauses, commits: lr.counters.commits, outputs: lr.counters.events + lr.counters.flowRecords + (on === 'verdicts' ? lr.counters.packets : 0) },
        cpuPerWall: { pipeline: lr.cpuSeconds / lr.seconds, producer: pr.cpuSeconds / pr.seconds, broker: b0 !== undefined && b1 !== undefined ? (b1 - b0) / pr.seconds : undefined, reader: (readerCpu.user + readerCpu.system) / 1e6 / pr.seconds },
      };
    } finally {
      await conn.close();
    }
  }

  async cleanup(): Promise<void> {
    if (this.topics.length) await this.deleteTopics(this.topics).catch(() => undefined);
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Main

interface Report {
  machine: { node: string; cpus: number; loadavg: number[]; loadavgAfterThroughput?: number[]; broker: string };
  capture?: { packets: number; meanFrameBytes: number; megabytes: number; packetSeconds: number; partitions: number };
  produce: Record<string, { seconds: number; messages: number }>;
  throughput: ThroughputCase[];
  latency: LatencyCase[];
  profiles: Record<string, ProfileSummary & { file: string }>;
  targets: Array<{ target: string; measured: string; met: boolean | null }>;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  let handle: BrokerHandle | undefined;
  let brokers = process.env.KAFKA_BROKERS;
  let bench: Bench | undefined;
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const c of children) c.kill('SIGKILL');
    await bench?.cleanup();
    if (handle) {
      const r = await broker.stop(handle);
      progress(`stopped the broker (pid ${handle.pid})${r.graceful === false ? ' with SIGKILL' : ''}`);
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    progress(`${sig}: stopping`);
    void shutdown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // `... | head` closing stdout must not crash the bench before it stops its broker.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });

  try {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      /* 100 is Linux's USER_HZ nearly everywhere */
    }
    let brokerText: string;
    let brokerPid = handle?.pid;
    if (brokers) {
      const own = await broker.status();
      // The project's own running broker at that address: its CPU can be read from /proc.
      brokerPid = own.running && own.brokers === brokers ? own.pid : undefined;
      brokerText = `KAFKA_BROKERS=${brokers} (not started here; ${brokerPid ? `the project's broker, pid ${brokerPid}: its CPU is measured` : 'broker CPU not measured'})`;
    } else {
      progress('starting a local Kafka broker (scripts/kafka/broker.js)');
      // watchPid: the broker's watchdog stops it if this process dies without reaching shutdown().
      handle = await broker.start({ writeState: false, watchPid: process.pid, log: progress });
      brokers = handle.brokers;
      brokerText = `Kafka ${handle.version} at ${brokers}, started by the bench (pid ${handle.pid}; JVM -Xmx512m, SerialGC, C1 only: tuned for start-up, not throughput)`;
    }
    bench = new Bench(o, brokers, brokerPid ?? handle?.pid);

    // The capture only feeds the throughput cases; the latency case makes its traffic as it goes.
    const needCapture = ['inprocess', 'codec', 'batched', 'single'].some((c) => o.cases.has(c as Case));
    if (needCapture) progress(`generating ${fmt(o.packets)} packets of synthetic traffic`);
    const cap = needCapture ? benchCapture(o.packets) : { pcap: new Uint8Array(0), packets: 0, bytes: 0, firstUs: 0, lastUs: 0 };
    writeFileSync(bench.pcapPath, cap.pcap);
    const report: Report = {
      machine: { node: process.version, cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))), broker: brokerText },
      capture: needCapture
        ? { packets: cap.packets, meanFrameBytes: cap.bytes / cap.packets, megabytes: cap.bytes / 1e6, packetSeconds: (cap.lastUs - cap.firstUs) / 1e6, partitions: o.partitions }
        : undefined,
      produce: {},
      throughput: [],
      latency: [],
      profiles: {},
      targets: [],
    };
    const mb = cap.bytes / 1e6;

    const topics: Partial<Record<'batched' | 'single', string>> = {};
    for (const form of ['batched', 'single'] as const) {
      if (!o.cases.has(form)) continue;
      progress(`producing the capture into a fresh ${o.partitions}-partition topic, ${form === 'batched' ? 'CTFB frame batches' : 'one frame per message'} (as ctflow produce${form === 'single' ? ' --single-frames' : ''} cuts it)`);
      const p = await bench.produceTopic(form === 'single');
      topics[form] = p.topic;
      report.produce[form] = { seconds: p.seconds, messages: p.messages };
      progress(`  ${fmt(cap.packets)} frames in ${fmt(p.messages)} messages in ${p.seconds.toFixed(1)} s`);
    }

    // Runs are interleaved (one of each case per round), so a burst of load from elsewhere on the
    // machine spreads over all cases instead of skewing one.
    type Acc = { pps: number[]; steady: number[]; secs: number[]; node: number[]; broker: number[]; perNode: number[]; perTotal: number[]; notes: Set<string> };
    const acc = new Map<string, Acc>();
    const add = (label: string, pps: number, secs: number, nodeCpu: number, brokerCpu?: number, steady?: number, note?: string) => {
      let a = acc.get(label);
      if (!a) acc.set(label, (a = { pps: [], steady: [], secs: [], node: [], broker: [], perNode: [], perTotal: [], notes: new Set() }));
      a.pps.push(pps);
      a.secs.push(secs);
      a.node.push(nodeCpu / secs);
      a.perNode.push((pps * secs) / nodeCpu);
      if (brokerCpu !== undefined) {
        a.broker.push(brokerCpu / secs);
        a.perTotal.push((pps * secs) / (nodeCpu + brokerCpu));
      }
      if (steady !== undefined) a.steady.push(steady);
      if (note) a.notes.add(note);
    };
    const L = {
      inprocess: 'in-process runCapture (decode + engine + events; no Kafka)',
      codecBatched: 'pipeline work without Kafka, batched (decode + engine + JSON outputs)',
      codecSingle: 'pipeline work without Kafka, one frame per message',
      batched: `Kafka end to end, batched frames (CTFB, <=1,024 frames/message)`,
      single: 'Kafka end to end, one frame per message',
    };
    /** A Kafka replay's row: its thread count is named when it is not 1 or several are compared. */
    const kafkaLabel = (form: 'batched' | 'single', workers: number): string => `${form === 'batched' ? L.batched : L.single}${o.workers.length > 1 || workers > 1 ? `, --workers ${workers}` : ''}`;
    for (let run = 1; run <= o.runs; run++) {
      progress(`round ${run} of ${o.runs}`);
      if (o.cases.has('inprocess')) {
        const r = await startWorker<TimedResult>({ role: 'inprocess', pcapPath: bench.pcapPath, partitions: o.partitions, singleFrames: false }).result;
        add(L.inprocess, r.packets / r.seconds, r.seconds, r.cpuSeconds);
        progress(`  in-process: ${fmt(r.packets / r.seconds)} packets/s`);
      }
      if (o.cases.has('codec')) {
        for (const single of [false, true]) {
          const r = await startWorker<CodecResult>({ role: 'codec', pcapPath: bench.pcapPath, partitions: o.partitions, singleFrames: single }).result;
          const note = `${fmt(r.outputMessages)} output messages, ${(r.outputBytes / 1e6).toFixed(0)} MB of JSON per run`;
          add(single ? L.codecSingle : L.codecBatched, r.packets / r.seconds, r.seconds, r.cpuSeconds, undefined, undefined, note);
          progress(`  without Kafka, ${single ? 'single' : 'batched'}: ${fmt(r.packets / r.seconds)} packets/s`);
        }
      }
      for (const form of ['batched', 'single'] as const) {
        const topic = topics[form];
        if (!topic) continue;
        for (const workers of o.workers) {
          const { r, brokerCpu } = await bench.replayOnce(topic, `r${run}w${workers}`, [], workers);
          const c = r.counters;
          const note = `${fmt(c.messages)} input messages, ${fmt(c.batches)} fetched batches, ${fmt(c.events)} transitions + ${fmt(c.flowRecords)} flow records written, ${fmt(c.pauses)} backpressure pauses (last run)`;
          const label = kafkaLabel(form, workers);
          add(label, r.packets / r.seconds, r.seconds, r.cpuSeconds, brokerCpu, r.packets / r.fromFirstBatch, note);
          acc.get(label)!.notes = new Set([note]);
          progress(`  Kafka ${form}, ${workers} worker${workers > 1 ? 's' : ''}: ${fmt(r.packets / r.seconds)} packets/s (${r.seconds.toFixed(2)} s; ${fmt(r.packets / r.fromFirstBatch)} from the first batch)`);
        }
      }
    }
    if (acc.size) report.machine.loadavgAfterThroughput = loadavg().map((x) => Number(x.toFixed(2)));
    for (const [label, a] of acc) {
      report.throughput.push({
        label,
        pps: spread(a.pps),
        steadyPps: a.steady.length ? spread(a.steady) : undefined,
        mbps: spread(a.secs.map((s) => mb / s)),
        seconds: spread(a.secs),
        nodeCpu: spread(a.node),
        brokerCpu: a.broker.length ? spread(a.broker) : undefined,
        perNodeCpu: spread(a.perNode),
        perTotalCpu: a.perTotal.length ? spread(a.perTotal) : undefined,
        notes: [...a.notes],
      });
    }

    if (o.profile) {
      for (const form of ['batched', 'single'] as const) {
        const topic = topics[form];
        if (!topic) continue;
        progress(`profiling one ${form} replay (node --cpu-prof)`);
        const profDir = mkdtempSync(join(tmpdir(), 'ctflow-bench-prof-'));
        await bench.replayOnce(topic, 'prof', ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
        report.profiles[`${form} replay`] = keepProfile(profDir, `kafka-replay-${form}.cpuprofile`);
      }
    }

    if (o.cases.has('latency')) {
      for (const rate of o.rates) {
        for (const on of o.latencyOn) {
          for (const workers of o.workers) {
            // With --profile the live pipeline of each rate runs under --cpu-prof (slower, so its figures are not comparable).
            const profDir = o.profile ? mkdtempSync(join(tmpdir(), 'ctflow-bench-prof-')) : undefined;
            report.latency.push(await bench.latency(rate, on, workers, profDir));
            if (profDir) report.profiles[`live at ${fmt(rate)} packets/s, ${on}, ${workers} worker(s)`] = keepProfile(profDir, `kafka-live-${on}-${rate}-w${workers}.cpuprofile`);
          }
        }
      }
    }

    const batched = report.throughput.find((t) => t.label === kafkaLabel('batched', DEFAULT_WORKERS));
    report.targets.push({
      target: '>= 500,000 packets/s end to end, batched frames',
      measured: batched ? `${fmt(batched.pps.median)} packets/s (median)` : 'not run',
      met: batched ? batched.pps.median >= 500_000 : null,
    });
    for (const on of o.latencyOn) {
      const at50k = report.latency.find((l) => l.rate === 50_000 && l.on === on && l.workers === DEFAULT_WORKERS);
      report.targets.push({
        target: `p99 < 250 ms at 50,000 packets/s, on ${on === 'verdicts' ? 'the verdicts topic' : 'the transitions topic (default outputs)'}`,
        measured: at50k ? `p99 ${ms(at50k.ms.p99)}${at50k.missing > 0 ? `, ${fmt(at50k.missing)} records never arrived` : ''}` : 'not run at 50,000 packets/s',
        met: at50k ? at50k.ms.p99 < 250 : null,
      });
    }

    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printReport(report, o);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await shutdown();
  }
}

/** Moves the one profile written in `profDir` to .cache/bench/NAME and summarises it. */
function keepProfile(profDir: string, name: string): ProfileSummary & { file: string } {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${profDir}`);
  const dir = join(ROOT, '.cache', 'bench');
  mkdirSync(dir, { recursive: true });
  const kept = join(dir, name);
  copyFileSync(join(profDir, file), kept);
  rmSync(profDir, { recursive: true, force: true });
  return { ...summarizeProfile(kept), file: kept };
}

function printReport(r: Report, o: Options): void {
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out(`ctflow Kafka bench: node ${r.machine.node}, ${r.machine.cpus} CPUs (load average at start ${r.machine.loadavg.join(' ')})`);
  out(`broker: ${r.machine.broker}`);
  if (r.machine.loadavgAfterThroughput) out(`load average after the throughput rounds: ${r.machine.loadavgAfterThroughput.join(' ')} (other work on this shared machine competes for its ${r.machine.cpus} cores)`);
  if (r.capture) out(
    `capture: ${fmt(r.capture.packets)} packets of synthetic many-flow traffic (bench/kafkaTraffic.ts), mean frame ${fmt(r.capture.meanFrameBytes)} bytes, ` +
      `${r.capture.megabytes.toFixed(0)} MB, ${fmt(r.capture.packetSeconds)} s of packet time; input topics of ${r.capture.partitions} partitions`,
  );
  for (const [form, p] of Object.entries(r.produce)) out(`pre-produced (untimed), ${form}: ${fmt(p.messages)} messages in ${p.seconds.toFixed(1)} s`);
  out();
  if (r.throughput.length) out(`throughput, median of ${o.runs} runs (slowest-fastest run)`);
  if (r.throughput.length) out(`  ${''.padEnd(74)} ${'packets/s'.padStart(24)} ${'MB/s'.padStart(7)} ${'CPU/wall'.padStart(9)} ${'broker'.padStart(7)}  packets per CPU-second (node; node+broker)`);
  for (const t of r.throughput) {
    const bcpu = t.brokerCpu ? t.brokerCpu.median.toFixed(2) : '-';
    const perCpu = `${fmt(t.perNodeCpu.median)}${t.perTotalCpu ? `; ${fmt(t.perTotalCpu.median)}` : ''}`;
    out(`  ${t.label.padEnd(74)} ${spreadText(t.pps).padStart(24)} ${t.mbps.median.toFixed(1).padStart(7)} ${t.nodeCpu.median.toFixed(2).padStart(9)} ${bcpu.padStart(7)}  ${perCpu}`);
    if (t.steadyPps) out(`      run() ${t.seconds.median.toFixed(2)} s incl. connect, topic set-up, group join and shutdown; from the first batch on: ${spreadText(t.steadyPps)} packets/s`);
    for (const n of t.notes) out(`      ${n}`);
  }
  for (const l of r.latency) {
    out();
    const what = l.on === 'verdicts' ? 'verdicts' : 'transitions caused by a packet';
    out(
      `latency, live pipeline ${l.on === 'verdicts' ? 'with the verdicts topic' : 'with the default outputs (transitions, flow records)'}, ${fmt(l.rate)} packets/s into ${o.partitions} partitions, ` +
        `${l.workers > 1 ? `--workers ${l.workers}, ` : ''}${o.fetchMinBytes > 1 ? `fetchMinBytes ${o.fetchMinBytes}, ` : ''}${l.seconds} s measured after ${l.warmup} s warm-up (produce -> ${l.on === 'verdicts' ? 'verdict' : 'transition'} visible to a consumer)`,
    );
    out(`  p50 ${ms(l.ms.p50)}   p90 ${ms(l.ms.p90)}   p99 ${ms(l.ms.p99)}   max ${ms(l.ms.max)}   over the ${fmt(l.expected)} ${what} of the window (${fmt(l.arrived)} arrived)`);
    out(`  by ${SLICE_S} s from the producer's start (warm-up included): p50/max ms of the records, and the pipeline's own input lag at most (packets through its engine against packets due): ${l.slices.map((x) => `${x.fromS}s ${fmt(x.p50)}/${fmt(x.max)} (${fmt(x.pipelineLagMs)})`).join(', ')}`);
    out(`  ${what} arriving while producing: ${fmt(l.arrivalPps)}/s for ${fmt(l.rate)} packets/s produced${l.missing ? `; ${fmt(l.missing)} still missing ${l.waitedS.toFixed(0)} s after the producer stopped` : ''}`);
    out(`  producer: oldest frame's age when its request went out p50/p99/max ${fmt(l.producerLagMs.p50)}/${fmt(l.producerLagMs.p99)}/${fmt(l.producerLagMs.max)} ms (included above); pipeline event-loop delay p50/p99/max ${l.pipelineLoopDelayMs.p50.toFixed(0)}/${l.pipelineLoopDelayMs.p99.toFixed(0)}/${l.pipelineLoopDelayMs.max.toFixed(0)} ms`);
    out(`  pipeline: ${fmt(l.pipeline.batches)} input batches, ${fmt(l.pipeline.pauses)} backpressure pauses, ${fmt(l.pipeline.commits)} commits, ~${fmt(l.pipeline.outputs)} output messages (${l.on === 'verdicts' ? 'verdicts + ' : ''}transitions + flow records)`);
    out(`  CPU/wall: pipeline ${l.cpuPerWall.pipeline.toFixed(2)}, producer ${l.cpuPerWall.producer.toFixed(2)}${l.cpuPerWall.broker !== undefined ? `, broker ${l.cpuPerWall.broker.toFixed(2)}` : ''}, measuring consumer ${l.cpuPerWall.reader.toFixed(2)}; load average ${l.loadavg[0].toFixed(1)} -> ${l.loadavg[1].toFixed(1)}`);
  }
  for (const [form, p] of Object.entries(r.profiles)) {
    out();
    const idle = p.categories.find((c) => c.name.startsWith('idle'))?.ms ?? 0;
    const busy = p.totalMs - idle;
    out(`profile of one ${form} (node --cpu-prof, ${(p.totalMs / 1000).toFixed(1)} s of which ${(busy / 1000).toFixed(1)} s busy; ${p.file})`);
    out('  self time by category (share of all; of busy time):');
    for (const c of p.categories) if (c.share >= 0.005) out(`  ${(100 * c.share).toFixed(1).padStart(5)}%  ${c.name.startsWith('idle') ? '     ' : `${((100 * c.ms) / busy).toFixed(1).padStart(4)}%`}  ${c.name}`);
    out('  pipeline stages, inclusive CPU time:');
    for (const s of p.stages) out(`  ${(100 * s.share).toFixed(1).padStart(5)}%  ${s.name}`);
    out('  top functions by self time:');
    for (const f of p.self) out(`  ${(100 * f.share).toFixed(1).padStart(5)}%  ${f.name}  [${f.category}]`);
  }
  out();
  out('targets:');
  for (const t of r.targets) out(`  ${t.met === null ? 'not run' : t.met ? 'MET    ' : 'NOT MET'}  ${t.target}: ${t.measured}`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:kafka failed: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
