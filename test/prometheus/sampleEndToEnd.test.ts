/**
 * End to end on the bundled capture: `ctflow replay test/fixtures/sample.pcap --http --speed`
 * runs as a child process, paced so its 3.3 s of traffic play over about 16 s, while a real
 * Prometheus (started first, so it scrapes from the replay's start) scrapes it every second and
 * evaluates ctflow's rule file. Then every query of the dashboards and rules goes through
 * Prometheus's HTTP API: each must return data; the rate panels must have been non-zero while
 * the traffic played, with their area equal to what the counters grew by; and what Prometheus
 * holds at the end must agree with the engine's own totals (the replay's summary).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAllPackets } from '../../ingest/packetSource';
import { serveReplay } from './ctflowProcess';
import type { CtflowProcess } from './ctflowProcess';
import { freePort, startPrometheus } from './prometheusProcess';
import type { PrometheusProcess, QueryResult } from './prometheusProcess';
import { alertExpressions, alertSignals, counterQueries, dashboardQueries, recordingQueries } from './queries';
import { disagreements, quantilePanelValues, rateAreas, SAMPLE_STILL_COUNTERS_UNHELD } from './rateAreas';

const ROOT = join(__dirname, '..', '..');
const SAMPLE = join(ROOT, 'test', 'fixtures', 'sample.pcap');
const RULES = join(ROOT, 'dashboards', 'prometheus', 'ctflow-rules.yaml');
/** sample.pcap spans 3.3 s: at 0.2 x real time about 16 scrapes see it grow. */
const SPEED = 0.2;
/** $__rate_interval for the rate checks: ten 1 s scrapes per window. */
const RATE_WINDOW = 10;

let ctflow: CtflowProcess;
let prom: PrometheusProcess;
/** Wall-clock seconds: before ctflow started, and when its replay had ended. */
let replayStart: number;
let replayEnd: number;

const one = (r: QueryResult): number => {
  expect(r.result).toHaveLength(1);
  return Number(r.result[0].value![1]);
};
const byLabel = (r: QueryResult, label: string): Record<string, number> => Object.fromEntries(r.result.map((s) => [s.metric[label], Number(s.value![1])]));
const nonZero = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  // Prometheus first, on the port ctflow will take: its first scrape comes within a second of
  // ctflow listening, so the counters are watched from the first packets on.
  const port = await freePort();
  prom = await startPrometheus([{ address: `127.0.0.1:${port}`, labels: { capture: 'sample' } }], [RULES]);
  // Prometheus takes its targets from discovery on a 5 s tick: wait for its first (failed) try.
  await prom.waitFor('up', (r) => r.result.length > 0, 'the first scrape attempt');
  replayStart = Date.now() / 1000;
  const serving = await serveReplay(SAMPLE, { http: `127.0.0.1:${port}`, extra: ['--speed', String(SPEED)] });
  ctflow = { ...serving, summary: await serving.finished };
  replayEnd = Date.now() / 1000;
  await prom.waitFor('sum(ctflow_input_messages_total)', (r) => Number(r.result[0]?.value?.[1]) === ctflow.summary.frames, 'the final state scraped');
  const scraped = Date.now();
  await prom.waitFor('job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d', (r) => r.result.length > 0, 'the recording rules');
  // Until every rate window has slid past the last growth, so the rates' areas are complete.
  await sleep(Math.max(0, scraped + (RATE_WINDOW + 2) * 1000 - Date.now()));
}, 180_000);

afterAll(async () => {
  await prom?.stop();
  await ctflow?.stop();
});

test("the paced replay took the capture's duration divided by the speed", () => {
  expect(replayEnd - replayStart).toBeGreaterThan(3.27 / SPEED);
  expect(replayEnd - replayStart).toBeLessThan(3.27 / SPEED + 10);
});

