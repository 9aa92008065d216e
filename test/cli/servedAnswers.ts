/**
 * Runs a serving ctflow command (--http) in this process until it is ready, and reads what its
 * API answers: /flows for a list of queries, /stats, and the ctflow_ series of /metrics, leaving
 * out what depends on wall time or on how the input was cut into batches. Then SIGTERMs it.
 */
import { mainAsync } from '../../main';

/** Series that depend on wall time or on how the input was cut into batches, not on the state. */
const UNSTABLE = /^ctflow_(event_time_lag_seconds|batch_|table_snapshot_timestamp_seconds)/;

export interface Served {
  flows: Array<{ total: number; flows: unknown[] }>;
  stats: Record<string, unknown>;
  metrics: string[];
}

export async function answersOf(url: string, queries: readonly string[]): Promise<Served> {
  const get = async (path: string) => {
    const res = await fetch(`${url}${path}`);
    expect(res.status).toBe(200);
    return res;
  };
  const flows = [];
  for (const q of queries) flows.push((await (await get(`/flows?${q}`)).json()) as Served['flows'][number]);
  const stats = (await (await get('/stats')).json()) as Record<string, unknown> & { pipeline: Array<Record<string, unknown>> };
  for (const p of stats.pipeline) delete p.eventTimeLagSeconds;
  // Sorted: a series appears where its first packet came, and partitions interleave differently from run to run.
  const metrics = (await (await get('/metrics')).text()).split('\n').filter((l) => l.startsWith('ctflow_') && !UNSTABLE.test(l)).sort();
  return { flows, stats, metrics };
}

/** Runs the CLI until `ready` holds for its stderr, reads its answers to `queries`, then SIGTERMs it and expects exit 0. */
export async function serveAndRead(argv: string[], queries: readonly string[], ready: (err: string[]) => boolean | Promise<boolean>): Promise<Served> {
  const err: string[] = [];
  let code: number | undefined;
  const done = mainAsync(argv, { out: () => undefined, err: (l) => err.push(l) }).then((c) => (code = c));
  const deadline = Date.now() + 90_000;
  while (code === undefined && !(await ready(err)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (code !== undefined) throw new Error(`ctflow ${argv[0]} ended (${code}) before serving: ${err.join('\n')}`);
  const url = /serving (http:\/\/\S+)/.exec(err.join('\n'))![1];
  try {
    return await answersOf(url, queries);
  } finally {
    process.emit('SIGTERM');
    expect(await done).toBe(0);
  }
}

/** The line a replay prints once its final state is served. */
export const servingFinalState = (err: string[]): boolean => err.some((l) => l.includes('serving the final state'));
