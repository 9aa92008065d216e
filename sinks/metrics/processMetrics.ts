/**
 * prom-client's default process and Node.js metrics (CPU, memory, file descriptors, event-loop
 * lag, GC), less the few that `promtool check metrics` rejects: gauges whose names end in
 * _total (nodejs_active_handles_total and its siblings), which Prometheus reserves for counters.
 * Their information is kept by the nodejs_active_* gauges without the suffix where prom-client
 * has them; ctflow's own series do not depend on them.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Metric } from 'prom-client';

export function registerProcessMetrics(target: Registry): void {
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  for (const metric of defaults.getMetricsAsArray()) {
    // getMetricsAsArray() is typed as plain objects, but hands back the metric instances.
    const m = metric as unknown as Metric & { name: string; type: string };
    if (m.type !== 'counter' && m.name.endsWith('_total')) continue;
    target.registerMetric(m);
  }
}
