/**
 * `ctflow report CAPTURE -o report.html`: one replay of the capture, collected into a
 * self-contained HTML report (sinks/report/), with `--whatif` the same capture under other knobs
 * side by side. `ctflow report --topic T` does the same for a captured-traffic Kafka topic: its
 * partitions merged by packet time into one engine (with --workers, one engine's shares, as for a
 * capture), so the report equals the report of the capture the topic was produced from.
 * Undecodable frames and messages are listed in the report, not fatal.
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { SYSCTL_DEFAULTS } from '../processors/conntrack/sysctl';
import type { Sysctl } from '../processors/conntrack/sysctl';
import { ReportCollector, runEnd } from '../sinks/report/collect';
import type { CollectOptions, ReportModel } from '../sinks/report/collect';
import { encodeReport } from '../sinks/report/encode';
import { reportHtml } from '../sinks/report/html';
import { browserScript } from '../sinks/report/browserBundle';
import type { WhatIfData } from '../sinks/report/reportData';
import { settings } from './commands';
import type { CommonOptions, Output } from './commands';
import { CliError, loadCapture, problemLines, runCapture } from './runCapture';
import type { PacketStream, ReadSummary } from '../ingest/packetSource';
import { whatIf } from './whatif';
import type { WhatIfReport } from './whatif';
import { limitWarning, shareOptions, whatIfInShares, workerCount } from './workerCommands';
import { feedReport } from './workers/reportShare';
import { runShares } from './workers/shareJobs';
import type { ShareRunOptions } from './workers/shareJobs';
import { shareSysctl } from './workers/captureWorkers';
import { topicShareInput } from './workers/topicShare';
import type { TopicShareInput } from './workers/topicShare';
import type { RunOptions } from './runCapture';
import { mergedTopicPackets } from '../ingest/kafka/mergedFrames';
import type { ZonedCapturedPacket } from '../ingest/kafka/mergedFrames';
import { KafkaConnection } from '../kafka/client';
import { zoneResolver } from '../processors/zones';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { settingsFrom, timeMs } from './kafkaCommands';
import { readTopicWindow } from './topicWindow';
import type { PartitionMessages } from './topicWindow';
import { KAFKA_ZONE_SOURCES, zonePolicyFromConfig, zonePolicyFromFlags, ZONES_CONFIG_DEFAULT } from './zoneOptions';
import type { ZoneFlags } from './zoneOptions';

export interface ReportOptions extends CommonOptions, ZoneFlags {
  output?: string;
  whatif: string[];
  /** A captured-traffic topic instead of a capture file, read from --from to --to. */
  topic?: string;
  brokers?: string;
  from?: string;
  to?: string;
  quiet?: boolean;
}

/** How one replay runs: the knobs, the engine's shards, rules and each packet's zone. */
interface ReplaySettings {
  sysctl: Sysctl;
  shards: number;
  rules: ConntrackRules;
  zoneOf?: RunOptions['zoneOf'];
}

/** Verdict and flow changes kept in the file at most (the totals are always given). */
const WHATIF_LIST_LIMIT = 20_000;

function nonDefault(s: Sysctl): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s)) if (SYSCTL_DEFAULTS[k as keyof Sysctl] !== v) out[k] = v;
  return out;
}

/** The replay of a capture (or a topic's packets) as a report model, with the reader's summary (bad frames) for stderr. */
function collectReport(source: Uint8Array | PacketStream, captureName: string, run: ReplaySettings, collect: CollectOptions = {}): { model: ReportModel; summary: ReadSummary } {
  const collector = new ReportCollector(collect);
  const r = runCapture(source, { ...run, onPacket: (p, v) => collector.onPacket(p, v), onEvent: (e) => collector.onEvent(e) });
  return { model: collector.finish(runEnd(r), { captureName, sysctl: run.sysctl, generatedBy: 'ctflow report' }), summary: r.summary };
}

