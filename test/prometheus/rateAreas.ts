/**
 * Whether a dashboard's rate panel agrees with its counters over a stretch of time: the panel's
 * area (its per-second values summed over time) must be what the counters grew by, series by
 * series, and it must be non-zero where they grew and zero where they did not.
 *
 * rate() over [t-W, t] scales the growth between the window's first and last samples (about W-1
 * s apart at 1 s scrapes) up to W s, so the area may exceed the growth by up to W/(W-1), and it
 * misses no growth between two scrapes. Growth before a series' first scrape is invisible to
 * rate(), which is why the area is held against what the scrapes saw the counters grow by (and
 * the tests hold the counters' final values against the engine's totals).
 */
import type { PrometheusProcess } from './prometheusProcess';
import type { CounterQuery } from './queries';

/**
 * The counters sample.pcap leaves still when new series are held at 0 first (`ctflow run`,
 * telemetry.newSeriesHoldSeconds): it has no drops and no undecodable frame.
 */
export const SAMPLE_STILL_COUNTERS = /early_drop|stat_drop|insert_failed|dead_letters/;

/**
 * ...and when they are not (a replay shows values at once): its three INVALID packets, one per
 * reason, come within a millisecond of capture time, so each reason's series is born at its
 * final value with nothing left for rate() to see.
 */
export const SAMPLE_STILL_COUNTERS_UNHELD = /early_drop|stat_drop|insert_failed|dead_letters|invalid_packets/;

/** Seconds between the range query's points: fine, so the area is not quantised to whole windows. */
const STEP = 0.1;

export interface SeriesArea {
  series: string;
  /** What the counters grew by between their first and last samples in the stretch. */
  grew: number;
  /** The panel's largest value (absolute) and its area. */
  peak: number;
  area: number;
}

const key = (m: Record<string, string>): string => JSON.stringify(Object.entries(m).sort());

export async function rateAreas(prom: PrometheusProcess, q: CounterQuery, startS: number, endS: number): Promise<SeriesArea[]> {
  const rates = await prom.queryRange(q.expr, startS, endS, STEP);
  const counters = await prom.queryRange(q.counters, startS, endS, STEP);
  const ratesOf = new Map(rates.result.map((s) => [key(s.metric), s.values!.map(([, v]) => Number(v) / (q.increaseOver ?? 1))]));
  return counters.result.map((s) => {
    const v = s.values!.map(([, x]) => Number(x));
    const r = ratesOf.get(key(s.metric)) ?? [];
    return { series: key(s.metric), grew: v[v.length - 1] - v[0], peak: Math.max(0, ...r.map(Math.abs)), area: r.reduce((n, x) => n + x * STEP, 0) };
  });
}

/** The series whose panel disagrees with its counters, each with what was seen (empty: all agree). */
export function disagreements(rows: SeriesArea[], rateWindow: number): string[] {
  const over = rateWindow / (rateWindow - 1) + 0.02;
  const under = 0.97;
  return rows
    .filter((r) => (r.grew === 0 ? r.peak !== 0 : !(r.peak > 0 && r.area / r.grew >= under && r.area / r.grew <= over)))
    .map((r) => `${r.series}: grew ${r.grew}, rate peaked at ${r.peak.toFixed(1)}/s, area ${r.area.toFixed(1)}`);
}

/** Each histogram-quantile panel query with the finite, positive values it had over the stretch. */
export async function quantilePanelValues(prom: PrometheusProcess, queries: Array<{ where: string; expr: string }>, startS: number, endS: number): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for (const q of queries.filter((x) => x.expr.includes('histogram_quantile'))) {
    const r = await prom.queryRange(q.expr, startS, endS, 1);
    out.push([q.where, r.result.flatMap((s) => s.values!.map(([, v]) => Number(v))).filter((v) => Number.isFinite(v) && v > 0).length]);
  }
  return out;
}
