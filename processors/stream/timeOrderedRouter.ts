/**
 * TimeOrderedRouter: the ordering half of repartitioning. Items (frames or packet events) read
 * from several input partitions are released to their target partitions in packet-time order:
 * conntrack judges a SYN-ACK differently if it comes before its SYN, so a re-keyed flow must not
 * have its directions concatenated partition by partition. An item is released once every input
 * partition still delivering has reached its time (a watermark); a partition that is finished,
 * or idle in live mode, stops holding the others back. It also says, per input partition, up to
 * which message everything has been released: the offset that may be committed.
 */
export interface RoutedItem<T> {
  tsUs: number;
  target: number;
  payload: T;
}

interface Pending<T> {
  offset: bigint;
  items: RoutedItem<T>[];
  /** Items of this message not yet released. */
  left: number;
}

interface InputQueue<T> {
  messages: Pending<T>[];
  /** Index of the first message with unreleased items, and of the next item in it. */
  head: number;
  item: number;
  clockUs: number;
  holding: boolean;
  nextOffset: bigint;
}

export class TimeOrderedRouter<T> {
  private readonly inputs = new Map<number, InputQueue<T>>();

  private queue(partition: number): InputQueue<T> {
    let q = this.inputs.get(partition);
    if (!q) this.inputs.set(partition, (q = { messages: [], head: 0, item: 0, clockUs: -Infinity, holding: true, nextOffset: -1n }));
    return q;
  }

  /** Registers a partition that will deliver: it holds the watermark until its first items arrive. */
  expect(partition: number): void {
    this.queue(partition);
  }

  /** Adds one input message's items (in their order); a message with none is releasable at once. */
  add(partition: number, offset: bigint, items: RoutedItem<T>[]): void {
    const q = this.queue(partition);
    q.messages.push({ offset, items, left: items.length });
    q.nextOffset = offset + 1n;
    for (const it of items) if (it.tsUs > q.clockUs) q.clockUs = it.tsUs;
    q.holding = true;
  }

  /** The partition will deliver nothing more for now (finished, or idle in live mode): it no longer holds the watermark. */
  release(partition: number): void {
    this.queue(partition).holding = false;
  }

  /** Items due (at or before the watermark) in time order; ties by input partition. */
  due(): RoutedItem<T>[] {
    let watermark = Infinity;
    for (const q of this.inputs.values()) if (q.holding) watermark = Math.min(watermark, q.clockUs);
    const out: RoutedItem<T>[] = [];
    for (;;) {
      let best: InputQueue<T> | undefined;
      let bestTs = Infinity;
      for (const q of this.inputs.values()) {
        this.skipEmpty(q);
        if (q.head >= q.messages.length) continue;
        const ts = q.messages[q.head].items[q.item].tsUs;
        if (ts < bestTs) {
          bestTs = ts;
          best = q;
        }
      }
      if (!best || bestTs > watermark) break;
      const m = best.messages[best.head];
      out.push(m.items[best.item]);
      m.left--;
      best.item++;
    }
    return out;
  }

  /** Per input partition, the offset whose earlier messages are fully released (what may be committed). */
  committable(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [p, q] of this.inputs) {
      this.skipEmpty(q);
      const off = q.head < q.messages.length ? q.messages[q.head].offset : q.nextOffset;
      if (off >= 0n) out.set(p, off.toString());
      if (q.head > 1024) {
        q.messages.splice(0, q.head);
        q.head = 0;
      }
    }
    return out;
  }

  /** Items waiting, summed over inputs (for pausing a partition that runs far ahead). */
  waiting(partition: number): number {
    const q = this.inputs.get(partition);
    if (!q) return 0;
    let n = 0;
    for (let i = q.head; i < q.messages.length; i++) n += q.messages[i].left;
    return n;
  }

  private skipEmpty(q: InputQueue<T>): void {
    while (q.head < q.messages.length && q.item >= q.messages[q.head].items.length) {
      q.head++;
      q.item = 0;
    }
  }
}
