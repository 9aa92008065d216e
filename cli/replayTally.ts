/**
 * What a replay counts for its summary: verdicts by ctstate, INVALID reasons, events by type. A
 * share of a `--workers` run counts its own packets and events; the shares' counts add up to one
 * engine's, since every packet and every event belongs to exactly one share.
 */
import type { FlowEvent } from '../processors/flow';
import type { PacketVerdict } from '../processors/pipeline';

/** The counts as plain data (what a worker thread sends back). */
export interface ReplayCounts {
  counts: Record<string, number>;
  reasons: Array<[string, number]>;
  eventCounts: Record<string, number>;
}

export interface ReplayTally {
  counts: Record<string, number>;
  reasons: Map<string, number>;
  eventCounts: Record<string, number>;
  onVerdict(v: PacketVerdict): void;
  onEvent(e: FlowEvent): void;
}

export function replayTally(): ReplayTally {
  const counts: Record<string, number> = { NEW: 0, ESTABLISHED: 0, RELATED: 0, INVALID: 0, UNTRACKED: 0 };
  const reasons = new Map<string, number>();
  const eventCounts: Record<string, number> = { NEW: 0, UPDATE: 0, DESTROY: 0 };
  return {
    counts,
    reasons,
    eventCounts,
    onVerdict: (v) => {
      counts[v.ctstate]++;
      if (v.ctstate === 'INVALID' && v.reason) reasons.set(v.reason, (reasons.get(v.reason) ?? 0) + 1);
    },
    onEvent: (e) => eventCounts[e.type]++,
  };
}

export function plainCounts(t: ReplayTally): ReplayCounts {
  return { counts: t.counts, reasons: [...t.reasons], eventCounts: t.eventCounts };
}

/** Adds a share's counts into `into`. */
export function addCounts(into: ReplayTally, c: ReplayCounts): void {
  for (const [k, n] of Object.entries(c.counts)) into.counts[k] = (into.counts[k] ?? 0) + n;
  for (const [k, n] of c.reasons) into.reasons.set(k, (into.reasons.get(k) ?? 0) + n);
  for (const [k, n] of Object.entries(c.eventCounts)) into.eventCounts[k] = (into.eventCounts[k] ?? 0) + n;
}

/** INVALID reasons, most frequent first, then by name: the same order however the counts were gathered. */
export function reasonsByCount(reasons: ReadonlyMap<string, number>): Array<[string, number]> {
  return [...reasons].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
