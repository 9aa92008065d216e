/**
 * Expiry by packet time. The kernel reaps lazily (on lookup and from a GC worker); ctflow reaps
 * every entry whose deadline is at or before the current packet's time, in deadline order, so a
 * replay is deterministic. Deadlines move with every refresh, so the queue is a min-heap with
 * lazy deletion: an entry is pushed again only when its deadline moves earlier than the one it is
 * queued under, and a popped node whose entry has a later deadline is re-queued. Nodes name a
 * slot and the id of the entry that held it (ids are never reused), so a node left behind by a
 * destroyed entry never touches the slot's next occupant; ties break by id, oldest first.
 */
import type { ConnStore } from './store';
import { LIFE_CONFIRMED, LIFE_USED } from './store';

export class ExpiryQueue {
  private keys: number[] = [];
  private slots: number[] = [];
  private ids: number[] = [];

  constructor(private readonly store: ConnStore) {}

  get size(): number {
    return this.keys.length;
  }

  /** Make sure `slot` is queued no later than its current deadline. */
  schedule(slot: number): void {
    const s = this.store;
    const expires = s.expiresUs(slot);
    if (expires < s.scheduledUs(slot)) {
      s.setScheduledUs(slot, expires);
      this.push(expires, slot, s.id(slot));
    }
  }

  /**
   * Queues a restored entry under the deadline it was queued under when it was saved (its
   * scheduledUs, which can differ from its deadline: see schedule()), so it comes out when the
   * saved one would have. Stale nodes of the saved queue are not needed: they only ever get skipped.
   */
  restore(slot: number): void {
    const s = this.store;
    if (s.scheduledUs(slot) !== Infinity) this.push(s.scheduledUs(slot), slot, s.id(slot));
  }

  /** Appends the slots whose deadline is at or before `nowUs`, earliest first. */
  popExpired(nowUs: number, out: number[]): void {
    const s = this.store;
    while (this.keys.length > 0 && this.keys[0] <= nowUs) {
      const key = this.keys[0];
      const slot = this.slots[0];
      const id = this.ids[0];
      this.pop();
      if (s.id(slot) !== id || s.life(slot) !== (LIFE_USED | LIFE_CONFIRMED) || key !== s.scheduledUs(slot)) continue; // stale node
      const expires = s.expiresUs(slot);
      if (expires > nowUs) {
        s.setScheduledUs(slot, expires);
        this.push(expires, slot, id);
        continue;
      }
      s.setScheduledUs(slot, Infinity);
      out.push(slot);
    }
    // The heap orders by the time a node was scheduled, which for an entry refreshed since is
    // earlier than its deadline: put the due entries in deadline order (then id), the order the
    // engine merges several shards' expiries in, so one shard and many agree.
    if (out.length > 1) out.sort((a, b) => s.expiresUs(a) - s.expiresUs(b) || s.id(a) - s.id(b));
  }

  private less(i: number, j: number): boolean {
    return this.keys[i] < this.keys[j] || (this.keys[i] === this.keys[j] && this.ids[i] < this.ids[j]);
  }

  private swap(i: number, j: number): void {
    const key = this.keys[i], slot = this.slots[i], id = this.ids[i];
    this.keys[i] = this.keys[j];
    this.slots[i] = this.slots[j];
    this.ids[i] = this.ids[j];
    this.keys[j] = key;
    this.slots[j] = slot;
    this.ids[j] = id;
  }

  private push(key: number, slot: number, id: number): void {
    this.keys.push(key);
    this.slots.push(slot);
    this.ids.push(id);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.keys.pop();
    this.slots.pop();
    this.ids.pop();
    const n = this.keys.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}
