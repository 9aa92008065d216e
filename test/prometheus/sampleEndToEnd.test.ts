/**
 * End to end on the bundled capture: `ctflow replay test/fixtures/sample.pcap --http` runs as a
 * child process, a real Prometheus scrapes it and evaluates ctflow's rule file, and then every
 * query of the dashboards and rules goes through Prometheus's HTTP API. Each must return data,
 * and what Prometheus holds must agree with the engine's own totals (the replay's summary).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAllPackets } from '../../ingest/packetSource';
import { startReplay } from './ctflowProcess';
import type { CtflowProcess } from './ctflowProcess';
import { startPrometheus } from './prometheusProcess';
import type { PrometheusProcess, QueryResult } from './prometheusProcess';
import { alertExpressions, alertSignals, dashboardQueries, recordingQueries } from './queries';

const ROOT = join(__dirname, '..', '..');
const SAMPLE = join(ROOT, 'test', 'fixtures', 'sample.pcap');
const RULES = join(ROOT, 'dashboards', 'prometheus', 'ctflow-rules.yaml');

let ctflow: CtflowProcess;
let prom: PrometheusProcess;

const one = (r: QueryResult): number => {
  expect(r.result).toHaveLength(1);
  return Number(r.result[0].value![1]);
};
const byLabel = (r: QueryResult, label: string): Record<string, number> => Object.fromEntries(r.result.map((s) => [s.metric[label], Number(s.value![1])]));
const nonZero = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));

beforeAll(async () => {
  ctflow = await startReplay(SAMPLE);
  prom = await startPrometheus([{ address: ctflow.address, labels: { capture: 'sample' } }], [RULES]);
  // Three scrapes at least, so every rate() has two points in its window, and the rules'
  // second level (the baseline over the recorded share) has been evaluated.
  await prom.waitFor('count_over_time(ctflow_build_info[1m])', (r) => r.result.length === 1 && Number(r.result[0].value![1]) >= 3, 'three scrapes');
  await prom.waitFor('job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d', (r) => r.result.length > 0, 'the recording rules');
}, 120_000);

afterAll(async () => {
  await prom?.stop();
  await ctflow?.stop();
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
