/**
 * End to end on the live pipeline: `ctflow run --http 127.0.0.1:0` (in process, as the Kafka
 * tests run the CLI) consumes a topic of the real broker while a real Prometheus scrapes it, and
 * `ctflow produce` feeds it test/fixtures/sample.pcap at 600 frames a second, so the scrapes see
 * the traffic arrive. Then the pipeline dashboard's panels (consumer and event-time lag, batch
 * histograms, throughput) must have had data, the rate panels must agree with their counters,
 * every shipped query must return data, Prometheus's totals must be the engine's for the
 * capture, the event-time alert must pick out the partitions fed 15-hour-old packets, and once
 * ctflow stops, the ctflow-down alert's expression must see it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mainAsync } from '../../main';
import { replayTally } from '../../cli/replayTally';
import { loadCapture, runCapture } from '../../cli/runCapture';
import type { RunResult } from '../../cli/runCapture';
import { readAllPackets } from '../../ingest/packetSource';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { ALERTS } from '../../dashboards/src/rules';
import { brokers, cliAsync, connect, runId } from '../kafka/helpers';
import { startPrometheus } from './prometheusProcess';
import type { PrometheusProcess, QueryResult } from './prometheusProcess';
import { alertExpressions, alertSignals, counterQueries, dashboardQueries, recordingQueries } from './queries';
import { disagreements, quantilePanelValues, rateAreas, SAMPLE_STILL_COUNTERS } from './rateAreas';

const ROOT = join(__dirname, '..', '..');
const SAMPLE = join(ROOT, 'test', 'fixtures', 'sample.pcap');
const RULES = join(ROOT, 'dashboards', 'prometheus', 'ctflow-rules.yaml');
const PARTITIONS = 4;
/** Frames a second `ctflow produce --rate` sends: sample.pcap's 5802 over about 10 s. */
const RATE = 600;
const RATE_WINDOW = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const one = (r: QueryResult): number => {
  expect(r.result).toHaveLength(1);
  return Number(r.result[0].value![1]);
};
const byLabel = (r: QueryResult, label: string): Record<string, number> => Object.fromEntries(r.result.map((s) => [s.metric[label], Number(s.value![1])]));
const nonZero = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));

const describeKafka = brokers ? describe : describe.skip;

