/**
 * Local state checkpoints of exactly-once `ctflow run` against the real broker (cli/stateStore.ts,
 * cli/stateDirectory.ts): a run stopped with SIGTERM mid-stream leaves a checkpoint per partition,
 * and the restart restores each partition from it plus the changelog after it, reading far fewer
 * changelog messages than a full read; a checkpoint that cannot be trusted (corrupt, truncated,
 * another format version, older than the changelog's delete.retention.ms, past the changelog's
 * end) is ignored with its reason and the whole changelog is read; a run SIGKILLed after loading
 * a checkpoint finds none on its restart. Through all of it the outputs are exactly those of an
 * uninterrupted run.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, runId } from './helpers';
import { StagedTopic, committed, stagedRun, expectSameOutputs, outputs, runConfig, runToEnd, startRun, terminate, untilCommitted, untilProgress } from './runProcess';
import type { RunConfig, RunProcess } from './runProcess';
import { StateDirectory } from '../../cli/stateDirectory';
import { decodeCheckpoint, encodeCheckpoint } from '../../cli/checkpointFile';
import { changelogTopicOf } from '../../cli/stateStore';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const describeKafka = brokers ? describe : describe.skip;
const PARTITIONS = 3;

interface Restore {
  partition: number;
  entries: number;
  messages: number;
  fromCheckpoint: boolean;
  text: string;
}

/** The restore lines of a run's log, one per partition restore. */
function restores(log: string): Restore[] {
  return log.split('\n').flatMap((line) => {
    const m = /partition (\d+): restored (\d+) state entries from (.*) in \d+ ms/.exec(line);
    if (!m) return [];
    const ck = /the checkpoint at changelog offset \d+ \(\d+ entries, written [\d.]+ s ago\) and (\d+) changelog messages after it/.exec(m[3]);
    const full = /^(\d+) changelog messages \(full read/.exec(m[3]);
    if (!ck && !full) throw new Error(`unrecognised restore line: ${line}`);
    return [{ partition: Number(m[1]), entries: Number(m[2]), messages: Number((ck ?? full)![1]), fromCheckpoint: ck !== null, text: line }];
  });
}

async function until(what: string, test: () => boolean, ms = 120_000): Promise<void> {
  for (const deadline = Date.now() + ms; !test(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeKafka('local state checkpoints (real broker)', () => {
  const input = `ctflow-ckpt-in-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-ckpt-'));
  const ref = runConfig(dir, input, `ctflow-ckpt-ref-${runId}`);
  const files = (c: RunConfig, topic: string) => new StateDirectory(c.stateDir, c.group, topic);

  beforeAll(async () => {
    const r = await cliAsync('produce', sample, '--topic', input, '--partitions', String(PARTITIONS), '--batch-frames', '1', '--brokers', brokers, '--quiet');
    expect(r.code).toBe(0);
    await runToEnd(ref, brokers, input);
  }, 300_000);

  /**
   * The input of one test: a copy of the reference's input written in portions, so "stopped
   * mid-stream" is where the test puts it, not wherever a fast run happened to be when SIGTERM came.
   */
  const staged = (name: string) => stagedRun(brokers, dir, input, name, `ctflow-ckpt-${name}-${runId}`);

  /** Runs until the group has committed all the input there is so far, and stops it with SIGTERM; returns its log. */
  async function runThenStop(c: RunConfig, topic: StagedTopic): Promise<string> {
    const p = startRun(c.path, brokers);
    await untilCommitted(brokers, c.group, topic.topic, 240_000);
    expect(await terminate(p)).toBe(0);
    expect((await committed(brokers, c.group, topic.topic)).done).toBeLessThan(topic.total); // mid-stream: more input comes later
    return p.err();
  }

  test('stopped cleanly and restarted, partitions come back from the checkpoint and the changelog tail; a SIGKILL after loading it leaves nothing to reuse', async () => {
    const { c, topic } = await staged('clean');
    await topic.upTo(0.3);
    const first = await runThenStop(c, topic);
    if (process.env.CTFLOW_TEST_DEBUG) console.log(first);
    // Every partition's checkpoint written on the way out, and on disk.
    expect(first.match(/partition \d+: checkpoint of \d+ state entries \(\d+ bytes\) at changelog offset \d+ written/g)?.length).toBe(PARTITIONS);
    for (let p = 0; p < PARTITIONS; p++) expect(existsSync(files(c, topic.topic).checkpointPath(p))).toBe(true);
    const saved = [...Array(PARTITIONS).keys()].map((p) => decodeCheckpoint(readFileSync(files(c, topic.topic).checkpointPath(p))));

    // The restart: each partition from its checkpoint, reading only what came after it.
    const second = startRun(c.path, brokers);
    await until('the restores from checkpoints', () => restores(second.err()).length >= PARTITIONS);
    const r2 = restores(second.err());
    expect(r2.map((r) => r.fromCheckpoint)).toEqual(Array(PARTITIONS).fill(true));
    // A full read of each changelog partition, for comparison: every committed message in it.
    const changelog = await outputs(brokers, changelogTopicOf(c.group));
    for (const r of r2) {
      const fullRead = changelog.filter((m) => m[0] === String(r.partition)).length;
      expect(r.entries).toBe(saved[r.partition].records.size);
      expect(fullRead).toBeGreaterThan(10 * Math.max(1, r.messages));
    }
    // Loaded, the checkpoints are gone: a crash from here on must not find them.
    for (let p = 0; p < PARTITIONS; p++) expect(existsSync(files(c, topic.topic).checkpointPath(p))).toBe(false);
    // More input, and a SIGKILL once the run has committed some of it.
    await topic.upTo(0.6);
    await untilProgress(brokers, c.group, topic.topic);
    second.child.kill('SIGKILL');
    await second.exit;
    expect((await committed(brokers, c.group, topic.topic)).done).toBeLessThan(topic.total);

    // After the crash: the whole changelog, as there is no checkpoint; then on to the end.
    await topic.upTo(1);
    const third = startRun(c.path, brokers);
    await untilCommitted(brokers, c.group, topic.topic, 240_000);
    expect(await terminate(third)).toBe(0);
    const r3 = restores(third.err());
    expect(r3.length).toBeGreaterThanOrEqual(PARTITIONS);
    for (const r of r3.slice(0, PARTITIONS)) {
      expect(r.fromCheckpoint).toBe(false);
      expect(r.text).toContain('no checkpoint');
    }
    await expectSameOutputs(brokers, ref, c, ['transitions', 'flows', 'deadLetter']);
  }, 900_000);

  test('a corrupt, truncated, other-version, too old or out-of-range checkpoint is ignored with its reason, and the whole changelog is read', async () => {
    const { c, topic } = await staged('bad');
    const path = (p: number) => files(c, topic.topic).checkpointPath(p);
    const damage: Array<Array<[RegExp, (p: number) => void]>> = [
      [
        [/checksum mismatch/, (p) => {
          const b = readFileSync(path(p));
          b[Math.floor(b.length / 2)] ^= 0x40;
          writeFileSync(path(p), b);
        }],
        [/truncated: \d+ of \d+ bytes/, (p) => writeFileSync(path(p), readFileSync(path(p)).subarray(0, 100))],
        [/format version 7 \(this build reads version 1\)/, (p) => {
          const b = readFileSync(path(p));
          b.writeUInt16BE(7, 8);
          writeFileSync(path(p), b);
        }],
      ],
      [
        // Valid in form, but written two days ago: longer than the default delete.retention.ms (24 h).
        [/written \d+ s ago, longer than the changelog's delete.retention.ms \(86400000 ms\)/, (p) => {
          const ck = decodeCheckpoint(readFileSync(path(p)));
          writeFileSync(path(p), Buffer.concat(encodeCheckpoint({ ...ck, writtenMs: Date.now() - 2 * 86_400_000 })));
        }],
        [/changelog offset 99999999 is past the changelog partition's end/, (p) => {
          const ck = decodeCheckpoint(readFileSync(path(p)));
          writeFileSync(path(p), Buffer.concat(encodeCheckpoint({ ...ck, changelogOffset: 99_999_999n })));
        }],
        [/it is the state of group 'someone-else'/, (p) => {
          const ck = decodeCheckpoint(readFileSync(path(p)));
          writeFileSync(path(p), Buffer.concat(encodeCheckpoint({ ...ck, group: 'someone-else' })));
        }],
      ],
    ];
    for (const [i, round] of damage.entries()) {
      await topic.upTo(0.25 * (i + 1));
      await runThenStop(c, topic);
      round.forEach(([, spoil], p) => spoil(p));
      const next: RunProcess = startRun(c.path, brokers);
      await until('the restores', () => restores(next.err()).length >= PARTITIONS);
      const r = restores(next.err());
      for (const [p, [reason]] of round.entries()) {
        const line = r.find((x) => x.partition === p)!;
        expect(line.fromCheckpoint).toBe(false);
        expect(line.text).toMatch(/full read of offsets \d+\.\.\d+: checkpoint .* ignored: /);
        expect(line.text).toMatch(reason);
      }
      expect(await terminate(next)).toBe(0);
    }
    await topic.upTo(1);
    const last = startRun(c.path, brokers);
    await untilCommitted(brokers, c.group, topic.topic, 240_000);
    expect(await terminate(last)).toBe(0);
    await expectSameOutputs(brokers, ref, c, ['transitions', 'flows', 'deadLetter']);
  }, 900_000);
});

if (!brokers) {
  test.skip('local state checkpoints: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}
