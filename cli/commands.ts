/**
 * The capture commands: classify, events, list, stats, whatif and replay. Each reads a capture,
 * runs the engine with the given sysctls and prints in the format users know.
 */
import { Presets, SingleBar } from 'cli-progress';
import { makeSysctl } from '../processors/conntrack/sysctl';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { expectationJson, flowJson, formatEntry, formatEvent, formatExpectEvent, formatExpectation, formatStats } from '../sinks/conntrackText';
import { eventJson, verdictJson } from '../sinks/jsonRecords';
import { loadCapture, problemLines, runCapture } from './runCapture';
import type { RunResult } from './runCapture';
import { whatIf } from './whatif';
import { reasonsByCount, replayTally } from './replayTally';
import type { ReplayTally } from './replayTally';
import * as inWorkers from './workerCommands';
import { captureWorkerCount, workerCount } from './workerCommands';
import { parseRuleOptions } from './rules';
import type { RuleOptions } from './rules';
import { eventSelector, flowSelector } from './filterOptions';
import type { FilterOptionValues } from './filterOptions';


import { captureZoneOf } from './zoneOptions';
import type { ZoneFlags } from './zoneOptions';
import type { CapturedPacket } from '../processors/packet';
import type { CtStats } from '../processors/flow';
import type { ReadSummary } from '../ingest/packetSource';

export interface CommonOptions extends RuleOptions, ZoneFlags {
  sysctl: string[];
  shards: string;
  /** Worker threads (the capture commands: cli/workerCommands.ts): a count or `auto`; absent: captureWorkerCount decides by the capture's size. */
  workers?: string;
  /** `--helper NAME:PROTO/PORT`, repeatable. */
  helper?: string[];
}

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export function settings(o: CommonOptions): { sysctl: Sysctl; shards: number; rules: ConntrackRules; zoneOf?: (p: CapturedPacket) => number } {
  const shards = Number(o.shards);
  if (!Number.isInteger(shards) || shards < 1 || shards > 1024) throw new Error(`--shards: '${o.shards}' is not an integer from 1 to 1024`);
  const zoneOf = captureZoneOf(o);
  return { sysctl: makeSysctl(o.sysctl), shards, rules: parseRuleOptions(o), zoneOf };
}

/**
 * The options with the thread count resolved for this capture (captureWorkerCount: --workers, or
 * one per core for a large capture), when it is more than one; undefined: run in this thread.
 */
function inShares<T extends CommonOptions>(path: string, o: T): T | undefined {
  const n = captureWorkerCount(o, path);
  return n > 1 ? { ...o, workers: String(n) } : undefined;
}

