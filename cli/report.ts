/**
 * `ctflow report CAPTURE -o report.html`: one replay of the capture, collected into a
 * self-contained HTML report (sinks/report/), with `--whatif` the same capture under other knobs
 * side by side. Undecodable frames are listed in the report, not fatal.
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { SYSCTL_DEFAULTS } from '../processors/conntrack/sysctl';
import type { Sysctl } from '../processors/conntrack/sysctl';
import { ReportCollector } from '../sinks/report/collect';
import type { CollectOptions, ReportModel } from '../sinks/report/collect';
import { encodeReport } from '../sinks/report/encode';
import { reportHtml } from '../sinks/report/html';
import { browserScript } from '../sinks/report/browserBundle';
import type { WhatIfData } from '../sinks/report/reportData';
import { settings } from './commands';
import type { CommonOptions, Output } from './commands';
import { CliError, loadCapture, problemLines, runCapture } from './runCapture';
import type { RunOptions } from './runCapture';
import type { ConntrackRules } from '../processors/conntrack/rules';
import type { ReadSummary } from '../ingest/packetSource';
import { whatIf } from './whatif';

export interface ReportOptions extends CommonOptions {
  output?: string;
  whatif: string[];
  topic?: string;
  quiet?: boolean;
}

/** Verdict and flow changes kept in the file at most (the totals are always given). */
const WHATIF_LIST_LIMIT = 20_000;

function nonDefault(s: Sysctl): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s)) if (SYSCTL_DEFAULTS[k as keyof Sysctl] !== v) out[k] = v;
  return out;
}

/** The rules (--notrack, --nat, --helper) and zones (--zone-*) a report's replays run with. */
export interface ReportEngineOptions {
  rules?: ConntrackRules;
  zoneOf?: RunOptions['zoneOf'];
}

/** The replay of `bytes` as a report model, with the reader's summary (bad frames) for stderr. */
function collectReport(bytes: Uint8Array, captureName: string, sysctl: Sysctl, shards: number, collect: CollectOptions = {}, engine: ReportEngineOptions = {}): { model: ReportModel; summary: ReadSummary } {
  const collector = new ReportCollector(collect);
  const run = runCapture(bytes, { sysctl, shards, ...engine, onPacket: (p, v) => collector.onPacket(p, v), onEvent: (e) => collector.onEvent(e) });
  return { model: collector.finish(run, { captureName, sysctl, generatedBy: 'ctflow report' }), summary: run.summary };
}

/** The replay of `bytes` as a report model (tests compare it with the other commands; the bench times it). */
export function buildReportModel(bytes: Uint8Array, captureName: string, sysctl: Sysctl, shards: number, collect: CollectOptions = {}, engine: ReportEngineOptions = {}): ReportModel {
  return collectReport(bytes, captureName, sysctl, shards, collect, engine).model;
}

export function whatIfData(bytes: Uint8Array, base: Sysctl, other: Sysctl, shards: number, engine: ReportEngineOptions = {}): WhatIfData {
  const w = whatIf(bytes, base, other, shards, engine.rules, engine.zoneOf);
  return {
    base: { knobs: nonDefault(base) },
    other: { knobs: nonDefault(other) },
    changed: w.changed,
    packets: w.packets,
    verdictChanges: w.verdictChanges.slice(0, WHATIF_LIST_LIMIT),
    verdictChangesTotal: w.verdictChanges.length,
    flowChanges: w.flowChanges.slice(0, WHATIF_LIST_LIMIT),
    flowChangesTotal: w.flowChanges.length,
  };
}

/** Writes the report; returns the HTML's size in bytes. */
export function report(path: string | undefined, o: ReportOptions, io: Output): number {
  if (o.topic !== undefined) throw new CliError('report --topic: reports of a Kafka topic are not implemented yet; replay the topic into a capture, or report the capture itself');
  if (path === undefined) throw new CliError('report: give a capture file');
  if (!o.output) throw new CliError('report: give the output file with -o FILE.html');
  const { sysctl, shards, rules, zoneOf } = settings(o);
  // The what-if knobs are checked before the replay, not after it.
  const other = o.whatif.length ? makeSysctl([...o.sysctl, ...o.whatif]) : undefined;
  const started = process.hrtime.bigint();
  const bytes = loadCapture(path);
  const { model, summary } = collectReport(bytes, basename(path), sysctl, shards, {}, { rules, zoneOf });
  if (other) model.meta.whatif = whatIfData(bytes, sysctl, other, shards, { rules, zoneOf });
  const html = reportHtml(encodeReport(model), browserScript());
  try {
    writeFileSync(o.output, html);
  } catch (err) {
    throw new CliError(`cannot write report '${o.output}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const c = model.meta.capture;
  const size = Buffer.byteLength(html);
  if (!o.quiet) {
    io.err(`ctflow: wrote ${o.output} (${(size / 1e6).toFixed(1)} MB): ${c.packets} packets, ${model.meta.flowCount} flows, ${c.badFrames.length} bad frames, in ${seconds.toFixed(1)} s`);
    problemLines(summary).forEach(io.err);
  }
  return size;
}
