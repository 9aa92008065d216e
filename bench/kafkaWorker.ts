/**
 * The child processes of `npm run bench:kafka`, one role each (node dist/bench/kafkaWorker.js ROLE,
 * config on IPC). Every measured thing runs in a fresh process of its own, for three reasons:
 * each replay run starts cold, as a `ctflow replay` invocation does, so runs are alike and do not
 * inherit the previous run's heap; `--cpu-prof` is a per-process flag, so the profiled run is a
 * child like the others; and in the latency case the producer, the pipeline and the measuring
 * consumer must not share an event loop: a synchronous engine batch in the pipeline would
 * otherwise delay the producer's clock or the consumer's arrival stamp and distort the figure.
 *
 * Roles:
 *  - replay:    one replay-mode StreamPipeline over a whole topic, timed (the throughput case);
 *  - inprocess: runCapture() on the same capture file, no Kafka (the engine's own rate);
 *  - codec:     the StreamPipeline's synchronous work without Kafka: the capture cut into the
 *               same messages `ctflow produce` writes, decoded, run through one PartitionProcessor
 *               per partition and encoded into output messages (what Kafka adds is the rest);
 *  - live:      a live-mode StreamPipeline (verdicts topic on when its outputs name one), until told to stop;
 *  - producer:  frame batches at a fixed packet rate, stamped with the wall time they are due.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { StreamPipeline } from '../cli/streamPipeline';
import type { StreamCounters } from '../cli/streamPipeline';
import { runCapture } from '../cli/runCapture';
import { KafkaConnection } from '../kafka/client';
import type { InputMessage, OutputMessage } from '../kafka/client';
import { decodeInputMessage } from '../ingest/kafka/inputMessages';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { PartitionProcessor } from '../processors/stream/partitionProcessor';
import { OutputEncoder } from '../sinks/kafka/outputTopics';
import type { OutputTopicNames } from '../sinks/kafka/outputTopics';
import { FlowMix, FramePool, LINKTYPE_ETHERNET, sendInRounds, TopicCutter, topicMessages } from './kafkaTraffic';

/** Same default as `ctflow replay --active-timeout` (30 min): accounting records for long flows only. */
const ACTIVE_TIMEOUT_US = 1800e6;

export interface ReplayConfig {
  role: 'replay';
  brokers: string;
  topic: string;
  outPrefix: string;
  /** Threads for the partitions' engines (`ctflow replay --topic T --workers N`); default 1. */
  workers?: number;
}

export interface CaptureConfig {
  role: 'inprocess' | 'codec';
  pcapPath: string;
  partitions: number;
  singleFrames: boolean;
}

export interface LiveConfig {
  role: 'live';
  brokers: string;
  topic: string;
  outputs: OutputTopicNames;
  groupId: string;
  /** pipeline.workers: threads for the partitions' engines; default 1. */
  workers?: number;
  /** pipeline.fetchMinBytes (Kafka's fetch.min.bytes); default 1. */
  fetchMinBytes?: number;
}

export interface ProducerConfig {
  role: 'producer';
  brokers: string;
  topic: string;
  partitions: number;
  /** Packets per second, and for how long. */
  rate: number;
  seconds: number;
  /** How often accumulated frames are sent (ms): what an agent's linger would be. */
  flushMs: number;
}

export type WorkerConfig = ReplayConfig | CaptureConfig | LiveConfig | ProducerConfig;

export interface TimedResult {
  /** Wall seconds of the measured section, and the node CPU seconds it used. */
  seconds: number;
  cpuSeconds: number;
  packets: number;
}

export interface ReplayResult extends TimedResult {
  /** Seconds from the first batch handed to the engine to the end (connect and group join excluded). */
  fromFirstBatch: number;
  counters: StreamCounters;
}

export interface CodecResult extends TimedResult {
  messages: number;
  outputMessages: number;
  outputBytes: number;
}

export interface LiveResult {
  counters: StreamCounters;
  cpuSeconds: number;
  seconds: number;
  /** Event-loop blocking in the pipeline process (ms): how long one synchronous batch holds it. */
  loopDelayMs: { p50: number; p99: number; max: number };
  /** [wall ms, packets through the engine] every PROGRESS_MS: how far behind the input the pipeline itself is, over time. */
  progress: Array<[number, number]>;
}

const PROGRESS_MS = 250;

