/**
 * A real Prometheus for a test: its own process on 127.0.0.1 with a temporary config and TSDB,
 * scraping the given targets every second and evaluating the given rule files every second.
 * Queries go through its HTTP API, exactly as Grafana's would.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { prometheusTools } from './tools';

export interface ScrapeTarget {
  /** host:port */
  address: string;
  labels?: Record<string, string>;
}

export interface QueryResult {
  resultType: string;
  result: Array<{ metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }>;
}

export interface PrometheusProcess {
  readonly url: string;
  query(expr: string): Promise<QueryResult>;
  /** A range query (as a Grafana time series panel makes), times in seconds since the epoch. */
  queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<QueryResult>;
  /** Polls until `check` returns true for the query's result (or gives up after `ms`). */
  waitFor(expr: string, check: (r: QueryResult) => boolean, what: string, ms?: number): Promise<QueryResult>;
  stop(): Promise<void>;
}

/** A port nothing listens on now, for a target that Prometheus should scrape from its start. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPrometheus(targets: ScrapeTarget[], ruleFiles: string[], job = 'ctflow'): Promise<PrometheusProcess> {
  const { prometheus } = prometheusTools();
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: job, static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })) }],
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child: ChildProcess = spawn(prometheus, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));

  const stop = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async (path: string, params: Record<string, string>): Promise<QueryResult> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: QueryResult; error?: string };
    if (body.status !== 'success') throw new Error(`${path} failed: ${params.query}\n${body.error}`);
    return body.data;
  };
  const query = (expr: string): Promise<QueryResult> => api('query', { query: expr });
  const queryRange = (expr: string, startS: number, endS: number, stepS: number): Promise<QueryResult> =>
    api('query_range', { query: expr, start: String(startS), end: String(endS), step: String(stepS) });

  const waitFor = async (expr: string, check: (r: QueryResult) => boolean, what: string, ms = 60_000): Promise<QueryResult> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await query(expr);
      if (check(r)) return r;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}: ${expr} gave ${JSON.stringify(r.result).slice(0, 500)}`);
      await sleep(250);
    }
  };

  // Ready when its API answers.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`prometheus exited at start:\n${log}`);
    }
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready:\n${log}`);
    }
    await sleep(100);
  }
  return { url, query, queryRange, waitFor, stop };
}
