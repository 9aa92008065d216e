/**
 * Debian's prometheus and promtool for the tests, as test/prometheus/ensurePrometheus.js found
 * or installed them; a test that needs them fails with the reason when they are missing.
 */
import { spawnSync } from 'node:child_process';

export interface PrometheusTools {
  prometheus: string;
  promtool: string;
}

export function prometheusTools(): PrometheusTools {
  const missing = process.env.CTFLOW_PROMETHEUS_MISSING;
  if (missing) throw new Error(missing);
  const prometheus = process.env.CTFLOW_PROMETHEUS;
  const promtool = process.env.CTFLOW_PROMTOOL;
  if (!prometheus || !promtool) throw new Error('CTFLOW_PROMETHEUS/CTFLOW_PROMTOOL are not set: run the tests through jest (npm test), whose globalSetup finds or installs prometheus');
  return { prometheus, promtool };
}

export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync(prometheusTools().promtool, args, { input, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