export interface ProducerResult {
  frames: number;
  messages: number;
  bytes: number;
  startMs: number;
  seconds: number;
  cpuSeconds: number;
  /** Age of each flush's oldest frame when its request went out (ms): the producer's own share of the latency. */
  lagMs: { p50: number; p99: number; max: number };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const cpu = (start: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
};
const log = (level: string, m: string): void => {
  process.stderr.write(`bench worker ${process.pid}: ${level}: ${m}\n`);
};

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function replay(c: ReplayConfig): Promise<ReplayResult> {
  const conn = new KafkaConnection({ brokers: c.brokers.split(','), clientId: 'ctflow-bench', log });
  // What `ctflow replay --topic T --out-prefix P` builds: default sysctls, no verdicts topic.
  const pipeline = new StreamPipeline(conn, {
    kind: 'captured-traffic',
    inputTopic: c.topic,
    outputs: { transitions: `${c.outPrefix}transitions`, flows: `${c.outPrefix}flows`, deadLetter: `${c.outPrefix}dead-letter` },
    sysctl: makeSysctl(),
    activeTimeoutUs: ACTIVE_TIMEOUT_US,
    mode: 'replay',
    groupId: '',
    workers: c.workers,
    log: (level, m) => level !== 'info' && log(level, m),
  });
  const cpu0 = process.cpuUsage();
  const t0 = now();
  // The pipeline says nothing when its first batch arrives; a 5 ms poll of its counters is close enough.
  let first = 0;
  const poll = setInterval(() => {
    if (!first && pipeline.counters.messages > 0) first = now();
  }, 5);
  await pipeline.run();
  clearInterval(poll);
  const t1 = now();
  return { seconds: t1 - t0, fromFirstBatch: t1 - (first || t0), cpuSeconds: cpu(cpu0), packets: pipeline.counters.packets, counters: { ...pipeline.counters } };
}

/**
 * StreamPipeline.process() without Kafka: decode, engine, output encoding, per partition, in
 * slices of up to 1 MiB per partition (what one kafkajs fetch hands over with the consumer's
 * maxBytesPerPartition), partitions taken in turn as the fetcher delivers them.
 */
function codec(c: CaptureConfig): CodecResult {
  const pcap = new Uint8Array(readFileSync(c.pcapPath));
  const parts = topicMessages(pcap, c.partitions, c.singleFrames).map((list, p) =>
    list.map((m, offset): InputMessage => ({ topic: 'bench', partition: p, offset: String(offset), key: m.key === null ? null : Buffer.from(m.key), value: m.value, timestampMs: m.timestampMs, headers: m.headers })),
  );
  const names = { transitions: 't', flows: 'f', deadLetter: 'd' };
  const enc = new OutputEncoder(names, { transitions: c.partitions, flows: c.partitions, verdicts: c.partitions, deadLetter: c.partitions });
  const procs = parts.map(() => new PartitionProcessor({ sysctl: makeSysctl(), activeTimeoutUs: ACTIVE_TIMEOUT_US, verdicts: false }));
  const at = parts.map(() => 0);
  let outputMessages = 0;
  let outputBytes = 0;
  let messages = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let busy = true; busy; ) {
    busy = false;
    for (let p = 0; p < parts.length; p++) {
      const list = parts[p];
      if (at[p] >= list.length) continue;
      busy = true;
      const proc = procs[p];
      const out: OutputMessage[] = [];
      for (let bytes = 0; at[p] < list.length && bytes < 1 << 20; ) {
        const m = list[at[p]++];
        bytes += m.value!.length;
        messages++;
        decodeInputMessage('captured-traffic', m, {
          packet: (pk) => proc.push(pk),
          dead: (reason, part) => enc.deadLetter(m, reason, out, part),
          skipped: () => undefined,
        });
      }
      if (at[p] >= list.length) proc.end();
      const r = proc.drain();
      enc.transitions(r.events, p, out);
      enc.flowRecords(r.records, p, out);
      outputMessages += out.length;
      for (const o of out) outputBytes += typeof o.value === 'string' ? o.value.length : (o.value?.length ?? 0);
    }
  }
  const t1 = now();
  const packets = procs.reduce((n, pr) => n + pr.packets, 0);
  return { seconds: t1 - t0, cpuSeconds: cpu(cpu0), packets, messages, outputMessages, outputBytes };
}