export function classify(path: string, o: CommonOptions, io: Output): void | Promise<void> {
  const shared = inShares(path, o);
  if (shared) return inWorkers.classify(path, shared, io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const r = runCapture(loadCapture(path), { sysctl, shards, rules, zoneOf, onVerdict: (v) => io.out(JSON.stringify(verdictJson(v))) });
  problemLines(r.summary).forEach(io.err);
}

/**
 * Expectations are numbered by the one engine that makes them, and a clash between two masters'
 * expectations is found only where both live, so shares could not reproduce one engine's:
 * --expect runs in one thread and says so rather than ignore --workers silently.
 */
function expectInOneThread(io: Output): void {
  io.err('ctflow: --expect runs in one thread (expectations are numbered and checked for clashes by one engine); --workers is not used');
}

/**
 * `events`: flow events like conntrack -E, with conntrack's filters and `-e` event mask applied to
 * each event (as conntrack -E does); with --expect, expectation events like conntrack -E expect.
 */
export function events(path: string, o: CommonOptions & FilterOptionValues & { json?: boolean; expect?: boolean }, io: Output): void | Promise<void> {
  const shared = o.expect ? undefined : inShares(path, o);
  if (shared) return inWorkers.events(path, shared, io);
  if (o.expect && workerCount(o.workers, o.nat) > 1) expectInOneThread(io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const selected = eventSelector(o);
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  const r = runCapture(loadCapture(path), {
    sysctl,
    shards,
    rules,
    zoneOf,
    onEvent: o.expect
      ? undefined
      : (e) => {
          if (selected(e)) io.out(o.json ? JSON.stringify(eventJson(e)) : formatEvent(e, text));
        },
    onExpectEvent: o.expect
      ? (e) => io.out(o.json ? JSON.stringify({ ts: e.tsUs / 1e6, type: e.type, ...expectationJson(e.expectation), ...(e.reason ? { reason: e.reason } : {}) }) : formatExpectEvent(e))
      : undefined,
  });
  problemLines(r.summary).forEach(io.err);
}

/**
 * `list`: the table after the last packet, with conntrack's filters (only the entries that pass
 * all of them are shown and counted); with --expect, the expectation table (conntrack -L expect).
 */
export function list(path: string, o: CommonOptions & FilterOptionValues & { json?: boolean; expect?: boolean }, io: Output): void | Promise<void> {
  const shared = o.expect ? undefined : inShares(path, o);
  if (shared) return inWorkers.list(path, shared, io);
  if (o.expect && workerCount(o.workers, o.nat) > 1) expectInOneThread(io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const selected = flowSelector(o);
  const r = runCapture(loadCapture(path), { sysctl, shards, rules, zoneOf });
  if (o.expect) {
    const expectations = r.engine.expectations();
    expectations.forEach((x) => io.out(o.json ? JSON.stringify(expectationJson(x)) : formatExpectation(x)));
    problemLines(r.summary).forEach(io.err);
    io.err(`conntrack v1.4 (conntrack-tools): ${expectations.length} expectation entries have been shown.`);
    return;
  }
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  const flows = r.engine.list().filter(selected);
  if (o.json) flows.forEach((f) => io.out(JSON.stringify(flowJson(f))));
  else flows.forEach((f) => io.out(formatEntry(f, text)));
  problemLines(r.summary).forEach(io.err);
  io.err(`conntrack v1.4 (conntrack-tools): ${flows.length} flow entries have been shown.`);
}

export function stats(path: string, o: CommonOptions & { json?: boolean }, io: Output): void | Promise<void> {
  const shared = inShares(path, o);
  if (shared) return inWorkers.stats(path, shared, io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const r = runCapture(loadCapture(path), { sysctl, shards, rules, zoneOf });
  const s = r.engine.stats();
  // `untracked` (packets NOTRACK rules left alone) is ctflow's own: conntrack -S has no such
  // counter, so the text form, which mirrors conntrack -S, leaves it out.
  io.out(o.json ? JSON.stringify({ entries: r.engine.count, ...s, untracked: r.engine.untracked }) : formatStats(s, r.engine.count));
  problemLines(r.summary).forEach(io.err);
}

export function whatif(path: string, o: CommonOptions & { json?: boolean }, io: Output): void | Promise<void> {
  if (o.sysctl.length === 0) throw new Error('whatif: give at least one --sysctl name=value to compare against the defaults');
  const shared = inShares(path, o);
  if (shared) return inWorkers.whatif(path, shared, io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const report = whatIf(loadCapture(path), makeSysctl(), sysctl, shards, rules, zoneOf);
  if (o.json) io.out(JSON.stringify(report));
  else report.lines.forEach(io.out);
}

export type ReplayOptions = CommonOptions & { quiet?: boolean; json?: boolean };

/** The main job on a capture: the whole in-process pipeline with progress and a summary. */
export function replay(path: string, o: ReplayOptions, io: Output): void | Promise<void> {
  const shared = inShares(path, o);
  if (shared) return inWorkers.replay(path, shared, io);
  const { sysctl, shards, rules, zoneOf } = settings(o);
  const bytes = loadCapture(path);
  const tally = replayTally();
  const showBar = !o.quiet && process.stderr.isTTY && bytes.length > 4 << 20;
  const bar = showBar ? new SingleBar({ format: 'replay |{bar}| {value} packets', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(Math.round(bytes.length / 100), 0);
  const started = process.hrtime.bigint();
  const r = runCapture(bytes, {
    sysctl,
    shards,
    rules,
    zoneOf,
    onVerdict: tally.onVerdict,
    onEvent: tally.onEvent,
    onProgress: (n) => bar?.update(n),
  });
  bar?.stop();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  printReplaySummary(path, replayOutcome(r), tally, seconds, sysctl, o, io);
}

/** What a replay's summary reports besides its tally. */
export interface ReplayOutcome {
  summary: ReadSummary;
  packets: number;
  count: number;
  stats: CtStats;
  untracked: number;
}

export function replayOutcome(r: RunResult): ReplayOutcome {
  return { summary: r.summary, packets: r.packets, count: r.engine.count, stats: r.engine.stats(), untracked: r.engine.untracked };
}

/** The replay's summary: one JSON object with --json, else a few lines for people; nothing with --quiet. */
export function printReplaySummary(path: string, r: ReplayOutcome, tally: ReplayTally, seconds: number, sysctl: Sysctl, o: ReplayOptions, io: Output): void {
  if (o.quiet) return;
  const { counts, reasons, eventCounts } = tally;
  const summary = {
    capture: path,
    frames: r.summary.frames,
    packets: r.packets,
    nonIp: r.summary.nonIp,
    malformed: r.summary.malformed.length,
    ctstate: counts,
    invalidReasons: Object.fromEntries(reasonsByCount(reasons)),
    events: eventCounts,
    entriesAtEnd: r.count,
    stats: r.stats,
    untracked: r.untracked,
    seconds: Number(seconds.toFixed(3)),
  };
  if (o.json) {
    io.out(JSON.stringify(summary));
    return;
  }
  io.out(`replayed ${path}: ${r.summary.frames} frames, ${r.packets} IP packets in ${summary.seconds}s`);
  io.out(`  ctstate   ${Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (reasons.size) io.out(`  invalid   ${reasonsByCount(reasons).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  io.out(`  events    ${Object.entries(eventCounts).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  io.out(`  table     ${r.count} entries at the end (nf_conntrack_max=${sysctl.nf_conntrack_max})`);
  if (r.summary.nonIp || r.summary.malformed.length) io.out(`  skipped   non-IP=${r.summary.nonIp} malformed=${r.summary.malformed.length}`);
  problemLines(r.summary).forEach(io.err);
}
