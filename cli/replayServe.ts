/**
 * `ctflow replay CAPTURE --http ADDR [--linger SECONDS] [--speed N]` (and --otlp): the capture
 * replay with its telemetry served while it runs, and for --linger seconds after it ends, so the
 * final table can be explored (/flows, /stats) and scraped (/metrics) before the process exits.
 * --speed paces it at N times real time, so rates can be watched while it plays.
 * SIGINT or SIGTERM ends the lingering early, cleanly. With --workers N the replay runs in shares
 * and its state is served once they are done: the same final /flows, /stats and metric totals.
 */
import type { Output, ReplayOptions } from './commands';
import { printReplaySummary, replayOutcome, settings } from './commands';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { TableView } from '../sinks/telemetry/observer';
import type { PipelineTelemetry } from '../sinks/telemetry/telemetry';
import { replayTally } from './replayTally';
import { REPLAY_PARTITION, runCaptureObserved } from './observedReplay';
import { captureWorkerCount, limitWarning, shareOptions, workerCount } from './workerCommands';
import { runCaptureInWorkers } from './workers/captureWorkers';
import type { WorkerRunResult } from './workers/captureWorkers';
import { loadCapture } from './runCapture';
import { positiveInteger, startTelemetry } from './telemetryServe';
import type { TelemetryService } from './telemetryServe';

export interface ReplayServeOptions extends ReplayOptions {
  http?: string;
  linger?: string;
  otlp?: string;
  topFlows?: string;
  speed?: string;
}

/** A plain non-negative decimal (no exponent, sign or unit): `what` says what it counts, for the error. */
function nonNegative(text: string | undefined, option: string, what: string): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n)) throw new Error(`${option}: '${text}' is not ${what}`);
  return n;
}

export const parseLinger = (text: string | undefined): number => nonNegative(text, '--linger', 'a number of seconds');

/** --speed: times real time; 0 (the default) replays as fast as possible. */
export const parseSpeed = (text: string | undefined): number => nonNegative(text, '--speed', 'a non-negative number (0 = as fast as possible)');

/**
 * After a replay (of a capture or a topic): the tables walked once more so the final state is what
 * is served, readiness says so, and with --linger the server stays up that long.
 */
export async function serveFinalState(svc: TelemetryService, replayed: string, linger: number, quiet: boolean | undefined, io: Output): Promise<void> {
  await svc.telemetry.refresh();
  svc.setReadiness({ ready: true, status: `replayed ${replayed}: serving the final state` });
  if (linger > 0) {
    if (!quiet) io.err(`ctflow: replay done; serving the final state for ${linger}s (SIGINT/SIGTERM to stop)`);
    await lingerFor(linger);
  }
}

/** Waits `seconds`, or until SIGINT/SIGTERM, whichever comes first. */
function lingerFor(seconds: number): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string) => {
      clearTimeout(timer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    const timer = setTimeout(() => done('time'), seconds * 1000);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

export async function replayServed(path: string, o: ReplayServeOptions, io: Output): Promise<void> {
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const linger = parseLinger(o.linger);
  const speed = parseSpeed(o.speed);
  // A paced replay runs in one thread unless --workers asks otherwise (and is refused below).
  const workers = speed > 0 && o.workers === undefined ? 1 : captureWorkerCount(o, path);
  if (workers > 1 && speed > 0) throw new Error('replay --speed: the shares of --workers run ahead of any one place in the capture, so it cannot be paced; give one or the other');
  const topFlows = o.topFlows === undefined ? undefined : positiveInteger(o.topFlows, '--top-flows', 10_000);
  const bytes = loadCapture(path);
  const svc = await startTelemetry({ http: o.http, otlp: o.otlp, topFlows, mode: 'replay', log: io.err });
  try {
    if (svc.server) io.err(`ctflow: serving ${svc.server.url} (/metrics /flows /stats /healthz /readyz)`);
    svc.setReadiness({ ready: false, status: `replaying ${path}` });
    const started = process.hrtime.bigint();
    if (workers > 1) {
      const r = await replayInShares(bytes, { ...o, workers: String(workers) }, svc.telemetry, sysctl, started, io);
      printReplaySummary(path, r, r.tally!, Number(process.hrtime.bigint() - started) / 1e9, sysctl, o, io);
    } else {
      const tally = replayTally();
      const r = await runCaptureObserved(bytes, { sysctl, shards, rules, zoneOf, onVerdict: tally.onVerdict, onEvent: tally.onEvent, observer: svc.telemetry, speed });
      printReplaySummary(path, replayOutcome(r), tally, Number(process.hrtime.bigint() - started) / 1e9, sysctl, o, io);
    }
    await serveFinalState(svc, path, linger, o.quiet, io);
  } finally {
    await svc.close();
  }
}

/**
 * The replay in shares (cli/workers/captureWorkers.ts), told to the telemetry when it ends: each
 * share's totals, the capture as one batch of partition 0, its bad frames, and the final table
 * (the shares' tables merged, oldest entry first, as one engine lists it). While the shares run,
 * nothing is served but the probes and empty tables.
 */
async function replayInShares(bytes: Uint8Array, o: ReplayServeOptions, telemetry: PipelineTelemetry, sysctl: Sysctl, started: bigint, io: Output): Promise<WorkerRunResult> {
  const r = await runCaptureInWorkers(bytes, { sysctl, ...shareOptions(o), tally: true, table: true, telemetry: true });
  if (r.limitReached) io.err(limitWarning(sysctl.nf_conntrack_max, workerCount(o.workers)));
  const table: TableView = { list: () => r.flows, stats: () => r.stats, count: r.count, sysctl };
  telemetry.table(REPLAY_PARTITION, table);
  for (const counts of r.telemetry) telemetry.addCounts(counts);
  for (const m of r.summary.malformed) telemetry.deadLetter(REPLAY_PARTITION, m.reason);
  const frames = String(r.summary.frames);
  telemetry.batch({ partition: REPLAY_PARTITION, messages: r.summary.frames, packets: r.packets, processingSeconds: Number(process.hrtime.bigint() - started) / 1e9, nextOffset: frames, highWatermark: frames, packetClockUs: r.clockUs });
  return r;
}
