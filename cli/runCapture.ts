/**
 * Runs one capture file through the in-process pipeline (reader -> decoder -> ConntrackPipeline),
 * handing verdicts and events to the caller. Frames that cannot be decoded are collected with
 * their index and reason (a dead-letter list), never dropped silently.
 */
import { readFileSync } from 'node:fs';
import { readPackets } from '../ingest/packetSource';
import type { ReadSummary } from '../ingest/packetSource';
import type { FlowEvent } from '../processors/flow';
import { ConntrackPipeline } from '../processors/pipeline';
import type { PacketVerdict } from '../processors/pipeline';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackEngine } from '../processors/conntrack/engine';

export interface RunOptions {
  sysctl: Sysctl;
  shards: number;
  onVerdict?(v: PacketVerdict): void;
  onEvent?(e: FlowEvent): void;
  /** Called every 4096 packets with the number read so far. */
  onProgress?(packets: number): void;
}

export interface RunResult {
  engine: ConntrackEngine;
  summary: ReadSummary;
  packets: number;
}

export class CliError extends Error {}

export function loadCapture(path: string): Uint8Array {
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new CliError(`cannot read capture '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function runCapture(bytes: Uint8Array, opts: RunOptions): RunResult {
  const pipeline = new ConntrackPipeline(
    { verdict: (v) => opts.onVerdict?.(v), event: (e) => opts.onEvent?.(e) },
    { sysctl: opts.sysctl, shards: opts.shards },
  );
  let stream;
  try {
    stream = readPackets(bytes);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  let packets = 0;
  for (const p of stream) {
    pipeline.push(p);
    packets++;
    if (opts.onProgress && (packets & 4095) === 0) opts.onProgress(packets);
  }
  pipeline.end();
  return { engine: pipeline.engine, summary: stream.summary, packets };
}

/** The dead-letter report for stderr: one line per undecodable frame, then a count. */
export function problemLines(summary: ReadSummary): string[] {
  const lines = summary.malformed.map((m) => `ctflow: frame ${m.frame}: ${m.reason}`);
  if (summary.captureProblem) {
    const cp = summary.captureProblem;
    lines.push(`ctflow: frame ${cp.frame} (byte ${cp.offset}): ${cp.reason}; the capture ends there`);
  }
  if (summary.malformed.length) lines.push(`ctflow: ${summary.malformed.length} malformed frame(s) skipped`);
  return lines;
}
