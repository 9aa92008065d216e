/**
 * `ctflow run` in child processes for the durability tests (exactlyOnce, checkpoint,
 * partitionWorkers, brokerRestartRun): started from the sources, SIGTERMed or SIGKILLed, and the
 * group's committed progress and the output topics read back as read_committed consumers see them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaConnection } from '../../kafka/client';
import type { InputMessage, OutputMessage } from '../../kafka/client';
import { readTopicWindow } from '../../cli/topicWindow';

const RUN_TS = join(__dirname, '..', 'prometheus', 'runTs.js');

export interface RunProcess {
  child: ChildProcess;
  err: () => string;
  exit: Promise<number | null>;
  /** Resolves once it consumes (its SIGTERM handler is installed then). */
  consuming: Promise<void>;
}

/** `ctflow run` from the sources in a child process (so SIGKILL hits a real process, not the test's). */
export function startRun(config: string, brokers: string): RunProcess {
  const child = spawn(process.execPath, [RUN_TS, 'run', '--config', config, '--brokers', brokers], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  let consumed!: () => void;
  const consuming = new Promise<void>((r) => (consumed = r));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.includes('ctflow: consuming')) consumed();
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, err: () => err, exit, consuming };
}

/** SIGTERM once it consumes: it drains, commits and exits 0. */
export async function terminate(p: RunProcess): Promise<number | null> {
  await p.consuming;
  p.child.kill('SIGTERM');
  const code = await p.exit;
  if (code !== 0) throw new Error(`ctflow run ended with ${code ?? p.child.signalCode} after SIGTERM:\n${p.err()}`);
  return code;
}

/** Input messages the group has committed past, over all partitions. */
export async function committed(brokers: string, group: string, topic: string): Promise<{ done: bigint; total: bigint }> {
  const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
  try {
    const admin = await conn.admin();
    const ends = await admin.offsets(topic);
    const offsets = await admin.groupOffsets(group, topic);
    let done = 0n;
    let total = 0n;
    for (const e of ends) {
      const c = BigInt(offsets.get(e.partition) ?? '-1');
      done += c < 0n ? 0n : c - BigInt(e.low);
      total += BigInt(e.high) - BigInt(e.low);
    }
    return { done, total };
  } finally {
    await conn.close();
  }
}

