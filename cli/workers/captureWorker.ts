/**
 * A capture worker thread (see protocol.ts): reads every packet of the shared capture, pushes the
 * ones it owns through its own ConntrackPipeline and ticks the clock for the rest, and posts its
 * formatted output in chunks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readPackets } from '../../ingest/packetSource';
import type { FlowEvent } from '../../processors/flow';
import { flowKeyOf } from '../../processors/conntrack/engine';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { ConntrackPipeline } from '../../processors/pipeline';
import { formatEvent } from '../../sinks/conntrackText';
import { eventJson, verdictJson } from '../../sinks/jsonRecords';
import { parseRuleOptions } from '../rules';
import { captureZoneOf } from '../zoneOptions';
import { eventSelector } from '../filterOptions';
import type { CaptureWorkerTask, EventLine, WorkerChunk, WorkerDone } from './protocol';

/** Packets read between two chunks. */
const CHUNK_PACKETS = 16384;

function run(task: CaptureWorkerTask): void {
  const sysctl = makeSysctl(task.sysctl);
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  let chunk: WorkerChunk = { kind: 'chunk', upTo: 0, verdicts: [], events: [] };
  let current = 0;
  let expectTableFull = 0;
  const zoneOf = captureZoneOf(task.zones);
  const selected = task.eventFilter ? eventSelector(task.eventFilter) : undefined;
  const pipeline = new ConntrackPipeline(
    {
      verdict: (v) => {
        if (v.reason?.endsWith('_expectation_table_full')) expectTableFull++;
        if (task.verdicts) chunk.verdicts.push([v.index, JSON.stringify(verdictJson(v))]);
      },
      event: (e: FlowEvent) => {
        if (!task.events || (selected && !selected(e))) return;
        const line = task.events === 'json' ? JSON.stringify(eventJson(e)) : formatEvent(e, text);
        // An engine event caused by no packet is an expiry found while the clock moved.
        const ev: EventLine = { index: current, phase: e.packetIndex === undefined ? 0 : 1, tsUs: e.tsUs, id: e.flow.id, line };
        chunk.events.push(ev);
      },
    },
    { sysctl, shards: 1, rules: parseRuleOptions({ notrack: task.notrack, helper: task.helper }), zoneOf },
  );
  const stream = readPackets(new Uint8Array(task.capture));
  let packets = 0;
  for (const p of stream) {
    current = p.index;
    if (flowKeyOf(p.ip, zoneOf ? zoneOf(p) : 0) % task.workers === task.worker) pipeline.push(p);
    else pipeline.tick(p.index, p.tsUs);
    packets++;
    if (packets % CHUNK_PACKETS === 0) {
      chunk.upTo = p.index + 1;
      parentPort!.postMessage(chunk);
      chunk = { kind: 'chunk', upTo: 0, verdicts: [], events: [] };
    }
  }
  current = packets;
  pipeline.end();
  chunk.upTo = packets;
  parentPort!.postMessage(chunk);
  const engine = pipeline.engine;
  const done: WorkerDone = { kind: 'done', summary: stream.summary, packets, stats: engine.stats(), untracked: engine.untracked, expectTableFull, count: engine.count };
  if (task.table) done.flows = engine.list();
  parentPort!.postMessage(done);
}

run(workerData as CaptureWorkerTask);
