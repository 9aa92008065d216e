/**
 * What the capture workers and the thread that starts them say to each other (cli/workers/).
 * Each worker runs one share (captureShare.ts): it reads the whole capture from shared memory,
 * judges the packets whose flows it owns (flowKeyOf(packet) % workers) and only ticks the clock on
 * the others, so its tables, timeouts and expiries are exactly those of its part of a single
 * engine. It sends its output already formatted, tagged with where it goes in the single-engine
 * order. The main thread's own share (0) makes the same chunks without sending them.
 */
import type { CtStats, FlowRecord } from '../../processors/flow';
import type { ReadSummary } from '../../ingest/packetSource';
import type { ZoneFlags } from '../zoneOptions';
import type { EncodedLines } from './lineBatch';
import type { ReplayCounts } from '../replayTally';
import type { TelemetryCounts } from '../../sinks/telemetry/telemetry';

export interface CaptureWorkerTask {
  /** The capture file's bytes, shared by all workers (never copied per worker). */
  capture: SharedArrayBuffer;
  worker: number;
  workers: number;
  /** The net.netfilter knobs, by name. */
  sysctl: Record<string, number>;
  /** Which outputs to produce: per-packet verdicts as JSON lines, events as text or JSON lines. */
  verdicts: boolean;
  events?: 'text' | 'json';
  /** Whether to send the final table (list) at the end. */
  table: boolean;
  /** Whether to count verdicts by ctstate, INVALID reasons and events by type (replay's summary). */
  tally: boolean;
  /** Whether to count what the metrics count (replay --http/--otlp: shareTelemetry.ts). */
  telemetry?: boolean;
  /** The --notrack and --helper rules as given on the command line (each worker parses them itself). */
  notrack: string[];
  helper: string[];
  /** The command's conntrack filters and -e mask as given (events only; see cli/filterOptions.ts). */
  eventFilter?: Record<string, string | boolean>;
  /** The --zone-* options as given: every worker resolves zones as the single engine would. */
  zones: ZoneFlags;
}

/**
 * An event line and its place: `index` is the packet before which (phase 0: an expiry, found while
 * the clock moved to that packet's time) or by which (phase 1) it happened; expiries of several
 * workers at the same packet are ordered by time, then entry id, as the engine orders them.
 */
export interface EventLine {
  index: number;
  phase: 0 | 1;
  tsUs: number;
  id: number;
  line: string;
}

/** Numbers per event in WorkerChunk.eventPlaces: index, phase, tsUs, id (EventLine without its line). */
export const EVENT_PLACE_FIELDS = 4;

/** A stretch of output: everything a worker produced while reading packets up to `upTo` (exclusive). */
export interface WorkerChunk {
  kind: 'chunk';
  upTo: number;
  /**
   * The verdicts of this worker's packets: their indices, rising (a pipeline emits verdicts in
   * capture order; a held fragment's may come in a later chunk), and their lines. Typed arrays and
   * bytes cross the thread (transferred), not an object per packet: see lineBatch.ts.
   */
  verdictIndex: Int32Array;
  verdicts: EncodedLines;
  /** Where each event line goes (EVENT_PLACE_FIELDS numbers each), and the lines. */
  eventPlaces: Float64Array;
  events: EncodedLines;
}

export interface WorkerDone {
  kind: 'done';
  summary: ReadSummary;
  packets: number;
  stats: CtStats;
  /** Packets NOTRACK rules left untracked. */
  untracked: number;
  /** Packets a helper could not add an expectation for because the expectation table was full. */
  expectTableFull: number;
  count: number;
  flows?: FlowRecord[];
  /** This share's counts, with `tally`. */
  tally?: ReplayCounts;
  /** This share's metrics totals, with `telemetry`. */
  telemetry?: TelemetryCounts;
  /** The packet clock at the end (every share moves it on every packet: the same in all). */
  clockUs: number;
}

export type WorkerMessage = WorkerChunk | WorkerDone;
