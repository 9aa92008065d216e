/**
 * Exactly-once `ctflow run` against the real broker: a run SIGKILLed at random points and
 * restarted each time writes exactly the transitions, flow records and dead letters of a run that
 * was never interrupted (same messages, same partitions, same order: nothing missing, nothing
 * twice), read as read_committed consumers see them. Each restart restores the partitions'
 * conntrack state from the changelog instead of reading the input again from the oldest open flow.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, runId } from './helpers';
import { committed, stagedRun, expectSameOutputs, runConfig, runToEnd, startRun, terminate, untilCommitted, untilProgress } from './runProcess';
import type { RunProcess } from './runProcess';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const describeKafka = brokers ? describe : describe.skip;

describeKafka('exactly-once run (real broker)', () => {
  const input = `ctflow-eos-in-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-eos-'));

  const ref = runConfig(dir, input, `ctflow-eos-ref-${runId}`);

  beforeAll(async () => {
    const r = await cliAsync('produce', sample, '--topic', input, '--partitions', '3', '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    // One undisturbed run is the reference for every test below.
    await runToEnd(ref, brokers, input);
  }, 300_000);

  /** A copy of the input written in portions: each kill and each scaling step comes before the end of what is written. */
  const staged = (name: string) => stagedRun(brokers, dir, input, name, `ctflow-eos-${name}-${runId}`);

  test('SIGKILLed at random points and restarted, it writes exactly what an uninterrupted run writes', async () => {
    // The interrupted one: killed three times at random moments once it has started committing,
    // each time with another quarter of the input written.
    const { c: cut, topic } = await staged('cut');
    const kills: bigint[] = [];
    const logs: string[] = [];
    for (let k = 0; k < 3; k++) {
      await topic.upTo((k + 1) / 4);
      const p = startRun(cut.path, brokers);
      await untilProgress(brokers, cut.group, topic.topic);
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      p.child.kill('SIGKILL');
      await p.exit;
      logs.push(p.err());
      kills.push((await committed(brokers, cut.group, topic.topic)).done);
    }
    await topic.upTo(1);
    const last = startRun(cut.path, brokers);
    await untilCommitted(brokers, cut.group, topic.topic, 240_000);
    expect(await terminate(last)).toBe(0);
    logs.push(last.err());

    if (process.env.CTFLOW_TEST_DEBUG) console.log({ kills, total: topic.total, logs });
    // Each kill came mid-stream (after some commits, before the end), and each restart restored state.
    for (const done of kills) {
      expect(done).toBeGreaterThan(0n);
      expect(done).toBeLessThan(topic.total);
    }
    const restoredEntries = logs.slice(1).map((l) => [...l.matchAll(/restored (\d+) state entries/g)].reduce((n, m) => n + Number(m[1]), 0));
    expect(restoredEntries.every((n) => n > 0)).toBe(true);

    await expectSameOutputs(brokers, ref, cut, ['transitions', 'flows', 'deadLetter']);
  }, 900_000);

  test('scaled from 1 to 3 processes and back to 1 mid-stream, it writes what one process writes', async () => {
    const { c: scaled, topic } = await staged('scaled');
    await topic.upTo(0.25);
    const a = startRun(scaled.path, brokers);
    const moved = () => untilProgress(brokers, scaled.group, topic.topic);
    const atJoin = await moved();
    const b = startRun(scaled.path, brokers);
    const c = startRun(scaled.path, brokers);
    // Both newcomers own a partition (restored from the changelog), and the group makes progress with three members.
    const owns = (p: RunProcess) => /partition \d+: restored/.test(p.err());
    for (const deadline = Date.now() + 120_000; !(owns(b) && owns(c)) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    expect([owns(b), owns(c)]).toEqual([true, true]);
    await topic.upTo(0.5);
    const atThree = await moved();
    // The two leave (SIGTERM: drain, commit, leave the group); the first takes their partitions back.
    const restoresOfA = () => (a.err().match(/partition \d+: restored/g) ?? []).length;
    const before = restoresOfA();
    expect(await Promise.all([terminate(b), terminate(c)])).toEqual([0, 0]);
    for (const deadline = Date.now() + 120_000; restoresOfA() === before && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    await topic.upTo(1);
    await untilCommitted(brokers, scaled.group, topic.topic, 240_000);
    expect(await terminate(a)).toBe(0);
    // Each step came mid-stream.
    expect(atJoin).toBeGreaterThan(0n);
    expect(atThree).toBeGreaterThan(atJoin);
    expect(atThree).toBeLessThan(topic.total);
    expect(restoresOfA()).toBeGreaterThan(before);

    await expectSameOutputs(brokers, ref, scaled, ['transitions', 'flows']);
  }, 900_000);
});

if (!brokers) {
  test.skip('exactly-once run: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}
