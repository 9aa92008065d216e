/**
 * The live API and the metrics with partition workers, against a real broker: `replay --topic
 * --http --linger` and `run --http` with 2 and 3 workers serve the /flows pages (with filters,
 * sorts and pages), /stats and the Prometheus series one thread serves for the same input, read
 * once the input is all processed (the replay's final state while it lingers; the live run, at
 * least once and exactly once, once every message is in, with idle ticks far off so wall time
 * moves no clock).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { brokers, cliAsync, connect, runId } from './helpers';
import { captureArb } from '../cli/workers/randomCaptures';
import { serveAndRead, servingFinalState } from '../cli/servedAnswers';
import type { Served } from '../cli/servedAnswers';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const describeKafka = brokers ? describe : describe.skip;

/** Filters, sorts and pages of /flows, each one selecting some flows but not all. */
const QUERIES = ['', 'proto=tcp&sort=-bytes&limit=5', 'proto=udp&status=UNREPLIED', 'state=ESTABLISHED&sort=timeout', 'zone=3', 'sort=-packets&offset=7&limit=9', 'src=10.0.0.0/8&sort=start', 'nat=none&sort=-last&limit=1000'];

function expectSubstantial(s: Served): void {
  const stats = s.stats as { entries: number; partitions: unknown[]; packets: Record<string, number>; pipeline: Array<{ messages: number }> };
  expect(stats.entries).toBeGreaterThan(20);
  expect(stats.partitions).toHaveLength(4);
  expect(stats.packets.ESTABLISHED).toBeGreaterThan(100);
  const pages = s.flows;
  // Each filter selects some flows and not all of them.
  QUERIES.forEach((q, k) => {
    expect(pages[k].total).toBeGreaterThan(0);
    if (/proto|status|state|zone|src/.test(q)) expect(pages[k].total).toBeLessThan(pages[0].total);
  });
  for (const series of ['ctflow_nf_conntrack_entries{', 'ctflow_top_flow_bytes{', 'ctflow_nf_conntrack_stat_found_total{', 'ctflow_packets_total{', 'ctflow_state_transitions_total{']) {
    expect(s.metrics.filter((l) => l.startsWith(series)).length).toBeGreaterThan(0);
  }
}

describeKafka('the live API and metrics with partition workers (real broker)', () => {
  const topic = `ctflow-test-wktelemetry-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-wktelemetry-'));
  let inputMessages = 0;

  beforeAll(async () => {
    const produce = async (path: string, ...extra: string[]) => {
      const r = await cliAsync('produce', path, '--topic', topic, '--partitions', '4', '--brokers', brokers, '--quiet', ...extra);
      expect(r.code).toBe(0);
    };
    await produce(sample, '--batch-frames', '16');
    fc.sample(captureArb, { seed: 21, numRuns: 2 }).forEach((pcap, k) => writeFileSync(join(dir, `random${k}.pcap`), pcap));
    await produce(join(dir, 'random0.pcap'), '--single-frames');
    await produce(join(dir, 'random1.pcap'), '--single-frames', '--zone', '3');
    const conn = connect();
    await (await conn.producer()).send([{ topic, partition: 2, value: Buffer.from('not a frame batch'), key: 'k' }]);
    const admin = await conn.admin();
    for (const o of await admin.offsets(topic)) inputMessages += Number(o.high) - Number(o.low);
    await conn.close();
  }, 120_000);

  test('replay --topic --http with 2 and 3 workers serves, once it is done, what one thread serves', async () => {
    const replay = (workers: string) =>
      serveAndRead(['replay', '--topic', topic, '--brokers', brokers, '--out-prefix', `${topic}.w${workers}.`, '--http', '127.0.0.1:0', '--linger', '300', '--top-flows', '7', '--workers', workers], QUERIES, servingFinalState);
    const one = await replay('1');
    expectSubstantial(one);
    expect((one.stats as { pipeline: Array<{ messages: number }> }).pipeline.reduce((n, p) => n + p.messages, 0)).toBe(inputMessages);
    for (const workers of ['2', '3']) expect(await replay(workers)).toEqual(one);
  }, 300_000);

  test.each(['at-least-once', 'exactly-once'])('run --guarantee %s --http with 2 workers serves, once every message is in, what one thread serves', async (guarantee) => {
    const live = (workers: string) => {
      const prefix = `${topic}.live-${guarantee}-${workers}.`;
      const config = join(dir, `live-${guarantee}-${workers}.yaml`);
      writeFileSync(config, [`input: {topic: ${topic}, group: ${prefix}group}`, `outputs: {transitions: ${prefix}transitions, flows: ${prefix}flows, deadLetter: ${prefix}dead-letter}`, 'pipeline: {idleMs: 3600000}', 'telemetry: {newSeriesHoldSeconds: 0}', ''].join('\n'));
      // Ready once /stats has counted every input message.
      const allIn = async (err: string[]) => {
        const url = /serving (http:\/\/\S+)/.exec(err.join('\n'))?.[1];
        if (!url) return false;
        const stats = (await (await fetch(`${url}/stats`)).json()) as { pipeline: Array<{ messages: number }> };
        return stats.pipeline.reduce((n, p) => n + p.messages, 0) === inputMessages;
      };
      const argv = ['run', '--config', config, '--brokers', brokers, '--http', '127.0.0.1:0', '--top-flows', '7', '--workers', workers, '--guarantee', guarantee, '--state-dir', join(dir, `state-${guarantee}-${workers}`)];
      return serveAndRead(argv, QUERIES, allIn);
    };
    const one = await live('1');
    expectSubstantial(one);
    expect(await live('2')).toEqual(one);
  }, 300_000);
});