describeKafka('a real Prometheus scraping ctflow run on a real Kafka topic', () => {
  const topic = `ctflow-test-metrics-${runId}`;
  const out: string[] = [];
  const err: string[] = [];
  let running: Promise<number> | undefined;
  let stopped: number | undefined;
  let prom: PrometheusProcess;
  let address: string;
  /** Wall-clock seconds: production started and ended. */
  let produceStart: number;
  let produceEnd: number;
  let producedMessages: number;
  /** The in-process engine on the same capture, and its replay tally: the totals to agree with. */
  let engine: RunResult;
  const tally = replayTally();

  async function stopRun(): Promise<number> {
    if (stopped === undefined && running) {
      process.emit('SIGTERM');
      stopped = await running;
    }
    return stopped!;
  }

  beforeAll(async () => {
    engine = runCapture(loadCapture(SAMPLE), { sysctl: makeSysctl(), shards: 1, onVerdict: tally.onVerdict, onEvent: tally.onEvent });
    const conn = connect();
    try {
      // As `ctflow produce` would make it: message times are the capture's, which are in the past.
      await (await conn.admin()).ensureTopics([{ topic, partitions: PARTITIONS, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } }]);
    } finally {
      await conn.close();
    }
    const dir = mkdtempSync(join(tmpdir(), 'ctflow-run-metrics-'));
    const config = join(dir, 'ctflow.yaml');
    // idleMs: an idle partition's clock would follow wall time and time its flows out; kept far
    // off, the tables stay those of the capture's end, as the in-process engine's. New series
    // show 0 for two 1 s scrapes, so even the INVALID counters, born at their final values, grow.
    writeFileSync(
      config,
      `input:\n  topic: ${topic}\n  group: g-${runId}\noutputs:\n  transitions: ${topic}.transitions\n  flows: ${topic}.flows\n  deadLetter: ${topic}.dead-letter\npipeline:\n  idleMs: 3600000\ntelemetry:\n  newSeriesHoldSeconds: 2\n`,
    );
    running = mainAsync(['run', '--config', config, '--brokers', brokers, '--http', '127.0.0.1:0'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    const deadline = Date.now() + 60_000;
    let url: string | undefined;
    while (Date.now() < deadline) {
      url ??= /serving (http:\/\/\S+)/.exec(err.join('\n'))?.[1];
      if (url && (await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) break;
      await sleep(100);
    }
    expect(url).toBeDefined();
    address = new URL(url!).host;
    prom = await startPrometheus([{ address }], [RULES]);
    await prom.waitFor('count_over_time(up[1m])', (r) => Number(r.result[0]?.value?.[1]) >= 2, 'two scrapes before the traffic');
    produceStart = Date.now() / 1000;
    const produced = await cliAsync('produce', SAMPLE, '--topic', topic, '--brokers', brokers, '--rate', String(RATE));
    produceEnd = Date.now() / 1000;
    expect(produced.code).toBe(0);
    producedMessages = Number(/produced \d+ frames in (\d+) messages/.exec(produced.err.join('\n'))?.[1]);
    await prom.waitFor('sum(ctflow_input_messages_total)', (r) => Number(r.result[0]?.value?.[1]) === producedMessages, 'every message consumed and scraped', 60_000);
    const consumed = Date.now();
    // The table series come from a walk of the tables at most every 10 s, and every rate window
    // must slide past the last growth: wait for both.
    await prom.waitFor('sum(ctflow_nf_conntrack_stat_found_total)', (r) => Number(r.result[0]?.value?.[1]) === engine.engine.stats().found, 'the final table walk scraped', 60_000);
    await prom.waitFor('job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d', (r) => r.result.length > 0, 'the recording rules');
    await sleep(Math.max(0, consumed + (RATE_WINDOW + 2) * 1000 - Date.now()));
  }, 240_000);

  afterAll(async () => {
    await stopRun();
    await prom?.stop();
  }, 60_000);

  test('the capture went through all partitions, in more messages than partitions, over the production time', () => {
    expect(producedMessages).toBeGreaterThan(PARTITIONS * 10);
    expect(produceEnd - produceStart).toBeGreaterThan(engine.summary.frames / RATE - 1);
  });

  test("Prometheus's numbers are the engine's totals for the capture", async () => {
    expect(one(await prom.query('sum(ctflow_packets_total)'))).toBe(engine.packets);
    expect(byLabel(await prom.query('sum by (ctstate) (ctflow_packets_total)'), 'ctstate')).toEqual(nonZero(tally.counts));
    expect(byLabel(await prom.query('sum by (reason) (ctflow_invalid_packets_total)'), 'reason')).toEqual(Object.fromEntries(tally.reasons));
    expect(one(await prom.query('sum(ctflow_flows_created_total)'))).toBe(tally.eventCounts.NEW);
    expect(one(await prom.query('sum(ctflow_flows_destroyed_total)'))).toBe(tally.eventCounts.DESTROY);
    expect(one(await prom.query('sum(ctflow_state_transitions_total{from="NONE"})'))).toBe(tally.eventCounts.NEW);
    expect(one(await prom.query('sum(ctflow_nf_conntrack_entries)'))).toBe(engine.engine.count);
    for (const [stat, value] of Object.entries(engine.engine.stats())) expect([stat, one(await prom.query(`sum(ctflow_nf_conntrack_stat_${stat}_total)`))]).toEqual([stat, value]);
    const { packets } = readAllPackets(new Uint8Array(readFileSync(SAMPLE)));
    expect(one(await prom.query('sum(ctflow_bytes_total)'))).toBe(packets.reduce((n, p) => n + p.ip.length, 0));
    expect(one(await prom.query('sum(ctflow_input_messages_total)'))).toBe(producedMessages);
    expect(one(await prom.query('sum(ctflow_dead_letters_total)'))).toBe(0);
  });

  test('the pipeline panels had data: consumer lag and event-time lag per partition', async () => {
    const partitions = (r: QueryResult) => r.result.map((s) => s.metric.partition).sort();
    const all = Array.from({ length: PARTITIONS }, (_, i) => String(i));
    const [consumer, eventTime] = dashboardQueries().filter((q) => /Consumer lag|Event-time lag/.test(q.where));
    const lag = await prom.query(consumer.expr);
    expect(partitions(lag)).toEqual(all);
    expect(lag.result.every((s) => s.value![1] === '0')).toBe(true); // caught up
    // Wall clock minus each partition's newest packet: the capture is from 2026-11-25 12:00 UTC.
    const times = readAllPackets(new Uint8Array(readFileSync(SAMPLE))).packets.map((p) => p.tsUs / 1e6);
    const now = Date.now() / 1000;
    const ages = await prom.query(eventTime.expr);
    expect(partitions(ages)).toEqual(all);
    for (const s of ages.result) {
      const age = Number(s.value![1]);
      expect(age).toBeGreaterThan(now - Math.max(...times) - 5);
      expect(age).toBeLessThan(now - Math.min(...times) + 5);
    }
  });

  test('the batch panels (histogram quantiles) had values while the traffic came in', async () => {
    const counts = await quantilePanelValues(prom, dashboardQueries({ __rate_interval: `${RATE_WINDOW}s` }), produceStart, produceEnd + RATE_WINDOW);
    expect(counts).toHaveLength(4);
    for (const [where, n] of counts) expect([where, n > 5]).toEqual([where, true]);
  });

  test.each(counterQueries(RATE_WINDOW).filter((q) => q.counters.includes('ctflow_')).map((q) => [q.where, q]))(
    '%s: non-zero while its counters grew, its area what they grew by',
    async (_where, q) => {
      const rows = await rateAreas(prom, q, produceStart - 5, Date.now() / 1000);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.some((r) => r.grew !== 0)).toBe(!SAMPLE_STILL_COUNTERS.test(q.counters));
      expect(disagreements(rows, RATE_WINDOW)).toEqual([]);
    },
  );

  test('the throughput panel was non-zero all through the production, near its rate', async () => {
    const q = counterQueries(RATE_WINDOW).find((x) => x.where === 'ctflow / pipeline / Messages and packets / B')!;
    const values = (await prom.queryRange(q.expr, produceStart, produceEnd + RATE_WINDOW, 1)).result[0].values!.map(([, v]) => Number(v));
    expect(values.filter((v) => v > 0).length).toBeGreaterThanOrEqual(Math.floor(produceEnd - produceStart) - 2);
    expect(Math.max(...values)).toBeGreaterThan(RATE * 0.7);
    expect(Math.max(...values)).toBeLessThan(RATE * 1.5);
  });

  test('every dashboard, recording-rule and alert-signal query returns data', async () => {
    const empty: string[] = [];
    for (const q of [...dashboardQueries(), ...recordingQueries(), ...alertSignals()]) if ((await prom.query(q.expr)).result.length === 0) empty.push(q.where);
    expect(empty).toEqual([]);
  });

  test('of the alerts, only the event-time lag is met: every partition is processing 15-hour-old packets', async () => {
    const met: Record<string, string[]> = {};
    for (const a of alertExpressions()) {
      const r = await prom.query(a.expr);
      if (r.result.length) met[a.where] = r.result.map((s) => s.metric.partition).sort();
    }
    expect(met).toEqual({ 'alert CtflowEventTimeLagHigh': ['0', '1', '2', '3'] });
  });

  test('once ctflow stops, the ctflow-down expression sees its target down', async () => {
    expect(await stopRun()).toBe(0);
    expect(err.some((l) => /offsets committed/.test(l))).toBe(true);
    const down = ALERTS.find((a) => a.alert === 'CtflowDown')!;
    const r = await prom.waitFor(down.expr, (x) => x.result.length > 0, 'the target seen down', 30_000);
    expect(r.result.map((s) => s.metric.instance)).toEqual([address]);
    expect((await prom.query(ALERTS.find((a) => a.alert === 'CtflowAbsent')!.expr)).result).toEqual([]);
  });
});

if (!brokers) test.skip('ctflow run end to end: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
