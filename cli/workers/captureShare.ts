/**
 * One share of a capture run split over N (see protocol.ts): the share's engine (sharePipeline.ts),
 * its output formatted and cut into chunks. A worker thread runs one share to the end; the main
 * thread runs share 0 itself a chunk at a time between merging the others' chunks, since on a
 * machine with as many cores as shares a thread that only merged would leave its core idle while
 * costing one more isolate to start and warm up.
 */
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { formatEvent } from '../../sinks/conntrackText';
import { eventJson, verdictJson } from '../../sinks/jsonRecords';
import { eventSelector } from '../filterOptions';
import type { CaptureWorkerTask, WorkerChunk, WorkerDone } from './protocol';
import { LineWriter } from './lineBatch';
import { SharePipeline } from './sharePipeline';
import { plainCounts, replayTally } from '../replayTally';
import { captureZoneOf } from '../zoneOptions';
import { ShareTelemetry } from './shareTelemetry';

/** Frames read per chunk (fewer lines held at a time measured a little cheaper than 16384). */
export const CHUNK_FRAMES = 4096;

export class CaptureShare {
  private readonly share: SharePipeline;
  private readonly verdictLines: LineWriter;
  private verdictIndex: number[] = [];
  private readonly eventLines: LineWriter;
  private eventPlaces: number[] = [];
  private readonly tally = replayTally();
  private readonly telemetry?: ShareTelemetry;

  /** `inThread`: the chunks stay in this thread, so lines are kept as strings (see LineWriter). */
  constructor(private readonly task: CaptureWorkerTask, bytes: Uint8Array, inThread = false) {
    const text = { acct: makeSysctl(task.sysctl).nf_conntrack_acct !== 0 };
    this.verdictLines = new LineWriter(inThread);
    this.eventLines = new LineWriter(inThread);
    const selected = task.eventFilter ? eventSelector(task.eventFilter) : undefined;
    const telemetry = task.telemetry ? new ShareTelemetry(captureZoneOf(task.zones)) : undefined;
    this.telemetry = telemetry;
    this.share = new SharePipeline(bytes, task, task.sysctl, {
      own: telemetry && ((p) => telemetry.own(p)),
      verdict: (v) => {
        if (task.tally) this.tally.onVerdict(v);
        telemetry?.verdict(v);
        if (task.verdicts) {
          this.verdictIndex.push(v.index);
          this.verdictLines.add(JSON.stringify(verdictJson(v)));
        }
      },
      event: (e, index, phase) => {
        if (task.tally) this.tally.onEvent(e);
        telemetry?.event(e);
        if (!task.events || (selected && !selected(e))) return;
        this.eventLines.add(task.events === 'json' ? JSON.stringify(eventJson(e)) : formatEvent(e, text));
        this.eventPlaces.push(index, phase, e.tsUs, e.flow.id);
      },
    });
  }

  get done(): boolean {
    return this.share.done;
  }

  /** Reads CHUNK_FRAMES more frames (the last chunk ends the pipeline) and returns their output. */
  step(): WorkerChunk {
    this.share.read(CHUNK_FRAMES);
    // Every packet before ipPackets has been pushed or ticked: its events are all out.
    const chunk: WorkerChunk = { kind: 'chunk', upTo: this.share.summary.ipPackets, verdictIndex: Int32Array.from(this.verdictIndex), verdicts: this.verdictLines.take(), eventPlaces: Float64Array.from(this.eventPlaces), events: this.eventLines.take() };
    this.verdictIndex = [];
    this.eventPlaces = [];
    return chunk;
  }

  /** After the last step: the counters, and the table when asked for. */
  result(): WorkerDone {
    const engine = this.share.engine;
    const summary = this.share.summary;
    const done: WorkerDone = { kind: 'done', summary, packets: summary.ipPackets, stats: engine.stats(), untracked: engine.untracked, expectTableFull: this.share.expectTableFull, count: engine.count, clockUs: engine.clockUs };
    if (this.task.table) done.flows = engine.list();
    if (this.task.tally) done.tally = plainCounts(this.tally);
    if (this.telemetry) done.telemetry = this.telemetry.counts();
    return done;
  }
}
