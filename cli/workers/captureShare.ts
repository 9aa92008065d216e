/**
 * One share of a capture run split over N (see protocol.ts): this share's packets decoded and
 * pushed through its own ConntrackPipeline, the others' only ticking its clock (ownedPackets.ts),
 * its output formatted and cut into chunks. A worker thread runs one share to the end; the main
 * thread runs share 0 itself a chunk at a time between merging the others' chunks, since on a
 * machine with as many cores as shares a thread that only merged would leave its core idle while
 * costing one more isolate to start and warm up.
 */
import type { FlowEvent } from '../../processors/flow';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { ConntrackPipeline } from '../../processors/pipeline';
import { formatEvent } from '../../sinks/conntrackText';
import { eventJson, verdictJson } from '../../sinks/jsonRecords';
import { parseRuleOptions } from '../rules';
import { captureZoneOf } from '../zoneOptions';
import { eventSelector } from '../filterOptions';
import type { CaptureWorkerTask, WorkerChunk, WorkerDone } from './protocol';
import { LineWriter } from './lineBatch';
import { OwnedPacketReader } from './ownedPackets';
import { plainCounts, replayTally } from '../replayTally';

/** Frames read per chunk (fewer lines held at a time measured a little cheaper than 16384). */
export const CHUNK_FRAMES = 4096;

export class CaptureShare {
  private readonly reader: OwnedPacketReader;
  private readonly pipeline: ConntrackPipeline;
  private readonly verdictLines: LineWriter;
  private verdictIndex: number[] = [];
  private readonly eventLines: LineWriter;
  private eventPlaces: number[] = [];
  /** The packet being read: events are placed at it. */
  private current = 0;
  private expectTableFull = 0;
  private finished = false;
  private readonly tally = replayTally();

  /** `inThread`: the chunks stay in this thread, so lines are kept as strings (see LineWriter). */
  constructor(private readonly task: CaptureWorkerTask, bytes: Uint8Array, inThread = false) {
    const sysctl = makeSysctl(task.sysctl);
    const text = { acct: sysctl.nf_conntrack_acct !== 0 };
    this.verdictLines = new LineWriter(inThread);
    this.eventLines = new LineWriter(inThread);
    const zoneOf = captureZoneOf(task.zones);
    const selected = task.eventFilter ? eventSelector(task.eventFilter) : undefined;
    this.pipeline = new ConntrackPipeline(
      {
        verdict: (v) => {
          if (v.reason?.endsWith('_expectation_table_full')) this.expectTableFull++;
          if (task.tally) this.tally.onVerdict(v);
          if (task.verdicts) {
            this.verdictIndex.push(v.index);
            this.verdictLines.add(JSON.stringify(verdictJson(v)));
          }
        },
        event: (e: FlowEvent) => {
          if (task.tally) this.tally.onEvent(e);
          if (!task.events || (selected && !selected(e))) return;
          this.eventLines.add(task.events === 'json' ? JSON.stringify(eventJson(e)) : formatEvent(e, text));
          // An engine event caused by no packet is an expiry found while the clock moved.
          this.eventPlaces.push(this.current, e.packetIndex === undefined ? 0 : 1, e.tsUs, e.flow.id);
        },
      },
      { sysctl, shards: 1, rules: parseRuleOptions({ notrack: task.notrack, helper: task.helper }), zoneOf },
    );
    const pipeline = this.pipeline;
    this.reader = new OwnedPacketReader(bytes, { worker: task.worker, workers: task.workers, zoneOf }, {
      own: (p) => {
        this.current = p.index;
        pipeline.push(p);
      },
      foreign: (index, tsUs) => {
        this.current = index;
        pipeline.tick(index, tsUs);
      },
    });
  }

  get done(): boolean {
    return this.finished;
  }

  /** Reads CHUNK_FRAMES more frames (the last chunk ends the pipeline) and returns their output. */
  step(): WorkerChunk {
    const packets = this.reader.summary;
    if (!this.reader.read(CHUNK_FRAMES) && !this.finished) {
      this.current = packets.ipPackets;
      this.pipeline.end();
      this.finished = true;
    }
    // Every packet before ipPackets has been pushed or ticked: its events are all out.
    const chunk: WorkerChunk = { kind: 'chunk', upTo: packets.ipPackets, verdictIndex: Int32Array.from(this.verdictIndex), verdicts: this.verdictLines.take(), eventPlaces: Float64Array.from(this.eventPlaces), events: this.eventLines.take() };
    this.verdictIndex = [];
    this.eventPlaces = [];
    return chunk;
  }

  /** After the last step: the counters, and the table when asked for. */
  result(): WorkerDone {
    const engine = this.pipeline.engine;
    const summary = this.reader.summary;
    const done: WorkerDone = { kind: 'done', summary, packets: summary.ipPackets, stats: engine.stats(), untracked: engine.untracked, expectTableFull: this.expectTableFull, count: engine.count };
    if (this.task.table) done.flows = engine.list();
    if (this.task.tally) done.tally = plainCounts(this.tally);
    return done;
  }
}