/** The replay of `bytes` as a report model (tests compare it with the other commands; the bench times it). */
export function buildReportModel(bytes: Uint8Array, captureName: string, sysctl: Sysctl, shards: number, collect: CollectOptions = {}, more: { rules?: ConntrackRules; zoneOf?: RunOptions['zoneOf'] } = {}): ReportModel {
  return collectReport(bytes, captureName, { sysctl, shards, rules: more.rules ?? {}, zoneOf: more.zoneOf }, collect).model;
}

/**
 * The replay of `bytes` in shares (cli/workers/reportShare.ts) as a report model: the model one
 * thread builds, with whether some share reached its part of the table limits.
 */
export async function reportModelInShares(source: Uint8Array | TopicShareInput, captureName: string, sysctl: Sysctl, shares: ShareRunOptions, collect: CollectOptions = {}): Promise<{ model: ReportModel; summary: ReadSummary; limitReached: boolean }> {
  const results = await runShares(source, shares, { job: 'report', sysctl: shareSysctl(sysctl, shares.workers) });
  const collector = new ReportCollector(collect);
  const end = feedReport(results, collector);
  const model = collector.finish(end, { captureName, sysctl, generatedBy: 'ctflow report' });
  return { model, summary: end.summary, limitReached: results.some((r) => r.limitReached) };
}

export function whatIfData(bytes: Uint8Array, base: Sysctl, other: Sysctl, shards: number, rules: ConntrackRules = {}, zoneOf?: RunOptions['zoneOf']): WhatIfData {
  return whatIfDataOf(whatIf(bytes, base, other, shards, rules, zoneOf), base, other);
}

