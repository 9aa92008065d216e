/**
 * EarlyDropOrder: finds the oldest entry early_drop may evict without walking the table. When
 * the table is full, ctflow evicts the oldest entry that is not ASSURED, or is ASSURED but
 * closing (the kernel evicts such entries from the new tuple's hash buckets, whose order depends
 * on a random seed; ctflow picks by age so a replay is deterministic). Walking the table from its
 * oldest entry would pass every long-lived ASSURED connection on each new packet of a SYN flood:
 * a thousand established flows made every flood packet a thousand steps.
 *
 * Candidates are (slot, id) pairs. Entries join in creation order when confirmed, so that list
 * is sorted by id and is a plain queue; an ASSURED entry that later becomes droppable again (a
 * TCP connection closing) joins a small heap by id. Candidates are checked when they reach the
 * front: one whose slot changed hands, or that is ASSURED and not closing, is discarded (it joins
 * again if it becomes droppable). The queue is compacted when stale candidates outnumber live
 * entries, so its size stays proportional to the table.
 */
import type { ConnStore } from './store';
import { LIFE_CONFIRMED } from './store';

export class EarlyDropOrder {
  /** The queue, in typed arrays (8 bytes a candidate: memory per flow is a target): [head, tail). */
  private queueSlots = new Int32Array(1024);
  private queueIds = new Uint32Array(1024);
  private head = 0;
  private tail = 0;
  /** The re-joined candidates, a binary min-heap on id (ids and slots side by side). */
  private readonly heapIds: number[] = [];
  private readonly heapSlots: number[] = [];
  /**
   * The ids in the heap: an entry joins it once however often its state changes while it is
   * droppable (without this, one connection bouncing between closing states filled the heap
   * with copies of itself that compaction could not remove, and every push compacted).
   */
  private readonly inHeap = new Set<number>();

  /**
   * @param droppable whether a live entry may be evicted now (not ASSURED, or closing).
   */
  constructor(private readonly store: ConnStore, private readonly droppable: (slot: number) => boolean) {}

  /** Candidates held, stale ones included (what compaction bounds; for tests and diagnostics). */
  get size(): number {
    return this.tail - this.head + this.heapIds.length;
  }

  /** A newly confirmed entry: the youngest of all, so it goes to the back of the queue. */
  added(slot: number): void {
    if (this.tail === this.queueSlots.length) this.makeRoom();
    this.queueSlots[this.tail] = slot;
    this.queueIds[this.tail++] = this.store.id(slot);
    if (this.tail - this.head > 2 * this.store.live + 4096) this.compact();
  }

  /** At the arrays' end: moves the queue down when half of it is spent, else grows it by half. */
  private makeRoom(): void {
    const n = this.tail - this.head;
    if (this.head > 0 && n <= this.queueSlots.length / 2) {
      this.queueSlots.copyWithin(0, this.head, this.tail);
      this.queueIds.copyWithin(0, this.head, this.tail);
    } else {
      const size = Math.ceil(this.queueSlots.length * 1.5);
      const slots = new Int32Array(size);
      const ids = new Uint32Array(size);
      slots.set(this.queueSlots.subarray(this.head, this.tail));
      ids.set(this.queueIds.subarray(this.head, this.tail));
      this.queueSlots = slots;
      this.queueIds = ids;
    }
    this.head = 0;
    this.tail = n;
  }

  /** An ASSURED entry that has just become droppable again (its protocol state changed to closing). */
  droppableAgain(slot: number): void {
    const id = this.store.id(slot);
    if (this.inHeap.has(id)) return;
    this.inHeap.add(id);
    this.heapPush(id, slot);
    if (this.heapIds.length > 2 * this.store.live + 4096) this.compactHeap();
  }

  /** The slot of the oldest droppable entry, or -1. Candidates found stale on the way are discarded. */
  oldest(): number {
    let q = this.frontOfQueue();
    let h = this.frontOfHeap();
    if (q < 0) return h;
    if (h < 0) return q;
    return this.store.id(q) < this.store.id(h) ? q : h;
  }

  private valid(slot: number, id: number): boolean {
    return (this.store.life(slot) & LIFE_CONFIRMED) !== 0 && this.store.id(slot) === id && this.droppable(slot);
  }

  private frontOfQueue(): number {
    while (this.head < this.tail) {
      const slot = this.queueSlots[this.head];
      if (this.valid(slot, this.queueIds[this.head])) return slot;
      this.head++;
    }
    this.head = this.tail = 0;
    return -1;
  }

  private frontOfHeap(): number {
    while (this.heapIds.length > 0) {
      if (this.valid(this.heapSlots[0], this.heapIds[0])) return this.heapSlots[0];
      this.heapPop();
    }
    return -1;
  }

  /** Keeps only candidates that are still live and droppable, in the same order. */
  private compact(): void {
    let w = 0;
    for (let k = this.head; k < this.tail; k++) {
      if (this.valid(this.queueSlots[k], this.queueIds[k])) {
        this.queueSlots[w] = this.queueSlots[k];
        this.queueIds[w++] = this.queueIds[k];
      }
    }
    this.head = 0;
    this.tail = w;
  }

  private compactHeap(): void {
    const ids = this.heapIds.splice(0), slots = this.heapSlots.splice(0);
    this.inHeap.clear();
    for (let k = 0; k < ids.length; k++) {
      if (!this.valid(slots[k], ids[k])) continue;
      this.inHeap.add(ids[k]);
      this.heapPush(ids[k], slots[k]);
    }
  }

  private heapPush(id: number, slot: number): void {
    const ids = this.heapIds, slots = this.heapSlots;
    let k = ids.length;
    ids.push(id);
    slots.push(slot);
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (ids[parent] <= id) break;
      ids[k] = ids[parent];
      slots[k] = slots[parent];
      k = parent;
    }
    ids[k] = id;
    slots[k] = slot;
  }

  private heapPop(): void {
    const ids = this.heapIds, slots = this.heapSlots;
    this.inHeap.delete(ids[0]);
    const lastId = ids.pop()!;
    const lastSlot = slots.pop()!;
    if (ids.length === 0) return;
    let k = 0;
    for (;;) {
      let child = 2 * k + 1;
      if (child >= ids.length) break;
      if (child + 1 < ids.length && ids[child + 1] < ids[child]) child++;
      if (ids[child] >= lastId) break;
      ids[k] = ids[child];
      slots[k] = slots[child];
      k = child;
    }
    ids[k] = lastId;
    slots[k] = lastSlot;
  }
}