function inprocess(c: CaptureConfig): TimedResult {
  const pcap = new Uint8Array(readFileSync(c.pcapPath));
  const cpu0 = process.cpuUsage();
  const t0 = now();
  // Events are produced (nf_conntrack_events is on by default) and dropped, as engine.bench does.
  const r = runCapture(pcap, { sysctl: makeSysctl(), shards: 1, onEvent: () => undefined });
  return { seconds: now() - t0, cpuSeconds: cpu(cpu0), packets: r.packets };
}

async function live(c: LiveConfig): Promise<LiveResult> {
  const conn = new KafkaConnection({ brokers: c.brokers.split(','), clientId: 'ctflow-bench-live', log });
  // What `ctflow run` builds from a config with these outputs (verdicts when named); pipeline settings at their defaults.
  const pipeline = new StreamPipeline(conn, {
    kind: 'captured-traffic',
    inputTopic: c.topic,
    outputs: c.outputs,
    sysctl: makeSysctl(),
    activeTimeoutUs: ACTIVE_TIMEOUT_US,
    mode: 'live',
    groupId: c.groupId,
    workers: c.workers,
    fetchMinBytes: c.fetchMinBytes,
    log: (level, m) => level !== 'info' && log(level, m),
  });
  await pipeline.run();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const progress: Array<[number, number]> = [];
  const sampler = setInterval(() => progress.push([Date.now(), pipeline.counters.packets]), PROGRESS_MS);
  process.send!({ type: 'ready' });
  await new Promise<void>((resolve) => process.on('message', (m: { type: string }) => m.type === 'stop' && resolve()));
  clearInterval(sampler);
  const cpuSeconds = cpu(cpu0);
  const seconds = now() - t0;
  loop.disable();
  await pipeline.stop();
  const ms = (ns: number) => ns / 1e6;
  return { counters: { ...pipeline.counters }, cpuSeconds, seconds, loopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) }, progress };
}

async function producer(c: ProducerConfig): Promise<ProducerResult> {
  const conn = new KafkaConnection({ brokers: c.brokers.split(','), clientId: 'ctflow-bench-producer', log });
  try {
    const out = await conn.producer();
    const total = Math.round(c.rate * c.seconds);
    // More sessions open at once than in the replay capture: 50k packets/s is a large gateway.
    // The frames are made before the clock starts (FramePool says why).
    const pool = new FramePool(new FlowMix(20260202, 2048), total);
    const cutter = new TopicCutter(c.partitions, false);
    const lags: number[] = [];
    let sent = 0;
    let messages = 0;
    const cpu0 = process.cpuUsage();
    const startMs = Date.now();
    const startUs = startMs * 1000;
    const dueUs = (k: number) => startUs + Math.floor((k * 1e6) / c.rate);
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - startMs) * c.rate) / 1000));
      if (due > sent) {
        // Each frame carries the wall time it was due as its packet time, so the latency measured
        // downstream includes this producer's own batching and any lateness of its sends.
        for (let k = sent; k < due; k++) {
          const data = pool.data(k);
          cutter.add({ tsUs: dueUs(k), linkType: LINKTYPE_ETHERNET, interfaceId: 0, data, origLength: data.length }, pool.keys[k]);
        }
        const parts = cutter.take();
        messages += parts.reduce((n, l) => n + l.length, 0);
        lags.push(Date.now() - dueUs(sent) / 1000);
        await sendInRounds(out, c.topic, parts);
        sent = due;
      }
      await new Promise((r) => setTimeout(r, c.flushMs));
    }
    const seconds = (Date.now() - startMs) / 1000;
    lags.sort((a, b) => a - b);
    return { frames: sent, messages, bytes: pool.bytesUpTo(sent), startMs, seconds, cpuSeconds: cpu(cpu0), lagMs: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: lags[lags.length - 1] ?? NaN } };
  } finally {
    await conn.close();
  }
}

async function main(): Promise<void> {
  const c = await new Promise<WorkerConfig>((resolve) => process.once('message', (m: WorkerConfig) => resolve(m)));
  let result: unknown;
  if (c.role === 'replay') result = await replay(c);
  else if (c.role === 'live') result = await live(c);
  else if (c.role === 'producer') result = await producer(c);
  else result = c.role === 'inprocess' ? inprocess(c) : codec(c);
  // Exit explicitly once the result is out: a socket or timer kafkajs leaves behind must not keep
  // the child alive, and --cpu-prof writes its profile on a normal exit.
  process.send!({ type: 'result', result }, () => process.exit(0));
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`bench worker ${process.pid} failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