describe('rate panels while the traffic played', () => {
  const queries = counterQueries(RATE_WINDOW).filter((q) => q.counters.includes('ctflow_'));

  test.each(queries.map((q) => [q.where, q]))('%s: non-zero while its counters grew, its area what they grew by', async (_where, q) => {
    const rows = await rateAreas(prom, q, replayStart, Date.now() / 1000);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.grew !== 0)).toBe(!SAMPLE_STILL_COUNTERS_UNHELD.test(q.counters));
    expect(disagreements(rows, RATE_WINDOW)).toEqual([]);
  });

  test('the throughput panel shows the pace: non-zero all through the replay, at the capture\'s rate times the speed', async () => {
    const q = queries.find((x) => x.where === 'ctflow / pipeline / Messages and packets / A')!;
    const rates = await prom.queryRange(q.expr, replayStart, replayEnd + RATE_WINDOW, 1);
    const values = rates.result[0].values!.map(([, v]) => Number(v));
    // 5802 frames in 3.28 s of capture, played over 16.4 s: about 350 a second.
    const pace = ctflow.summary.frames / (3.28 / SPEED);
    expect(values.filter((v) => v > 0).length).toBeGreaterThanOrEqual(Math.floor(replayEnd - replayStart) - 2);
    expect(Math.max(...values)).toBeGreaterThan(pace * 0.8);
    expect(Math.max(...values)).toBeLessThan(pace * 1.5);
    const first = Number((await prom.queryRange(q.counters, replayStart, replayEnd, 1)).result[0].values![0][1]);
    expect(first).toBeLessThan(pace * 2); // Prometheus was watching from the first second on
  });

  test('the batch panels (histogram quantiles) have values while the traffic played', async () => {
    const counts = await quantilePanelValues(prom, dashboardQueries({ __rate_interval: `${RATE_WINDOW}s` }), replayStart, replayEnd);
    expect(counts).toHaveLength(4);
    for (const [where, n] of counts) expect([where, n > 5]).toEqual([where, true]);
  });
});

describe('every query returns data', () => {
  test.each(dashboardQueries().map((q) => [q.where, q.expr]))('%s', async (_where, expr) => {
    expect((await prom.query(expr)).result.length).toBeGreaterThan(0);
  });
  test.each(recordingQueries().map((q) => [q.where, q.expr]))('%s', async (_where, expr) => {
    expect((await prom.query(expr)).result.length).toBeGreaterThan(0);
  });
  test.each(alertSignals().map((q) => [q.where, q.expr]))('%s', async (_where, expr) => {
    expect((await prom.query(expr)).result.length).toBeGreaterThan(0);
  });
});

test('every alert expression evaluates, and none fires on a finished replay of ordinary traffic', async () => {
  for (const a of alertExpressions()) expect([a.where, (await prom.query(a.expr)).result]).toEqual([a.where, []]);
});

test("Prometheus's numbers are the engine's totals for the capture", async () => {
  const s = ctflow.summary;
  expect(one(await prom.query('sum(ctflow_packets_total)'))).toBe(s.packets);
  expect(byLabel(await prom.query('sum by (ctstate) (ctflow_packets_total)'), 'ctstate')).toEqual(nonZero(s.ctstate));
  expect(byLabel(await prom.query('sum by (reason) (ctflow_invalid_packets_total)'), 'reason')).toEqual(s.invalidReasons);
  expect(one(await prom.query('sum(ctflow_flows_created_total)'))).toBe(s.events.NEW);
  expect(one(await prom.query('sum(ctflow_flows_destroyed_total)'))).toBe(s.events.DESTROY);
  expect(one(await prom.query('sum(ctflow_state_transitions_total{from="NONE"})'))).toBe(s.events.NEW);
  expect(one(await prom.query('sum(ctflow_state_transitions_total{to="DESTROYED"})'))).toBe(s.events.DESTROY);
  expect(one(await prom.query('sum(ctflow_nf_conntrack_entries)'))).toBe(s.entriesAtEnd);
  expect(one(await prom.query('sum(ctflow_input_messages_total)'))).toBe(s.frames);
  for (const [stat, value] of Object.entries(s.stats)) expect([stat, one(await prom.query(`ctflow_nf_conntrack_stat_${stat}_total`))]).toEqual([stat, value]);
  // Bytes are the IP datagram lengths, as conntrack counts them: summed here from the capture itself.
  const { packets } = readAllPackets(new Uint8Array(readFileSync(SAMPLE)));
  expect(one(await prom.query('sum(ctflow_bytes_total)'))).toBe(packets.reduce((n, p) => n + p.ip.length, 0));
});

test('the top-flows series are the biggest entries that /flows lists', async () => {
  const top = (await prom.query('sort_desc(ctflow_top_flow_bytes)')).result;
  expect(top).toHaveLength(20);
  const page = (await (await fetch(`${ctflow.url}/flows?sort=-bytes&limit=20`)).json()) as { flows: Array<{ bytes: number; orig: { src: string; sport: number } }> };
  expect(top.map((t) => Number(t.value![1]))).toEqual(page.flows.map((f) => f.bytes));
  expect(top.map((t) => `${t.metric.src}:${t.metric.sport}`)).toEqual(page.flows.map((f) => `${f.orig.src}:${f.orig.sport}`));
});
