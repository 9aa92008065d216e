/**
 * ctflow's /metrics output: clean by `promtool check metrics` (Debian's promtool), and its
 * numbers the engine's own after replaying the sample capture.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { prometheusRegistry } from '../../../sinks/metrics/prometheus';
import { promtool } from '../../prometheus/tools';
import { sampleTelemetry } from '../telemetry/sampleTelemetry';

test('promtool check metrics finds no problem, process metrics included', async () => {
  const { telemetry } = await sampleTelemetry();
  const text = await prometheusRegistry(telemetry).metrics();
  expect(text).toMatch(/^process_resident_memory_bytes /m);
  expect(text).toMatch(/^ctflow_top_flow_bytes\{/m);
  const r = promtool(['check', 'metrics'], text);
  expect(r.output).toBe('');
  expect(r.status).toBe(0);
});

test("prom-client's full default set is what promtool objects to, hence the filter", async () => {
  const raw = new Registry();
  collectDefaultMetrics({ register: raw });
  const r = promtool(['check', 'metrics'], await raw.metrics());
  expect(r.output).toMatch(/nodejs_active_handles_total.*non-counter metrics should not have "_total" suffix/);
});

test('the counters are the engine totals', async () => {
  let registry!: Registry;
  const { run } = await sampleTelemetry({}, (t) => (registry = prometheusRegistry(t, { processMetrics: false })));
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
  const sum = async (name: string) => (await metric(name)).reduce((n, v) => n + v.value, 0);
  expect(await sum('ctflow_packets_total')).toBe(run.packets);
  expect(await sum('ctflow_nf_conntrack_entries')).toBe(run.engine.count);
  expect(await sum('ctflow_nf_conntrack_stat_found_total')).toBe(run.engine.stats().found);
  expect(await sum('ctflow_input_messages_total')).toBe(run.summary.frames);
  expect(await metric('ctflow_consumer_lag_messages')).toEqual([expect.objectContaining({ labels: { partition: '0' }, value: 0 })]);
  // The batches of 1000 packets: six of them for 5802 packets.
  const sizes = (await metric('ctflow_batch_size_messages')) as Array<{ metricName?: string; value: number }>;
  expect(sizes.find((v) => v.metricName === 'ctflow_batch_size_messages_count')?.value).toBe(6);
  expect(sizes.find((v) => v.metricName === 'ctflow_batch_size_messages_sum')?.value).toBe(run.summary.frames);
});

test("ctflow_build_info says whether ctflow runs live (the default) or replays a capture, so freshness alerts can leave replays out", async () => {
  const { telemetry } = await sampleTelemetry();
  const info = async (o: Parameters<typeof prometheusRegistry>[1]) => (await prometheusRegistry(telemetry, { processMetrics: false, ...o }).getSingleMetric('ctflow_build_info')!.get()).values;
  expect(await info({ version: '1.2.3' })).toEqual([expect.objectContaining({ labels: { version: '1.2.3', mode: 'live' }, value: 1 })]);
  expect(await info({ version: '1.2.3', mode: 'replay' })).toEqual([expect.objectContaining({ labels: { version: '1.2.3', mode: 'replay' }, value: 1 })]);
});

test('a new counter series shows 0 for the hold, then its value; series seen before are not held again', async () => {
  let now = 1_000_000;
  let registry!: Registry;
  const { run } = await sampleTelemetry({}, (t) => (registry = prometheusRegistry(t, { processMetrics: false, newSeriesHoldMs: 30_000, nowMs: () => now })));
  const values = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
  const sum = async (name: string) => (await values(name)).reduce((n, v) => n + v.value, 0);
  // First scrape: every traffic series exists, at 0, so the scraper has a zero sample before the growth.
  const first = await values('ctflow_packets_total');
  expect(first.length).toBeGreaterThan(1);
  expect(first.every((v) => v.value === 0)).toBe(true);
  expect(await sum('ctflow_invalid_packets_total')).toBe(0);
  now += 29_999;
  expect(await sum('ctflow_packets_total')).toBe(0);
  now += 1;
  expect(await sum('ctflow_packets_total')).toBe(run.packets);
  expect(await sum('ctflow_invalid_packets_total')).toBe(run.engine.stats().invalid);
  // Counters that are not traffic (the table's conntrack -S figures) are never held.
  expect(await sum('ctflow_nf_conntrack_stat_found_total')).toBe(run.engine.stats().found);
});
