/**
 * `ctflow replay CAPTURE --http ADDR [--linger SECONDS] [--speed N]` (and --otlp): the capture
 * replay with its telemetry served while it runs, and for --linger seconds after it ends, so the
 * final table can be explored (/flows, /stats) and scraped (/metrics) before the process exits.
 * --speed paces it at N times real time, so rates can be watched while it plays.
 * SIGINT or SIGTERM ends the lingering early, cleanly.
 */
import type { Output, ReplayOptions } from './commands';
import { printReplaySummary, refuseWorkers, replayOutcome, settings } from './commands';
import { replayTally } from './replayTally';
import { runCaptureObserved } from './observedReplay';
import { loadCapture } from './runCapture';
import { positiveInteger, startTelemetry } from './telemetryServe';

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

/** Waits `seconds`, or until SIGINT/SIGTERM, whichever comes first. */
export function lingerFor(seconds: number): Promise<string> {
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
  refuseWorkers('replay --http/--otlp', o);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const linger = parseLinger(o.linger);
  const speed = parseSpeed(o.speed);
  const topFlows = o.topFlows === undefined ? undefined : positiveInteger(o.topFlows, '--top-flows', 10_000);
  const bytes = loadCapture(path);
  const svc = await startTelemetry({ http: o.http, otlp: o.otlp, topFlows, mode: 'replay', log: io.err });
  try {
    if (svc.server) io.err(`ctflow: serving ${svc.server.url} (/metrics /flows /stats /healthz /readyz)`);
    svc.setReadiness({ ready: false, status: `replaying ${path}` });
    const tally = replayTally();
    const started = process.hrtime.bigint();
    const r = await runCaptureObserved(bytes, { sysctl, shards, rules, zoneOf, onVerdict: tally.onVerdict, onEvent: tally.onEvent, observer: svc.telemetry, speed });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await svc.telemetry.refresh();
    printReplaySummary(path, replayOutcome(r), tally, seconds, sysctl, o, io);
    svc.setReadiness({ ready: true, status: `replayed ${path}: serving the final state` });
    if (linger > 0) {
      if (!o.quiet) io.err(`ctflow: replay done; serving the final state for ${linger}s (SIGINT/SIGTERM to stop)`);
      await lingerFor(linger);
    }
  } finally {
    await svc.close();
  }
}
