/**
 * The N largest flows by bytes (both directions), picked in one pass with a heap of N, so a
 * table of a million entries costs O(entries * log N) and memory for N flows only.
 */
import type { FlowRecord } from '../../processors/flow';

export interface RankedFlow {
  partition: number;
  flow: FlowRecord;
  bytes: number;
  packets: number;
}

export function flowBytes(f: FlowRecord): number {
  return f.counters.orig.bytes + f.counters.reply.bytes;
}

export function flowPackets(f: FlowRecord): number {
  return f.counters.orig.packets + f.counters.reply.packets;
}

/** a ranks below b: fewer bytes, or as many and a later flow (older flows win ties, so the pick is stable). */
function below(a: RankedFlow, b: RankedFlow): boolean {
  if (a.bytes !== b.bytes) return a.bytes < b.bytes;
  if (a.flow.id !== b.flow.id) return a.flow.id > b.flow.id;
  return a.partition > b.partition;
}

/** Keeps the n highest-ranked flows offered; take() returns them biggest first. */
export class TopFlows {
  /** A min-heap: the weakest kept flow at the root, the one a better flow replaces. */
  private readonly heap: RankedFlow[] = [];

  constructor(private readonly n: number) {}

  offer(partition: number, flow: FlowRecord): void {
    if (this.n <= 0) return;
    const r: RankedFlow = { partition, flow, bytes: flowBytes(flow), packets: flowPackets(flow) };
    const h = this.heap;
    if (h.length < this.n) {
      h.push(r);
      this.up(h.length - 1);
    } else if (below(h[0], r)) {
      h[0] = r;
      this.down(0);
    }
  }

  take(): RankedFlow[] {
    return [...this.heap].sort((a, b) => (below(a, b) ? 1 : below(b, a) ? -1 : 0));
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!below(h[i], h[parent])) return;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && below(h[l], h[m])) m = l;
      if (r < h.length && below(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
