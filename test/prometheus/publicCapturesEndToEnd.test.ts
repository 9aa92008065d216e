/**
 * End to end on the public captures of ../shared/captures/public-oracle (when that folder is
 * there; the captures stay where they are, never copied into the project): one ctflow replay
 * per capture, all scraped by one real Prometheus, each target labelled with its capture.
 * Every capture's numbers in Prometheus must equal its engine's totals, and every dashboard,
 * recording-rule and alert-signal query must return data across them.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startReplay } from './ctflowProcess';
import type { CtflowProcess } from './ctflowProcess';
import { startPrometheus } from './prometheusProcess';
import type { PrometheusProcess, QueryResult } from './prometheusProcess';
import { alertExpressions, alertSignals, dashboardQueries, recordingQueries } from './queries';

const ROOT = join(__dirname, '..', '..');
const PUBLIC = join(ROOT, '..', 'shared', 'captures', 'public-oracle');
const RULES = join(ROOT, 'dashboards', 'prometheus', 'ctflow-rules.yaml');
const captures = existsSync(PUBLIC)
  ? readdirSync(PUBLIC)
      .filter((d) => existsSync(join(PUBLIC, d, 'packets.pcap')))
      .sort()
  : [];
/** ctflow processes started at once (each replays in well under a second; startup dominates). */
const START_BATCH = 8;

const describeIf = captures.length ? describe : describe.skip;

describeIf(`a real Prometheus scraping ctflow replaying ${captures.length} public captures`, () => {
  const running = new Map<string, CtflowProcess>();
  let prom: PrometheusProcess;

  beforeAll(async () => {
    for (let i = 0; i < captures.length; i += START_BATCH) {
      const batch = captures.slice(i, i + START_BATCH);
      const started = await Promise.all(batch.map((c) => startReplay(join(PUBLIC, c, 'packets.pcap'))));
      batch.forEach((c, k) => running.set(c, started[k]));
    }
    prom = await startPrometheus([...running].map(([capture, p]) => ({ address: p.address, labels: { capture } })), [RULES]);
    await prom.waitFor('min(count_over_time(ctflow_build_info[1m]))', (r) => r.result.length === 1 && Number(r.result[0].value![1]) >= 3, 'three scrapes of every target', 120_000);
    await prom.waitFor('count(ctflow_build_info)', (r) => Number(r.result[0]?.value?.[1]) === captures.length, 'every target', 120_000);
    await prom.waitFor('job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d', (r) => r.result.length > 0, 'the recording rules');
  }, 600_000);

  afterAll(async () => {
    await prom?.stop();
    await Promise.all([...running.values()].map((p) => p.stop()));
  }, 120_000);

  const perCapture = (r: QueryResult): Map<string, number> => new Map(r.result.map((s) => [s.metric.capture, Number(s.value![1])]));

  /** Captures whose total in Prometheus differs from the engine's, as [capture, prometheus, engine]. */
  async function disagreements(expr: string, engine: (p: CtflowProcess) => number): Promise<Array<[string, number | undefined, number]>> {
    const got = perCapture(await prom.query(expr));
    return [...running]
      .map(([c, p]): [string, number | undefined, number] => [c, got.get(c), engine(p)])
      .filter(([, g, e]) => (g ?? 0) !== e); // a capture with none of a thing has no series for it
  }

  test.each([
    ['packets', 'sum by (capture) (ctflow_packets_total)', (p: CtflowProcess) => p.summary.packets],
    ['INVALID packets', 'sum by (capture) (ctflow_invalid_packets_total)', (p: CtflowProcess) => p.summary.ctstate.INVALID],
    ['flows created', 'sum by (capture) (ctflow_flows_created_total)', (p: CtflowProcess) => p.summary.events.NEW],
    ['flows destroyed', 'sum by (capture) (ctflow_flows_destroyed_total)', (p: CtflowProcess) => p.summary.events.DESTROY],
    ['table entries', 'sum by (capture) (ctflow_nf_conntrack_entries)', (p: CtflowProcess) => p.summary.entriesAtEnd],
    ['frames', 'sum by (capture) (ctflow_input_messages_total)', (p: CtflowProcess) => p.summary.frames],
    ['conntrack -S found', 'sum by (capture) (ctflow_nf_conntrack_stat_found_total)', (p: CtflowProcess) => p.summary.stats.found],
    ['conntrack -S insert', 'sum by (capture) (ctflow_nf_conntrack_stat_insert_total)', (p: CtflowProcess) => p.summary.stats.insert],
    ['conntrack -S invalid', 'sum by (capture) (ctflow_nf_conntrack_stat_invalid_total)', (p: CtflowProcess) => p.summary.stats.invalid],
  ])("%s: Prometheus's number for each capture is its engine's", async (_what, expr, engine) => {
    expect(await disagreements(expr, engine)).toEqual([]);
  });

  test('every dashboard, recording-rule and alert-signal query returns data', async () => {
    const empty: string[] = [];
    for (const q of [...dashboardQueries(), ...recordingQueries(), ...alertSignals()]) if ((await prom.query(q.expr)).result.length === 0) empty.push(q.where);
    expect(empty).toEqual([]);
  });

  test('every alert expression evaluates', async () => {
    for (const a of alertExpressions()) await expect(prom.query(a.expr)).resolves.toHaveProperty('resultType', 'vector');
  });
});

if (!captures.length) test.skip(`no public captures at ${PUBLIC}`, () => undefined);
