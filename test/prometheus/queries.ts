/**
 * Every PromQL expression ctflow ships, ready to run against a real Prometheus: the dashboards'
 * panel queries with Grafana's variables filled in as "All" would fill them, the recording
 * rules, and the alerts with the signal each is built on.
 */
import type { Dashboard, Panel, RowPanel } from '@grafana/schema';
import { conntrackDashboard } from '../../dashboards/src/conntrackDashboard';
import { pipelineDashboard } from '../../dashboards/src/pipelineDashboard';
import { ALERTS, RECORDING_RULES } from '../../dashboards/src/rules';

/** What Grafana puts in place of each variable the dashboards use (All selected, 1 s scrapes). */
const VARIABLES: Record<string, string> = { instance: '.*', zone: '.*', __rate_interval: '1m', __interval: '15s' };

export function fillVariables(expr: string, overrides: Record<string, string> = {}): string {
  return expr.replace(/\$(\w+)/g, (_, name: string) => {
    const v = overrides[name] ?? VARIABLES[name];
    if (v === undefined) throw new Error(`unknown dashboard variable $${name} in ${expr}`);
    return v;
  });
}

export interface NamedQuery {
  where: string;
  expr: string;
}

export function dashboards(): Dashboard[] {
  return [conntrackDashboard(), pipelineDashboard()];
}

export function dashboardQueries(overrides?: Record<string, string>): NamedQuery[] {
  const out: NamedQuery[] = [];
  for (const d of dashboards()) {
    for (const p of (d.panels ?? []) as Array<Panel | RowPanel>) {
      if (p.type === 'row') continue;
      for (const t of (p as Panel).targets ?? []) out.push({ where: `${d.title} / ${p.title} / ${t.refId}`, expr: fillVariables(String(t.expr), overrides) });
    }
  }
  return out;
}

/** A dashboard query over counters: per second with rate(), or per window with increase(). */
export interface CounterQuery extends NamedQuery {
  /** The same expression over the counters themselves: what the panel's rates add up to. */
  counters: string;
  /** The rate window in seconds, for increase(); undefined for rate(). */
  increaseOver?: number;
}

const COUNTER_FUNCTION = /\b(rate|increase)\(([^()]*?)\[\$__rate_interval\]\)/g;

/**
 * The dashboard queries that are sums of rate() or increase() of counters (histogram quantiles
 * and rules aside), with `$__rate_interval` set to `rateInterval` seconds.
 */
export function counterQueries(rateInterval: number): CounterQuery[] {
  const out: CounterQuery[] = [];
  for (const q of dashboardQueries({ __rate_interval: '$__rate_interval' })) {
    const fns = [...q.expr.matchAll(COUNTER_FUNCTION)].map((m) => m[1]);
    if (fns.length === 0 || q.expr.includes('histogram_quantile') || new Set(fns).size > 1) continue;
    out.push({
      where: q.where,
      expr: q.expr.replaceAll('$__rate_interval', `${rateInterval}s`),
      counters: q.expr.replace(COUNTER_FUNCTION, (_m, _fn, inner: string) => inner),
      increaseOver: fns[0] === 'increase' ? rateInterval : undefined,
    });
  }
  return out;
}

export function recordingQueries(): NamedQuery[] {
  return RECORDING_RULES.flatMap((r) => [
    { where: `recording rule ${r.record} (expression)`, expr: r.expr },
    { where: `recording rule ${r.record} (recorded series)`, expr: r.record },
  ]);
}

export function alertSignals(): NamedQuery[] {
  return ALERTS.map((a) => ({ where: `alert ${a.alert} (signal)`, expr: a.signal }));
}

export function alertExpressions(): NamedQuery[] {
  return ALERTS.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr }));
}
