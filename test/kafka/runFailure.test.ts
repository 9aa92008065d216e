/**
 * A live `ctflow run` whose outputs cannot be written ends by itself, non-zero, naming the
 * reason, and commits nothing it did not write: it does not sit consuming nothing until a signal.
 * The write is made to fail the way a misconfigured cluster would: the transitions topic exists
 * with a max.message.bytes below any produce batch (a broker error no retry can mend).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, connect, runId } from './helpers';
import { committed, startRun } from './runProcess';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');

describe('a live run whose outputs cannot be written', () => {
  const input = `ctflow-fail-in-${runId}`;
  const group = `ctflow-fail-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-fail-'));

  beforeAll(async () => {
    const conn = connect();
    try {
      await (await conn.admin()).ensureTopics([{ topic: `${group}.transitions`, partitions: 1, config: { 'max.message.bytes': '300' } }]);
    } finally {
      await conn.close();
    }
    const r = await cliAsync('produce', sample, '--topic', input, '--brokers', brokers, '--quiet');
    expect(r.code).toBe(0);
  });

  test('stops by itself with exit 1, the broker’s reason and no commit', async () => {
    const config = join(dir, 'run.yaml');
    writeFileSync(config, ['input:', `  topic: ${input}`, `  group: ${group}`, 'outputs:', `  transitions: ${group}.transitions`, `  flows: ${group}.flows`, `  deadLetter: ${group}.dead-letter`, ''].join('\n'));
    const run = startRun(config, brokers);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([run.exit, new Promise<string>((r) => (timer = setTimeout(() => r('still running after 60 s'), 60_000)))]);
    clearTimeout(timer);
    if (typeof code === 'string') run.child.kill('SIGKILL');
    expect(code).toBe(1);
    expect(run.err()).toMatch(/ctflow: stopped after \d+ messages, \d+ packets: cannot write to [^\n]*\.transitions[^\n]*larger than the max message size/);
    expect(run.err()).not.toMatch(/offsets committed$/m);
    expect((await committed(brokers, group, input)).done).toBe(0n);
  }, 90_000);
});
