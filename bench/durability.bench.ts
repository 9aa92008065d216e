/**
 * `npm run bench:eos`: what exactly-once costs, against a real broker (KAFKA_BROKERS, or one
 * started here and stopped at the end).
 *
 *  1. Guarantee. The Kafka bench's synthetic traffic (bench/kafkaTraffic.ts) is produced once into
 *     a 4-partition topic in CTFB frame batches; then a live `ctflow run` pipeline (StreamPipeline,
 *     in this process) consumes it under a fresh group, at-least-once and exactly-once in turn, and
 *     is timed from start until it has read the whole topic and stop() has written (and
 *     acknowledged, or committed) every output; exactly-once with a state directory, as `ctflow
 *     run` has by default, so stop() writes the checkpoints too. Packets per second, and the
 *     exactly-once / at-least-once ratio.
 *  2. Restore. N single-packet UDP flows on N address pairs (all within the 30 s unreplied timeout,
 *     so every one is still in the table at the end) go through an exactly-once run, which leaves
 *     N live entries in the changelog. Then the partitions are taken over as a new owner does
 *     (cli/stateStore.ts: fence, read each changelog partition to its end, rebuild the engines),
 *     timed; reported per million entries. Then the same takeover from a local checkpoint
 *     (cli/stateDirectory.ts), as a restart after a clean stop does: load the checkpoint, read the
 *     changelog after it, rebuild the engines; interleaved with the full restores, run by run. The
 *     checkpoint's writing (what a clean stop adds) is timed too.
 *
 * Medians over --runs (default 3) with min and max: a shared 2-core machine that runs the broker
 * too. Options: --runs N, --packets N (guarantee case, default 200000), --flows N (restore case,
 * default 300000), --cases guarantee,restore, --json.
 */
import { KafkaConnection } from '../kafka/client';
import { StreamPipeline } from '../cli/streamPipeline';
import { StateStore } from '../cli/stateStore';
import type { RestoredPartition } from '../cli/stateStore';
import { StateDirectory } from '../cli/stateDirectory';
import { PartitionProcessor } from '../processors/stream/partitionProcessor';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { benchCapture, sendInRounds, topicMessages, TopicCutter } from './kafkaTraffic';
import type { TopicMessage } from './kafkaTraffic';
import { ipv4Packet, udpDatagram } from '../ingest/capture/frameBuilders';
import { flowKeyHash } from '../ingest/kafka/partitionKey';
import { decodeFrame } from '../ingest/decode/index';
import { join } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';

interface BrokerHandle {
  brokers: string;
  pid: number;
  version: string;
}
interface BrokerModule {
  start(opts: { writeState: boolean; watchPid?: number | null; log?: (line: string) => void }): Promise<BrokerHandle>;
  stop(handle: BrokerHandle): Promise<unknown>;
}
const broker = require(join(__dirname, '..', '..', 'scripts', 'kafka', 'broker.js')) as BrokerModule;