export async function untilCommitted(brokers: string, group: string, topic: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await committed(brokers, group, topic);
    if (c.done === c.total) return;
    if (Date.now() > deadline) throw new Error(`group ${group} committed ${c.done} of ${c.total} messages in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every partition's messages as [partition, key, value] in offset order, as a read_committed reader sees them. */
export async function outputs(brokers: string, topic: string): Promise<string[][]> {
  const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
  try {
    const parts = await readTopicWindow(conn, topic);
    return parts.flatMap((p) => p.messages.map((m) => [String(p.partition), m.key?.toString('utf8') ?? '', m.value?.toString('utf8') ?? '']));
  } finally {
    await conn.close();
  }
}

/** Waits until the group has committed past more input than it had (up to 2 min); resolves with how much it has now. */
export async function untilProgress(brokers: string, group: string, topic: string): Promise<bigint> {
  const before = (await committed(brokers, group, topic)).done;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const now = (await committed(brokers, group, topic)).done;
    if (now !== before) return now;
    await new Promise((r) => setTimeout(r, 100));
  }
  return before;
}

/** An undisturbed run over the whole input, stopped with SIGTERM once it has committed everything: the reference the others are compared with. */
export async function runToEnd(config: RunConfig, brokers: string, topic: string): Promise<void> {
  const p = startRun(config.path, brokers);
  await untilCommitted(brokers, config.group, topic, 240_000);
  if ((await terminate(p)) !== 0) throw new Error(`the reference run ${config.group} did not stop cleanly`);
}

/** Every output topic of `got` holds exactly the messages of `want`'s, partition by partition, in order. */
export async function expectSameOutputs(brokers: string, want: RunConfig, got: RunConfig, kinds: Array<keyof RunConfig['outputs']>): Promise<void> {
  for (const kind of kinds) {
    const w = await outputs(brokers, want.outputs[kind]);
    const g = await outputs(brokers, got.outputs[kind]);
    if (kind !== 'deadLetter') expect(w.length).toBeGreaterThan(0);
    expect(g.length).toBe(w.length);
    expect(g).toEqual(w);
  }
}

export interface RunConfig {
  path: string;
  group: string;
  outputs: { transitions: string; flows: string; deadLetter: string };
  stateDir: string;
}

/**
 * A config file for one exactly-once run: its own group and output topics; no wall-time ticks, so
 * the outputs depend on the input only. Its local state directory (checkpoints) is `dir`/state.
 */
export function runConfig(dir: string, input: string, group: string): RunConfig {
  const outputs = { transitions: `${group}.transitions`, flows: `${group}.flows`, deadLetter: `${group}.dead-letter` };
  const path = join(dir, `${group}.yaml`);
  writeFileSync(
    path,
    [
      'input:',
      `  topic: ${input}`,
      `  group: ${group}`,
      'outputs:',
      `  transitions: ${outputs.transitions}`,
      `  flows: ${outputs.flows}`,
      `  deadLetter: ${outputs.deadLetter}`,
      'engine:',
      '  activeTimeout: 60', // active-timeout records too: they depend on per-flow accounting carried by the changelog
      'pipeline:',
      '  guarantee: exactly-once',
      '  idleMs: 3600000',
      '  fetchMaxBytes: 4096', // small batches: many transactions, so a kill lands between and inside them, and the stream lasts
      '  maxInFlightBatches: 4',
      '  sessionTimeoutMs: 10000', // a SIGKILLed member holds its partitions this long: shorter than the default 30 s
      `  stateDir: ${JSON.stringify(join(dir, 'state'))}`,
      '',
    ].join('\n'),
  );
  return { path, group, outputs, stateDir: join(dir, 'state') };
}

/**
 * A copy of a topic that is written in portions, so a test decides where "mid-stream" is: a run
 * cannot get past what is not there yet, however fast the machine. Each partition's messages keep
 * their partition, key, value, timestamp and headers, so the outputs are those of the source
 * topic (the outputs name no input topic, except dead-letter headers).
 */
export class StagedTopic {
  private source: Array<{ partition: number; messages: InputMessage[] }> = [];
  private sent = new Map<number, number>();

  private constructor(private readonly brokers: string, readonly topic: string) {}

  /** `topic`, created with the partitions of `from`, whose messages it is given later by upTo(); nothing written yet. */
  static async copyOf(brokers: string, from: string, topic: string): Promise<StagedTopic> {
    const staged = new StagedTopic(brokers, topic);
    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
    try {
      staged.source = await readTopicWindow(conn, from);
      await (await conn.admin()).ensureTopics([{ topic, partitions: staged.source.length }]);
    } finally {
      await conn.close();
    }
    return staged;
  }

  /** Writes each partition's messages up to this fraction of its whole (acknowledged when it resolves). */
  async upTo(fraction: number): Promise<void> {
    const messages: OutputMessage[] = [];
    for (const { partition, messages: all } of this.source) {
      const end = Math.ceil(all.length * fraction);
      for (let i = this.sent.get(partition) ?? 0; i < end; i++) {
        const m = all[i];
        const headers = Object.fromEntries(Object.entries(m.headers).filter((h): h is [string, string] => h[1] !== undefined));
        messages.push({ topic: this.topic, partition, key: m.key, value: m.value, timestampMs: m.timestampMs, headers });
      }
      this.sent.set(partition, Math.max(end, this.sent.get(partition) ?? 0));
    }
    const conn = new KafkaConnection({ brokers: this.brokers.split(','), clientId: 'ctflow-test' });
    try {
      await (await conn.producer()).send(messages);
    } finally {
      await conn.close();
    }
  }

  /** Messages of the source topic, over all partitions. */
  get total(): bigint {
    return BigInt(this.source.reduce((n, p) => n + p.messages.length, 0));
  }
}

/** A run config (group `group`) over a StagedTopic copy of `input` named `${input}-${name}`. */
export async function stagedRun(brokers: string, dir: string, input: string, name: string, group: string): Promise<{ c: RunConfig; topic: StagedTopic }> {
  const topic = await StagedTopic.copyOf(brokers, input, `${input}-${name}`);
  return { c: runConfig(dir, topic.topic, group), topic };
}
