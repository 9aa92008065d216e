/**
 * whatif with --workers: each share replays the capture twice (the default knobs, the changed
 * ones) over the packets it owns and returns what changed: its packets whose verdict changes, its
 * flows whose fate changes, each flow with where it first appeared in each run. Every packet and
 * every flow belongs to one share, so the main thread only has to put the pieces in the order one
 * thread lists them (cli/whatif.ts): packets by index, flows by their place in one engine's output.
 */
import type { PacketVerdict } from '../../processors/pipeline';
import type { ReadSummary } from '../../ingest/packetSource';
import { comparePlaces, FateRecorder, fateChanges, verdictChange } from '../whatif';
import type { FlowChange, PlacedFlowChange, VerdictChange } from '../whatif';
import { replayShare } from './shareReplay';
import type { ShareSetup } from './shareReplay';

export interface WhatIfShareJob {
  job: 'whatif';
  /** The two runs' knobs, already shared out (shareSysctl). */
  base: Record<string, number>;
  changed: Record<string, number>;
}

export interface WhatIfShareResult {
  summary: ReadSummary;
  /** Verdicts this share gave in each run (one per packet it owns). */
  verdicts: number;
  verdictChanges: VerdictChange[];
  flowChanges: PlacedFlowChange[];
  limitReached: boolean;
}

export function whatIfShare(bytes: Uint8Array, setup: ShareSetup, job: WhatIfShareJob): WhatIfShareResult {
  const before: PacketVerdict[] = [];
  const a = new FateRecorder();
  const ra = replayShare(bytes, setup, job.base, { verdict: (v) => before.push(v), event: (e, index, phase) => a.event(e, index, phase) });
  a.table(ra.engine.list());
  // The second run judges the same packets (which share owns a packet does not depend on the
  // knobs), and a pipeline lets verdicts out in packet order: the k-th verdict of each run is
  // on the same packet.
  const verdictChanges: VerdictChange[] = [];
  let k = 0;
  const b = new FateRecorder();
  const rb = replayShare(bytes, setup, job.changed, {
    verdict: (v) => {
      const x = before[k++];
      if (x?.index !== v.index) throw new Error(`whatif share ${setup.worker}: packet ${v.index} judged in the second run only`);
      const c = verdictChange(x, v);
      if (c) verdictChanges.push(c);
    },
    event: (e, index, phase) => b.event(e, index, phase),
  });
  if (k !== before.length) throw new Error(`whatif share ${setup.worker}: ${before.length - k} packet(s) judged in the first run only`);
  b.table(rb.engine.list());
  return { summary: ra.summary, verdicts: before.length, verdictChanges, flowChanges: fateChanges(a, b), limitReached: ra.limitReached || rb.limitReached };
}

/**
 * The shares' changes in one thread's order: packets by index; flows of the first run by where
 * they first appeared in it, then flows only the second run had, by where they appeared there.
 */
export function mergeWhatIf(results: readonly WhatIfShareResult[]): { packets: number; verdictChanges: VerdictChange[]; flowChanges: FlowChange[]; limitReached: boolean } {
  const verdictChanges = results.flatMap((r) => r.verdictChanges).sort((x, y) => x.i - y.i);
  const flows = results.flatMap((r) => r.flowChanges);
  const inFirst = flows.filter((c) => c.placeBefore !== undefined).sort((x, y) => comparePlaces(x.placeBefore!, y.placeBefore!));
  const secondOnly = flows.filter((c) => c.placeBefore === undefined).sort((x, y) => comparePlaces(x.placeAfter!, y.placeAfter!));
  return {
    packets: results.reduce((n, r) => n + r.verdicts, 0),
    verdictChanges,
    flowChanges: [...inFirst, ...secondOnly].map(({ flow, before, after }) => ({ flow, before, after })),
    limitReached: results.some((r) => r.limitReached),
  };
}
