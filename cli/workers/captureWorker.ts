/**
 * A capture worker thread (see protocol.ts): reads every frame of the shared capture, decodes and
 * pushes the packets it owns through its own ConntrackPipeline and only ticks the clock for the
 * rest (ownedPackets.ts), and posts its formatted output in chunks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FlowEvent } from '../../processors/flow';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { ConntrackPipeline } from '../../processors/pipeline';
import { formatEvent } from '../../sinks/conntrackText';
import { eventJson, verdictJson } from '../../sinks/jsonRecords';
import { parseRuleOptions } from '../rules';
import { captureZoneOf } from '../zoneOptions';
import { eventSelector } from '../filterOptions';
import type { CaptureWorkerTask, WorkerChunk, WorkerDone } from './protocol';
import { LineWriter, transferOf } from './lineBatch';
import { readOwnedPackets } from './ownedPackets';

/** Packets read between two chunks (fewer lines held at a time measured a little cheaper than 16384). */
const CHUNK_PACKETS = 4096;

function run(task: CaptureWorkerTask): void {
  const sysctl = makeSysctl(task.sysctl);
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  const verdictLines = new LineWriter();
  let verdictIndex: number[] = [];
  const eventLines = new LineWriter();
  let eventPlaces: number[] = [];
  const post = (upTo: number): void => {
    const chunk: WorkerChunk = { kind: 'chunk', upTo, verdictIndex: Int32Array.from(verdictIndex), verdicts: verdictLines.take(), eventPlaces: Float64Array.from(eventPlaces), events: eventLines.take() };
    parentPort!.postMessage(chunk, [chunk.verdictIndex.buffer as ArrayBuffer, chunk.eventPlaces.buffer as ArrayBuffer, ...transferOf(chunk.verdicts), ...transferOf(chunk.events)]);
    verdictIndex = [];
    eventPlaces = [];
  };
  let current = 0;
  let expectTableFull = 0;
  const zoneOf = captureZoneOf(task.zones);
  const selected = task.eventFilter ? eventSelector(task.eventFilter) : undefined;
  const pipeline = new ConntrackPipeline(
    {
      verdict: (v) => {
        if (v.reason?.endsWith('_expectation_table_full')) expectTableFull++;
        if (task.verdicts) {
          verdictIndex.push(v.index);
          verdictLines.add(JSON.stringify(verdictJson(v)));
        }
      },
      event: (e: FlowEvent) => {
        if (!task.events || (selected && !selected(e))) return;
        eventLines.add(task.events === 'json' ? JSON.stringify(eventJson(e)) : formatEvent(e, text));
        // An engine event caused by no packet is an expiry found while the clock moved.
        eventPlaces.push(current, e.packetIndex === undefined ? 0 : 1, e.tsUs, e.flow.id);
      },
    },
    { sysctl, shards: 1, rules: parseRuleOptions({ notrack: task.notrack, helper: task.helper }), zoneOf },
  );
  let packets = 0;
  const afterPacket = (index: number): void => {
    packets++;
    if (packets % CHUNK_PACKETS === 0) post(index + 1);
  };
  const summary = readOwnedPackets(new Uint8Array(task.capture), { worker: task.worker, workers: task.workers, zoneOf }, {
    own(p) {
      current = p.index;
      pipeline.push(p);
      afterPacket(p.index);
    },
    foreign(index, tsUs) {
      current = index;
      pipeline.tick(index, tsUs);
      afterPacket(index);
    },
  });
  current = packets;
  pipeline.end();
  post(packets);
  const engine = pipeline.engine;
  const done: WorkerDone = { kind: 'done', summary, packets, stats: engine.stats(), untracked: engine.untracked, expectTableFull, count: engine.count };
  if (task.table) done.flows = engine.list();
  parentPort!.postMessage(done);
}

run(workerData as CaptureWorkerTask);
