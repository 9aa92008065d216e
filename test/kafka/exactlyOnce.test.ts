/**
 * Exactly-once `ctflow run` against the real broker: a run SIGKILLed at random points and
 * restarted each time writes exactly the transitions, flow records and dead letters of a run that
 * was never interrupted (same messages, same partitions, same order: nothing missing, nothing
 * twice), read as read_committed consumers see them. Each restart restores the partitions'
 * conntrack state from the changelog instead of reading the input again from the oldest open flow.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, connect, runId } from './helpers';
import { readTopicWindow } from '../../cli/topicWindow';

const RUN_TS = join(__dirname, '..', 'prometheus', 'runTs.js');
const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const describeKafka = brokers ? describe : describe.skip;

interface RunProcess {
  child: ChildProcess;
  err: () => string;
  exit: Promise<number | null>;
  /** Resolves once it consumes (its SIGTERM handler is installed then). */
  consuming: Promise<void>;
}

/** `ctflow run` from the sources in a child process (so SIGKILL hits a real process, not the test's). */
function startRun(config: string): RunProcess {
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
async function terminate(p: RunProcess): Promise<number | null> {
  await p.consuming;
  p.child.kill('SIGTERM');
  const code = await p.exit;
  if (code !== 0) throw new Error(`ctflow run ended with ${code ?? p.child.signalCode} after SIGTERM:\n${p.err()}`);
  return code;
}

/** Input messages the group has committed past, over all partitions. */
async function committed(group: string, topic: string): Promise<{ done: bigint; total: bigint }> {
  const conn = connect();
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

async function untilCommitted(group: string, topic: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await committed(group, topic);
    if (c.done === c.total) return;
    if (Date.now() > deadline) throw new Error(`group ${group} committed ${c.done} of ${c.total} messages in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every partition's messages as [partition, key, value] in offset order, as a read_committed reader sees them. */
async function outputs(topic: string): Promise<string[][]> {
  const conn = connect();
  try {
    const parts = await readTopicWindow(conn, topic);
    return parts.flatMap((p) => p.messages.map((m) => [String(p.partition), m.key?.toString('utf8') ?? '', m.value?.toString('utf8') ?? '']));
  } finally {
    await conn.close();
  }
}

describeKafka('exactly-once run (real broker)', () => {
  const input = `ctflow-eos-in-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-eos-'));

  /** A config for one run: its own group and output topics; no wall-time ticks, so the outputs depend on the input only. */
  function config(name: string): { path: string; group: string; outputs: Record<string, string> } {
    const group = `ctflow-eos-${name}-${runId}`;
    const outputs = { transitions: `${group}.transitions`, flows: `${group}.flows`, deadLetter: `${group}.dead-letter` };
    const path = join(dir, `${name}.yaml`);
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
        '',
      ].join('\n'),
    );
    return { path, group, outputs };
  }

  beforeAll(async () => {
    const r = await cliAsync('produce', sample, '--topic', input, '--partitions', '3', '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
  }, 60_000);

  test('SIGKILLed at random points and restarted, it writes exactly what an uninterrupted run writes', async () => {
    // The uninterrupted run.
    const ref = config('ref');
    const whole = startRun(ref.path);
    await untilCommitted(ref.group, input, 240_000);
    expect(await terminate(whole)).toBe(0);

    // The interrupted one: killed three times at random moments once it has started committing.
    const cut = config('cut');
    const kills: bigint[] = [];
    const logs: string[] = [];
    for (let k = 0; k < 3; k++) {
      const p = startRun(cut.path);
      const before = (await committed(cut.group, input)).done;
      const deadline = Date.now() + 120_000;
      while ((await committed(cut.group, input)).done === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      p.child.kill('SIGKILL');
      await p.exit;
      logs.push(p.err());
      kills.push((await committed(cut.group, input)).done);
      if (kills[k] === (await committed(cut.group, input)).total) break;
    }
    const last = startRun(cut.path);
    await untilCommitted(cut.group, input, 240_000);
    expect(await terminate(last)).toBe(0);
    logs.push(last.err());

    const total = (await committed(cut.group, input)).total;
    if (process.env.CTFLOW_TEST_DEBUG) console.log({ kills, total, logs });
    // Each kill came mid-stream (after some commits, before the end), and each restart restored state.
    for (const done of kills) {
      expect(done).toBeGreaterThan(0n);
      expect(done).toBeLessThan(total);
    }
    const restoredEntries = logs.slice(1).map((l) => [...l.matchAll(/restored (\d+) state entries/g)].reduce((n, m) => n + Number(m[1]), 0));
    expect(restoredEntries.every((n) => n > 0)).toBe(true);

    for (const kind of ['transitions', 'flows', 'deadLetter'] as const) {
      const want = await outputs(ref.outputs[kind]);
      const got = await outputs(cut.outputs[kind]);
      if (kind !== 'deadLetter') expect(want.length).toBeGreaterThan(0);
      expect(got.length).toBe(want.length);
      expect(got).toEqual(want);
    }
  }, 900_000);

  test('scaled from 1 to 3 processes and back to 1 mid-stream, it writes what one process writes', async () => {
    const ref = config('ref1');
    const one = startRun(ref.path);
    await untilCommitted(ref.group, input, 240_000);
    expect(await terminate(one)).toBe(0);

    const scaled = config('scaled');
    const a = startRun(scaled.path);
    const moved = async () => {
      const before = (await committed(scaled.group, input)).done;
      const deadline = Date.now() + 120_000;
      while ((await committed(scaled.group, input)).done === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      return (await committed(scaled.group, input)).done;
    };
    const atJoin = await moved();
    const b = startRun(scaled.path);
    const c = startRun(scaled.path);
    // Both newcomers own a partition (restored from the changelog), and the group makes progress with three members.
    const owns = (p: RunProcess) => /partition \d+: restored/.test(p.err());
    for (const deadline = Date.now() + 120_000; !(owns(b) && owns(c)) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    expect([owns(b), owns(c)]).toEqual([true, true]);
    const atThree = await moved();
    // The two leave (SIGTERM: drain, commit, leave the group); the first takes their partitions back.
    const restoresOfA = () => (a.err().match(/partition \d+: restored/g) ?? []).length;
    const before = restoresOfA();
    expect(await Promise.all([terminate(b), terminate(c)])).toEqual([0, 0]);
    for (const deadline = Date.now() + 120_000; restoresOfA() === before && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    await untilCommitted(scaled.group, input, 240_000);
    expect(await terminate(a)).toBe(0);
    const total = (await committed(scaled.group, input)).total;
    // Each step came mid-stream.
    expect(atJoin).toBeLessThan(total);
    expect(atThree).toBeLessThan(total);
    expect(restoresOfA()).toBeGreaterThan(before);

    for (const kind of ['transitions', 'flows'] as const) {
      const want = await outputs(ref.outputs[kind]);
      const got = await outputs(scaled.outputs[kind]);
      expect(want.length).toBeGreaterThan(0);
      expect(got).toEqual(want);
    }
  }, 900_000);
});

if (!brokers) {
  test.skip('exactly-once run: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}
