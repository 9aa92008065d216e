/**
 * The state changelog's property (stateChangelog.test.ts): runs a processor over a list of
 * operations, and compares one run with runs cut by restores from the changelog.
 */
import { PartitionProcessor } from '../../../processors/stream/partitionProcessor';
import type { PartitionOutput, PartitionProcessorOptions, ZonedPacket } from '../../../processors/stream/partitionProcessor';
import { compact } from '../../../processors/stream/stateChangelog';
import type { ChangelogState, StateRecord } from '../../../processors/stream/stateChangelog';

/** A packet for push(), or an idle partition's clock moving (advanceTo). */
export type Op = { packet: ZonedPacket } | { advanceTo: number };

export interface RunOutput extends PartitionOutput {
  /** oldestOpenPacket() after each operation: the commit bound must survive a restore too. */
  oldest: number[];
  final?: unknown;
}

const empty = (): RunOutput => ({ events: [], verdicts: [], records: [], invalid: [], oldest: [] });

export function runOps(proc: PartitionProcessor, ops: readonly Op[], out: RunOutput = empty()): RunOutput {
  for (const op of ops) {
    if ('packet' in op) proc.push(op.packet);
    else proc.advanceTo(op.advanceTo);
    const o = proc.drain();
    out.events.push(...o.events);
    out.verdicts.push(...o.verdicts);
    out.records.push(...o.records);
    out.invalid.push(...o.invalid);
    out.oldest.push(proc.oldestOpenPacket());
  }
  return out;
}

/** The end of input, and everything the processor shows of its state at the end. */
function finish(proc: PartitionProcessor, out: RunOutput): RunOutput {
  proc.end();
  runOps(proc, [], out);
  const o = proc.drain();
  out.verdicts.push(...o.verdicts);
  out.invalid.push(...o.invalid);
  const e = proc.engine;
  out.final = { list: e.list(), stats: e.stats(), untracked: e.untracked, expectations: e.expectations(), packets: proc.packets, openFlows: proc.openFlows, oldest: proc.oldestOpenPacket(), clock: e.clockUs, count: e.count };
  return out;
}

/**
 * One processor over all `ops`, against one that runs them in `batches` (sizes), writes its
 * changes after each batch, and is replaced at each batch boundary in `cuts` by a processor
 * restored from everything written so far (the log itself, or its compacted map). Returns the log for further checks.
 */
export function expectSameAcrossCuts(opts: PartitionProcessorOptions, ops: readonly Op[], batches: readonly number[], cuts: readonly number[]): StateRecord[] {
  const a = new PartitionProcessor(opts);
  const expected = finish(a, runOps(a, ops));
  const tracked = { ...opts, trackState: true };
  const log: StateRecord[] = [];
  let proc = new PartitionProcessor(tracked);
  const out = empty();
  let pos = 0;
  for (let k = 0; k <= batches.length; k++) {
    // Restored from the log as written, from its compacted map (what the Kafka state store hands
    // over), or from the processor's own snapshot (a local checkpoint's content), cut by cut.
    const from = (): ChangelogState => (k % 3 === 0 ? log : k % 3 === 1 ? compact(log) : proc.stateSnapshot()!);
    for (const c of cuts) if (c === k) proc = PartitionProcessor.restore(tracked, from());
    if (k === batches.length) break;
    runOps(proc, ops.slice(pos, pos + batches[k]), out);
    pos += batches[k];
    log.push(...proc.stateChanges());
    // Once its changes are written, the processor's own snapshot holds the compacted log's keys
    // (values may differ in the hash-chain links a restore rebuilds, which no change marks).
    expect([...proc.stateSnapshot()!.keys()].sort()).toEqual([...compact(log).keys()].sort());
  }
  expect(pos).toBe(ops.length);
  finish(proc, out);
  expect(out).toEqual(expected);
  return log;
}
