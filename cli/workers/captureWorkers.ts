/**
 * `--workers N` for the capture commands: the engine split into N shares by the flow key that
 * splits shards and Kafka partitions (zone + unordered address pair), with output identical to
 * one thread's. Shares 1..N-1 run in worker threads, share 0 in this thread between merges
 * (captureShare.ts). The capture is copied once into shared memory; each share judges its own
 * flows' packets and only moves its clock on the others', so timeouts and expiries happen exactly
 * where a single engine has them. This thread puts the shares' lines back into single-engine
 * order: verdicts by packet index; events by the packet at which they happened, expiries of all
 * shares first (by time, then entry id, as the engine merges its shards' expiries), then the
 * events the packet itself caused.
 *
 * The table limits are the one place where threads cannot agree without talking per packet:
 * each worker holds at most ceil(nf_conntrack_max / N) entries and early-drops among its own
 * (and as much of nf_conntrack_expect_max). Below that no worker ever evicts, and the output is
 * exactly one engine's; when a worker does reach it, the run says so, since which entries are
 * evicted may then differ from --workers 1.
 */
import { Worker } from 'node:worker_threads';
import { extname, join } from 'node:path';
import type { CtStats, FlowRecord } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import type { ReadSummary } from '../../ingest/packetSource';
import { openCapture } from '../../ingest/capture/reader';
import type { ZoneFlags } from '../zoneOptions';
import type { CaptureWorkerTask, EventLine, WorkerChunk, WorkerDone, WorkerMessage } from './protocol';
import { EVENT_PLACE_FIELDS } from './protocol';
import { LineReader } from './lineBatch';
import { CaptureShare, CHUNK_FRAMES } from './captureShare';
import { reachedShareLimit } from './sharePipeline';
import { addCounts, replayTally } from '../replayTally';
import type { ReplayTally } from '../replayTally';
import type { TelemetryCounts } from '../../sinks/telemetry/telemetry';

export interface WorkerRunOptions {
  sysctl: Sysctl;
  workers: number;
  /** --notrack rules, as given (NAT rules need one thread: the two sides of a NAT'd flow hash apart). */
  notrack?: string[];
  /** --helper rules, as given (a data connection has its master's address pair, so its worker). */
  helper?: string[];
  /** --zone-from, --zone-map, --zone-default, as given. */
  zones?: ZoneFlags;
  onVerdictLine?(line: string): void;
  events?: 'text' | 'json';
  /** conntrack's filters and -e, as the command's option values (each worker builds the selector). */
  eventFilter?: Record<string, string | boolean>;
  onEventLine?(line: string): void;
  table?: boolean;
  /** Count verdicts, INVALID reasons and events (replay's summary): WorkerRunResult.tally. */
  tally?: boolean;
  /** Count what the metrics count: WorkerRunResult.telemetry. */
  telemetry?: boolean;
}

export interface WorkerRunResult {
  summary: ReadSummary;
  packets: number;
  stats: CtStats;
  untracked: number;
  count: number;
  /** The final table, oldest entry first (with `table`). */
  flows: FlowRecord[];
  /** Whether some worker reached its share of nf_conntrack_max or nf_conntrack_expect_max (see above). */
  limitReached: boolean;
  /** The shares' counts added up, with `tally`. */
  tally?: ReplayTally;
  /** Each share's metrics totals, with `telemetry`. */
  telemetry: TelemetryCounts[];
  /** The packet clock at the end. */
  clockUs: number;
}

/** How many packets share 0 (this thread) may read ahead of the slowest worker. */
const MAX_LEAD = 16 * CHUNK_FRAMES;

/**
 * Starts a worker script of this folder (by default captureWorker), from dist/ (JavaScript) or
 * from the TypeScript sources (tests).
 */
export function startWorker(task: object, script = 'captureWorker'): Worker {
  const ext = extname(__filename);
  const entry = join(__dirname, `${script}${ext}`);
  if (ext === '.js') return new Worker(entry, { workerData: task });
  const hook = join(__dirname, '..', '..', 'scripts', 'tsRequireHook.js');
  return new Worker(`require(${JSON.stringify(hook)}); require(${JSON.stringify(entry)});`, { eval: true, workerData: task });
}

/** One worker's verdict lines not yet handed out, in index order. */
interface VerdictQueue {
  index: Int32Array;
  lines: LineReader;
  at: number;
}

/** Merges the workers' chunks into single-engine order and hands lines out as soon as they are final. */
class OutputMerge {
  private readonly upTo: number[];
  /** Per worker, its chunks' verdicts waiting; each worker's come in rising index order. */
  private readonly verdicts: VerdictQueue[][];
  private nextVerdict = 0;
  private events: EventLine[] = [];

  constructor(workers: number, private readonly o: WorkerRunOptions) {
    this.upTo = new Array<number>(workers).fill(0);
    this.verdicts = Array.from({ length: workers }, () => []);
  }

  /** Packets share 0 has read beyond the slowest other share's last chunk. */
  get lead(): number {
    let slowest = Infinity;
    for (let k = 1; k < this.upTo.length; k++) slowest = Math.min(slowest, this.upTo[k]);
    return slowest === Infinity ? 0 : this.upTo[0] - slowest;
  }

  add(worker: number, chunk: WorkerChunk): void {
    this.upTo[worker] = chunk.upTo;
    if (chunk.verdictIndex.length > 0) this.verdicts[worker].push({ index: chunk.verdictIndex, lines: new LineReader(chunk.verdicts), at: 0 });
    const places = chunk.eventPlaces;
    if (places.length > 0) {
      const lines = new LineReader(chunk.events);
      for (let k = 0; k < places.length; k += EVENT_PLACE_FIELDS) {
        this.events.push({ index: places[k], phase: places[k + 1] as 0 | 1, tsUs: places[k + 2], id: places[k + 3], line: lines.next() });
      }
    }
    this.release(Math.min(...this.upTo));
  }