/** What the report keeps of a what-if: the totals, and the changes up to WHATIF_LIST_LIMIT. */
function whatIfDataOf(w: WhatIfReport, base: Sysctl, other: Sysctl): WhatIfData {
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

/** Writes the HTML file; returns its size in bytes. */
function writeReport(model: ReportModel, output: string): number {
  const html = reportHtml(encodeReport(model), browserScript());
  try {
    writeFileSync(output, html);
  } catch (err) {
    throw new CliError(`cannot write report '${output}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return Buffer.byteLength(html);
}

/** What was written, and the bad frames, on stderr. */
function tell(o: ReportOptions, model: ReportModel, summary: ReadSummary, size: number, started: bigint, io: Output): void {
  if (o.quiet) return;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const c = model.meta.capture;
  io.err(`ctflow: wrote ${o.output} (${(size / 1e6).toFixed(1)} MB): ${c.packets} packets, ${model.meta.flowCount} flows, ${c.badFrames.length} bad frames, in ${seconds.toFixed(1)} s`);
  problemLines(summary).forEach(io.err);
}

/**
 * Writes the report of a capture file; returns the HTML's size in bytes (a promise of it with
 * --workers: the shares run in worker threads).
 */
export function report(path: string | undefined, o: ReportOptions, io: Output): number | Promise<number> {
  // A topic is read asynchronously: main.ts sends --topic to reportTopic().
  if (o.topic !== undefined) throw new Error('report(): a topic report is reportTopic()');
  for (const [flag, value] of [['--brokers', o.brokers], ['--from', o.from], ['--to', o.to]] as const) {
    if (value !== undefined) throw new CliError(`report: ${flag} applies to a Kafka topic (--topic), not to a capture file`);
  }
  if (path === undefined) throw new CliError('report: give a capture file, or --topic to report a Kafka topic');
  if (!o.output) throw new CliError('report: give the output file with -o FILE.html');
  const run = settings(o);
  // The what-if knobs are checked before the replay, not after it.
  const other = o.whatif.length ? makeSysctl([...o.sysctl, ...o.whatif]) : undefined;
  const started = process.hrtime.bigint();
  const bytes = loadCapture(path);
  if (workerCount(o.workers, o.nat) > 1) return reportInShares(bytes, basename(path), o, run.sysctl, other, started, io);
  const { model, summary } = collectReport(bytes, basename(path), run);
  if (other) model.meta.whatif = whatIfData(bytes, run.sysctl, other, run.shards, run.rules, run.zoneOf);
  const size = writeReport(model, o.output);
  tell(o, model, summary, size, started, io);
  return size;
}

/** report --workers: the replay, and the what-if's two, in shares; the same file as one thread writes. */
async function reportInShares(bytes: Uint8Array, captureName: string, o: ReportOptions, sysctl: Sysctl, other: Sysctl | undefined, started: bigint, io: Output): Promise<number> {
  const shares = shareOptions(o);
  const { model, summary, limitReached } = await reportModelInShares(bytes, captureName, sysctl, shares);
  if (limitReached) io.err(limitWarning(sysctl.nf_conntrack_max, shares.workers));
  if (other) model.meta.whatif = whatIfDataOf(await whatIfInShares(bytes, sysctl, other, o, io), sysctl, other);
  const size = writeReport(model, o.output!);
  tell(o, model, summary, size, started, io);
  return size;
}

/**
 * The report model of a captured-traffic topic, from --from to --to (packet time; without --to,
 * to the end the topic has at start), with the summary of its bad frames and messages.
 */
export async function topicReportModel(o: ReportOptions & { topic: string }, io: Output): Promise<{ model: ReportModel; summary: ReadSummary; limitReached?: boolean }> {
  // A what-if replays its input twice and pairs the packets; for a topic that is not built yet.
  if (o.whatif.length) throw new CliError('report --topic: --whatif is not available for a topic; report the capture the topic was produced from');
  // Zones come from the Kafka sources (the message's header by default, as replay --topic), not the capture ones.
  const { sysctl, shards, rules } = settings({ ...o, zoneFrom: undefined, zoneMap: [], zoneDefault: undefined });
  const zones = zonePolicyFromFlags(o, KAFKA_ZONE_SOURCES, zonePolicyFromConfig(ZONES_CONFIG_DEFAULT));
  const zoneOf = zoneResolver(zones, o.topic);
  const fromMs = timeMs('--from', o.from);
  const toMs = timeMs('--to', o.to);
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw new CliError(`--to (${o.to}) is not after --from (${o.from})`);
  const conn = new KafkaConnection(settingsFrom(o, io));
  let partitions: PartitionMessages[];
  try {
    partitions = await readTopicWindow(conn, o.topic, { fromMs, toMs });
  } finally {
    await conn.close();
  }
  const window = { fromUs: fromMs === undefined ? undefined : fromMs * 1000, toUs: toMs === undefined ? undefined : toMs * 1000 };
  const name = `Kafka topic ${o.topic}${o.from !== undefined || o.to !== undefined ? ` from ${o.from ?? 'the start'} to ${o.to ?? 'the end'}` : ''}`;
  // Shares split by flow key over the merged window (cli/workers/topicShare.ts): the one-engine report, from N threads.
  if (workerCount(o.workers, o.nat) > 1) return reportModelInShares(topicShareInput(o.topic, partitions, window, zones), name, sysctl, shareOptions(o));
  const packets = mergedTopicPackets(partitions, { topic: o.topic, ...window, zoneOf });
  return collectReport(packets, name, { sysctl, shards, rules, zoneOf: (p) => (p as ZonedCapturedPacket).zone });
}

/** Writes the report of a captured-traffic topic; returns the HTML's size in bytes. */
export async function reportTopic(path: string | undefined, o: ReportOptions & { topic: string }, io: Output): Promise<number> {
  if (path !== undefined) throw new CliError('report: give a capture file or --topic, not both');
  workerCount(o.workers, o.nat); // a bad count is refused before connecting
  if (!o.output) throw new CliError('report: give the output file with -o FILE.html');
  const started = process.hrtime.bigint();
  const { model, summary, limitReached } = await topicReportModel(o, io);
  if (limitReached) io.err(limitWarning(settings(o).sysctl.nf_conntrack_max, workerCount(o.workers, o.nat)));
  const size = writeReport(model, o.output);
  tell(o, model, summary, size, started, io);
  return size;
}