const PARTITIONS = 4;
const progress = (line: string) => process.stderr.write(`${line}\n`);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs a live pipeline over the whole topic under a fresh group; resolves with the seconds until all of it is committed. */
async function consumeAll(brokers: string[], topic: string, group: string, guarantee: 'at-least-once' | 'exactly-once'): Promise<number> {
  const conn = new KafkaConnection({ brokers, clientId: 'ctflow-bench' });
  const probe = new KafkaConnection({ brokers, clientId: 'ctflow-bench-probe' });
  const admin = await probe.admin();
  const ends = await admin.offsets(topic);
  const stateDir = guarantee === 'exactly-once' ? mkdtempSync(join(tmpdir(), 'ctflow-bench-state-')) : undefined;
  const pipeline = new StreamPipeline(conn, {
    kind: 'captured-traffic',
    inputTopic: topic,
    outputs: { transitions: `${group}.transitions`, flows: `${group}.flows`, deadLetter: `${group}.dead-letter` },
    sysctl: makeSysctl(),
    activeTimeoutUs: 1800e6,
    mode: 'live',
    groupId: group,
    guarantee,
    // As `ctflow run` by default: the committed state kept for a checkpoint, written at stop().
    stateDir,
    idleMs: 3_600_000,
    log: (level, m) => level !== 'info' && progress(`  ${level}: ${m}`),
  });
  const t0 = process.hrtime.bigint();
  await pipeline.run();
  // Read to the end, then stop(): it waits until every output is written and acknowledged (and,
  // exactly-once, committed). at-least-once never commits past a flow still open, so the group's
  // offsets cannot say when it is done.
  for (;;) {
    const at = pipeline.positions();
    if (ends.every((e) => at.get(e.partition) === e.high)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await pipeline.stop();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  await admin.deleteTopics([`${group}.transitions`, `${group}.flows`, `${group}.dead-letter`]);
  await probe.close();
  return seconds;
}

/** `flows` UDP packets, each its own flow, 20 µs apart, cut into frame batches per partition as `ctflow produce` does. */
function manyFlows(flows: number): TopicMessage[][] {
  const cutter = new TopicCutter(PARTITIONS, false);
  const t0 = Date.UTC(2026, 0, 1) * 1000;
  for (let i = 0; i < flows; i++) {
    const ip = ipv4Packet({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: `172.16.${(i >> 8) & 255}.${i & 255}`, proto: 17, payload: udpDatagram({ sport: 1024 + (i % 60000), dport: 53, payload: new Uint8Array(12) }) });
    const frame = { frame: i, tsUs: t0 + i * 20, linkType: 101, interfaceId: 0, data: ip, origLength: ip.length };
    const d = decodeFrame(frame);
    cutter.add(frame, d.kind === 'ip' ? flowKeyHash(d.packet.ip) : 0);
  }
  return cutter.take();
}

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const packets = arg('packets', 200_000);
  const flows = arg('flows', 300_000);
  const casesArg = process.argv.indexOf('--cases');
  const cases = new Set(casesArg >= 0 ? process.argv[casesArg + 1].split(',') : ['guarantee', 'restore']);
  let handle: BrokerHandle | undefined;
  let brokersText = process.env.KAFKA_BROKERS;
  if (!brokersText) {
    progress('starting a local Kafka broker');
    handle = await broker.start({ writeState: false, watchPid: process.pid, log: progress });
    brokersText = handle.brokers;
  }
  const brokers = brokersText.split(',');
  const id = `${process.pid}-${Date.now()}`;
  const conn = new KafkaConnection({ brokers, clientId: 'ctflow-bench' });
  const report: Record<string, unknown> = { machine: { node: process.version, cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))), broker: handle ? `Kafka ${handle.version} started here` : brokersText } };
  try {
    const admin = await conn.admin();
    const producer = await conn.producer();
    if (cases.has('guarantee')) {
      const topic = `ctflow-bench-eos-${id}`;
      progress(`producing ${packets} packets of synthetic traffic into ${topic}`);
      await admin.ensureTopics([{ topic, partitions: PARTITIONS, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } }]);
      await sendInRounds(producer, topic, topicMessages(benchCapture(packets).pcap, PARTITIONS, false));
      const seconds: Record<string, number[]> = { 'at-least-once': [], 'exactly-once': [] };
      for (let r = 0; r < runs; r++) {
        for (const g of ['at-least-once', 'exactly-once'] as const) {
          const s = await consumeAll(brokers, topic, `ctflow-bench-${g}-${id}-${r}`, g);
          seconds[g].push(s);
          progress(`  ${g} run ${r + 1}: ${s.toFixed(2)} s, ${Math.round(packets / s)} packets/s`);
        }
      }
      const pps = (g: string) => ({ median: Math.round(packets / median(seconds[g])), min: Math.round(packets / Math.max(...seconds[g])), max: Math.round(packets / Math.min(...seconds[g])) });
      report.guarantee = { packets, partitions: PARTITIONS, atLeastOnce: pps('at-least-once'), exactlyOnce: pps('exactly-once'), ratio: Number((median(seconds['at-least-once']) / median(seconds['exactly-once'])).toFixed(2)) };
      await admin.deleteTopics([topic]);
    }
    if (cases.has('restore')) {
      const topic = `ctflow-bench-restore-${id}`;
      const group = `ctflow-bench-restore-${id}`;
      progress(`producing ${flows} one-packet UDP flows into ${topic}`);
      await admin.ensureTopics([{ topic, partitions: PARTITIONS, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } }]);
      const parts = manyFlows(flows);
      // A producer of its own: one whose metadata predates the topic was refused by the broker here.
      await sendInRounds(await conn.producer(), topic, parts);
      progress('  an exactly-once run leaves them all in the changelog');
      const filled = await consumeAll(brokers, topic, group, 'exactly-once');
      progress(`  (${filled.toFixed(1)} s)`);
      const all = [...Array(PARTITIONS).keys()];
      /** Takes the partitions over (fence, read, rebuild); the store is kept open for a checkpoint. */
      const takeOver = async (local?: StateDirectory) => {
        const t0 = process.hrtime.bigint();
        const store = new StateStore(conn, admin, group, topic, local);
        const restored: RestoredPartition[] = await store.restore(all);
        const readMs = Number(process.hrtime.bigint() - t0) / 1e6;
        let entries = 0;
        let messages = 0;
        const procs = new Map<number, PartitionProcessor>();
        for (const part of restored) {
          const proc = PartitionProcessor.restore({ sysctl: makeSysctl(), activeTimeoutUs: 1800e6, verdicts: false, trackState: true }, part.records);
          procs.set(part.partition, proc);
          entries += proc.engine.count;
          messages += part.changelogMessages;
        }
        return { store, procs, entries, messages, fromCheckpoint: restored.filter((r) => r.checkpoint).length, readMs, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
      };
      const stateDir = mkdtempSync(join(tmpdir(), 'ctflow-bench-state-'));
      const local = () => new StateDirectory(stateDir, group, topic);
      /** What a clean stop adds: confirm ownership and write every partition's checkpoint (its engine's state). */
      const checkpoint = async ({ store, procs }: { store: StateStore; procs: Map<number, PartitionProcessor> }) => {
        const t0 = process.hrtime.bigint();
        const written = await store.writeCheckpoints((p) => procs.get(p)?.stateSnapshot());
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        await store.close();
        if (written.some((w) => w.skipped)) throw new Error(`checkpoint not written: ${written.map((w) => w.skipped).join('; ')}`);
        return { ms, bytes: written.reduce((n, w) => n + (w.bytes ?? 0), 0) };
      };
      const first = await takeOver(local());
      let written = await checkpoint(first);
      const full: number[] = [];
      const fromCheckpoint: number[] = [];
      /** The part before the engines are rebuilt: fencing, and reading the changelog (and the checkpoint). */
      const fullRead: number[] = [];
      const checkpointRead: number[] = [];
      const writeMs: number[] = [written.ms];
      let entries = 0;
      let messages = 0;
      let tail = 0;
      for (let r = 0; r < runs; r++) {
        const f = await takeOver();
        await f.store.close();
        full.push(f.ms);
        fullRead.push(f.readMs);
        entries = f.entries;
        messages = f.messages;
        progress(`  full restore ${r + 1}: ${f.entries} entries from ${f.messages} changelog messages in ${f.ms.toFixed(0)} ms (${f.readMs.toFixed(0)} ms of it before the rebuild)`);
        const c = await takeOver(local());
        if (c.fromCheckpoint !== PARTITIONS || c.entries !== f.entries) throw new Error(`checkpoint restore: ${c.fromCheckpoint} partitions from a checkpoint, ${c.entries} entries (full: ${f.entries})`);
        fromCheckpoint.push(c.ms);
        checkpointRead.push(c.readMs);
        tail = c.messages;
        progress(`  checkpoint restore ${r + 1}: ${c.entries} entries, ${c.messages} changelog messages after the checkpoint, in ${c.ms.toFixed(0)} ms (${c.readMs.toFixed(0)} ms of it before the rebuild)`);
        written = await checkpoint(c);
        writeMs.push(written.ms);
        progress(`  checkpoint written: ${written.bytes} bytes in ${written.ms.toFixed(0)} ms`);
      }
      rmSync(stateDir, { recursive: true, force: true });
      const stats = (xs: number[]) => ({ median: Math.round(median(xs)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) });
      report.restore = {
        entries,
        changelogMessages: messages,
        ms: stats(full),
        readMs: stats(fullRead),
        secondsPerMillionEntries: Number(((median(full) / 1000) * (1e6 / Math.max(1, entries))).toFixed(1)),
        fromCheckpoint: { changelogMessages: tail, ms: stats(fromCheckpoint), readMs: stats(checkpointRead), secondsPerMillionEntries: Number(((median(fromCheckpoint) / 1000) * (1e6 / Math.max(1, entries))).toFixed(1)), checkpointBytes: written.bytes, writeMs: stats(writeMs) },
      };
      await admin.deleteTopics([topic, `${group}-state-changelog`]);
    }
  } finally {
    await conn.close();
    if (handle) await broker.stop(handle);
  }
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
}

void main().catch((err: Error) => {
  progress(`bench:eos: ${err.stack ?? err.message}`);
  process.exit(1);
});
