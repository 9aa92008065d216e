/**
 * The capture commands with `--workers N` (N > 1): the same output as with one thread, the engine
 * split over N worker threads (cli/workers/). classify, events, list, stats and replay stream
 * their output as the shares make it; whatif (and report's what-if part) merges the shares'
 * differences at the end.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { flowJson, formatEntry, formatStats } from '../sinks/conntrackText';
import type { CommonOptions, Output, ReplayOptions } from './commands';
import { printReplaySummary, settings } from './commands';
import { eventSelector, flowSelector } from './filterOptions';
import type { FilterOptionValues } from './filterOptions';
import { loadCapture, problemLines } from './runCapture';
import { runCaptureInWorkers, shareSysctl } from './workers/captureWorkers';
import { runShares } from './workers/shareJobs';
import type { ShareRunOptions } from './workers/shareJobs';
import { mergeWhatIf } from './workers/whatIfShare';
import { whatIfReport } from './whatif';
import type { WhatIfReport } from './whatif';
import { makeSysctl } from '../processors/conntrack/sysctl';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { WorkerRunOptions, WorkerRunResult } from './workers/captureWorkers';

/**
 * --workers: a count from 1 to 64, or `auto` for the machine's cores; undefined: 1. With NAT rules
 * one: the two sides of a NAT'd connection carry different address pairs, so no split by the
 * flow key keeps them together (the engine runs one shard for the same reason).
 */
export function workerCount(text: string | undefined, nat: readonly string[] = []): number {
  if (text === undefined || nat.length > 0) return 1;
  if (text === 'auto') return availableParallelism();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 64) throw new Error(`--workers: '${text}' is not 'auto' or an integer from 1 to 64`);
  return n;
}

/**
 * Below this size a capture command given no --workers runs in one thread. Each share decodes
 * enough of every packet to find its owner and starts its own copy of the engine, so the split
 * pays only once the packets outnumber that fixed cost: on this 2-core machine with the second
 * core free (README), `events --json` with two threads took 2.2 s against 1.7 s on a 16 MB capture,
 * about as long on 67 MB, and x1.15-1.2 less on 202 MB.
 */
export const AUTO_WORKERS_MIN_CAPTURE_BYTES = 128 << 20;

/**
 * The thread count of a capture command: --workers when given; otherwise one per core (issue
 * "scale-out": the default is the number of cores) for a capture of at least
 * AUTO_WORKERS_MIN_CAPTURE_BYTES, and one thread below that.
 */
export function captureWorkerCount(o: { workers?: string; nat?: readonly string[] }, path: string | undefined): number {
  if (o.workers !== undefined || (o.nat?.length ?? 0) > 0) return workerCount(o.workers, o.nat);
  let size = 0;
  try {
    size = path === undefined ? 0 : statSync(path).size;
  } catch {
    return 1; // unreadable: the command says so when it reads it
  }
  return size >= AUTO_WORKERS_MIN_CAPTURE_BYTES ? availableParallelism() : 1;
}

export type WorkerOptions = CommonOptions & { workers?: string };

/** How the shares are split and what rules and zones each applies, from the command's options. */
export function shareOptions(o: WorkerOptions): ShareRunOptions {
  return { workers: workerCount(o.workers), notrack: o.notrack, helper: o.helper, zones: { zoneFrom: o.zoneFrom, zoneMap: o.zoneMap, zoneDefault: o.zoneDefault } };
}

/** What a run whose shares reached their part of the table limits says (see captureWorkers.ts). */
export function limitWarning(nfConntrackMax: number, workers: number): string {
  return `ctflow: a worker's table reached its share of nf_conntrack_max (${nfConntrackMax} / ${workers}) or nf_conntrack_expect_max: which entries were evicted may differ from --workers 1`;
}

async function run(path: string, o: WorkerOptions, io: Output, outputs: Omit<WorkerRunOptions, 'sysctl' | 'workers'>): Promise<WorkerRunResult> {
  const { sysctl } = settings(o);
  const r = await runCaptureInWorkers(loadCapture(path), { sysctl, ...shareOptions(o), ...outputs });
  if (r.limitReached) io.err(limitWarning(sysctl.nf_conntrack_max, workerCount(o.workers)));
  return r;
}

export async function classify(path: string, o: WorkerOptions, io: Output): Promise<void> {
  const r = await run(path, o, io, { onVerdictLine: io.out });
  problemLines(r.summary).forEach(io.err);
}

/** The option values the filters read (strings and flags only), for the workers. */
function filterValues(o: object): Record<string, string | boolean> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'string' || typeof v === 'boolean'));
}

export async function events(path: string, o: WorkerOptions & FilterOptionValues & { json?: boolean }, io: Output): Promise<void> {
  eventSelector(o); // a bad filter fails here, once, not in every worker
  const r = await run(path, o, io, { events: o.json ? 'json' : 'text', onEventLine: io.out, eventFilter: filterValues(o) });
  problemLines(r.summary).forEach(io.err);
}

export async function list(path: string, o: WorkerOptions & FilterOptionValues & { json?: boolean }, io: Output): Promise<void> {
  const selected = flowSelector(o);
  const r = await run(path, o, io, { table: true });
  const text = { acct: settings(o).sysctl.nf_conntrack_acct !== 0 };
  const flows = r.flows.filter(selected);
  if (o.json) flows.forEach((f) => io.out(JSON.stringify(flowJson(f))));
  else flows.forEach((f) => io.out(formatEntry(f, text)));
  problemLines(r.summary).forEach(io.err);
  io.err(`conntrack v1.4 (conntrack-tools): ${flows.length} flow entries have been shown.`);
}

export async function stats(path: string, o: WorkerOptions & { json?: boolean }, io: Output): Promise<void> {
  const r = await run(path, o, io, {});
  io.out(o.json ? JSON.stringify({ entries: r.count, ...r.stats, untracked: r.untracked }) : formatStats(r.stats, r.count));
  problemLines(r.summary).forEach(io.err);
}

/**
 * replay's summary from N shares: each counts its own verdicts and events, and the counts add up
 * to one engine's. No progress bar: the shares run ahead of any one place in the capture.
 */
export async function replay(path: string, o: ReplayOptions, io: Output): Promise<void> {
  const started = process.hrtime.bigint();
  const r = await run(path, o, io, { tally: true });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  printReplaySummary(path, r, r.tally!, seconds, settings(o).sysctl, o, io);
}

/**
 * whatif's two runs in shares (cli/workers/whatIfShare.ts): the report one thread makes, its
 * changes merged into one thread's order.
 */
export async function whatIfInShares(bytes: Uint8Array, base: Sysctl, changed: Sysctl, o: WorkerOptions, io: Output): Promise<WhatIfReport> {
  const shares = shareOptions(o);
  const results = await runShares(bytes, shares, { job: 'whatif', base: shareSysctl(base, shares.workers), changed: shareSysctl(changed, shares.workers) });
  const m = mergeWhatIf(results);
  if (m.limitReached) io.err(limitWarning(Math.min(base.nf_conntrack_max, changed.nf_conntrack_max), shares.workers));
  return whatIfReport(base, changed, m.packets, m.verdictChanges, m.flowChanges);
}

export async function whatif(path: string, o: WorkerOptions & { json?: boolean }, io: Output): Promise<void> {
  const report = await whatIfInShares(loadCapture(path), makeSysctl(), settings(o).sysctl, o, io);
  if (o.json) io.out(JSON.stringify(report));
  else report.lines.forEach(io.out);
}
