/**
 * Puts the events of several partitions back into one event-time order, so that a replayed topic
 * prints its transitions in a single deterministic sequence, whatever order the partitions were
 * fetched in. An event is released once every partition still running has reached its time (a
 * watermark, as stream processors merge partitions); ties go by partition, then by arrival.
 */
export class EventTimeMerge<T extends { tsUs: number }> {
  private readonly clocks = new Map<number, number>();
  private held: Array<{ item: T; partition: number; seq: number }> = [];
  private seq = 0;

  /** `partitions`: every partition that will deliver; each holds the merge back until it reports. */
  constructor(partitions: Iterable<number>) {
    for (const p of partitions) this.clocks.set(p, -Infinity);
  }

  /** Adds a partition's items and says how far its clock has come; returns what may be released. */
  push(partition: number, items: readonly T[], clockUs: number): T[] {
    for (const item of items) this.held.push({ item, partition, seq: this.seq++ });
    if (this.clocks.has(partition)) this.clocks.set(partition, Math.max(this.clocks.get(partition) ?? -Infinity, clockUs));
    return this.release();
  }

  /** The partition delivers nothing more. */
  finish(partition: number): T[] {
    this.clocks.delete(partition);
    return this.release();
  }

  /** Everything held, in order (end of input). */
  drain(): T[] {
    this.clocks.clear();
    return this.release();
  }

  private release(): T[] {
    let watermark = Infinity;
    for (const c of this.clocks.values()) watermark = Math.min(watermark, c);
    if (this.held.length === 0) return [];
    this.held.sort((a, b) => a.item.tsUs - b.item.tsUs || a.partition - b.partition || a.seq - b.seq);
    let n = 0;
    while (n < this.held.length && this.held[n].item.tsUs <= watermark) n++;
    if (n === 0) return [];
    const out = this.held.slice(0, n).map((h) => h.item);
    this.held = this.held.slice(n);
    return out;
  }
}