  /** Everything before packet `upTo` is known from every worker: out it goes. */
  private release(upTo: number): void {
    this.releaseVerdicts();
    if (this.events.length === 0) return;
    const ready = this.events.filter((e) => e.index < upTo);
    if (ready.length === 0) return;
    this.events = this.events.filter((e) => e.index >= upTo);
    // Stable sort: a worker's own events keep the order it emitted them in.
    ready.sort((a, b) => a.index - b.index || a.phase - b.phase || (a.phase === 0 ? a.tsUs - b.tsUs || a.id - b.id : 0));
    for (const e of ready) this.o.onEventLine?.(e.line);
  }

  /**
   * Every IP packet has one verdict, from the worker that owns it, and each worker's are in index
   * order: the next verdict is at the head of some worker's queue, or not here yet.
   */
  private releaseVerdicts(): void {
    const out = this.o.onVerdictLine;
    for (let moved = true; moved; ) {
      moved = false;
      for (const queue of this.verdicts) {
        while (queue.length > 0) {
          const q = queue[0];
          if (q.index[q.at] !== this.nextVerdict) break;
          const line = q.lines.next();
          out?.(line);
          this.nextVerdict++;
          moved = true;
          if (++q.at === q.index.length) queue.shift();
        }
      }
    }
  }

  finish(): void {
    this.release(Infinity);
    const left = this.verdicts.reduce((n, queue) => n + queue.reduce((m, q) => m + q.index.length - q.at, 0), 0);
    if (left > 0) throw new Error(`workers: ${left} verdict(s) after a gap at packet ${this.nextVerdict}`);
  }
}

/** The knobs of one share of N: its part of the table limits (see above), the rest as given. */
export function shareSysctl(sysctl: Sysctl, workers: number): Record<string, number> {
  // The expectation table is shared out the same way (nf_conntrack_expect_max).
  return { ...sysctl, nf_conntrack_max: Math.ceil(sysctl.nf_conntrack_max / workers), nf_conntrack_expect_max: Math.ceil(sysctl.nf_conntrack_expect_max / workers) };
}

/** Copies the capture once into memory every share reads (never copied per worker). */
export function sharedCapture(bytes: Uint8Array): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  return shared;
}

export async function runCaptureInWorkers(bytes: Uint8Array, o: WorkerRunOptions): Promise<WorkerRunResult> {
  openCapture(bytes); // a file that is no capture fails here, once, not in every worker
  const shared = sharedCapture(bytes);
  const sysctl = shareSysctl(o.sysctl, o.workers);
  const merge = new OutputMerge(o.workers, o);
  const results: WorkerDone[] = [];
  const task = (worker: number): CaptureWorkerTask => ({ capture: shared, worker, workers: o.workers, sysctl, verdicts: o.onVerdictLine !== undefined, events: o.events, table: o.table ?? false, tally: o.tally ?? false, telemetry: o.telemetry, notrack: o.notrack ?? [], helper: o.helper ?? [], zones: o.zones ?? {}, eventFilter: o.eventFilter });
  // Shares 1..N-1 in worker threads; share 0 in this thread (see captureShare.ts).
  const workers = Array.from({ length: o.workers - 1 }, (_, k) => startWorker(task(k + 1)));
  let failed: Error | undefined;
  // Share 0 waits for the workers when it is MAX_LEAD packets ahead: its lines are held until
  // theirs come, and a share that starts warm (no thread to start) would otherwise keep nearly
  // all of its lines in this thread's heap. (A bound on memory: no CPU difference was measurable.)
  let wake: (() => void) | undefined;
  const woken = (): void => {
    wake?.();
    wake = undefined;
  };
  const threads = Promise.all(
    workers.map(
      (w, k) =>
        new Promise<void>((resolve, reject) => {
          const index = k + 1;
          w.on('message', (m: WorkerMessage) => {
            if (m.kind === 'chunk') merge.add(index, m);
            else results[index] = m;
            woken();
          });
          w.once('error', reject);
          w.once('exit', (code) => (code === 0 && results[index] ? resolve() : reject(new Error(`worker ${index} exited with code ${code}`))));
        }),
    ),
  ).catch((err: Error) => {
    failed ??= err;
    woken();
  });
  try {
    const own = new CaptureShare(task(0), bytes, true);
    while (!own.done) {
      if (failed) throw failed;
      if (merge.lead > MAX_LEAD && results.length < o.workers) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      merge.add(0, own.step());
      // Lets the workers' chunks in (their messages are delivered between two of these steps).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    results[0] = own.result();
    await threads;
    if (failed) throw failed;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  merge.finish();
  const stats = emptyStats();
  for (const r of results) for (const k of Object.keys(stats) as Array<keyof CtStats>) stats[k] += r.stats[k];
  const flows = results.flatMap((r) => r.flows ?? []).sort((a, b) => a.id - b.id);
  let tally: ReplayTally | undefined;
  if (o.tally) {
    tally = replayTally();
    for (const r of results) if (r.tally) addCounts(tally, r.tally);
  }
  return {
    summary: results[0].summary,
    packets: results[0].packets,
    stats,
    untracked: results.reduce((n, r) => n + r.untracked, 0),
    count: results.reduce((n, r) => n + r.count, 0),
    flows,
    limitReached: reachedShareLimit(stats, results.reduce((n, r) => n + r.expectTableFull, 0)),
    tally,
    telemetry: results.flatMap((r) => (r.telemetry ? [r.telemetry] : [])),
    clockUs: results[0].clockUs,
  };
}
