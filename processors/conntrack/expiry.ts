/**
 * Expiry by packet time. The kernel reaps lazily (on lookup and from a GC worker); ctflow reaps
 * every entry whose deadline is at or before the current packet's time, in deadline order, so a
 * replay is deterministic. Deadlines move with every refresh, so the queue is a min-heap with
 * lazy deletion: an entry is pushed again only when its deadline moves earlier than the one it is
 * queued under, and a popped node whose entry has a later deadline is re-queued.
 */
import type { Conn } from './conn';

export class ExpiryQueue {
  private keys: number[] = [];
  private ids: number[] = [];
  private conns: Conn[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** Make sure `conn` is queued no later than its current deadline. */
  schedule(conn: Conn): void {
    if (conn.expiresUs < conn.scheduledUs) {
      conn.scheduledUs = conn.expiresUs;
      this.push(conn.expiresUs, conn);
    }
  }

  /** Removes and returns the expired entries (deadline <= nowUs), earliest first. */
  popExpired(nowUs: number, out: Conn[]): void {
    while (this.keys.length > 0 && this.keys[0] <= nowUs) {
      const key = this.keys[0];
      const conn = this.pop();
      if (conn.dead || key !== conn.scheduledUs) continue; // stale node
      if (conn.expiresUs > nowUs) {
        conn.scheduledUs = conn.expiresUs;
        this.push(conn.expiresUs, conn);
        continue;
      }
      conn.scheduledUs = Infinity;
      out.push(conn);
    }
  }

  private less(i: number, j: number): boolean {
    return this.keys[i] < this.keys[j] || (this.keys[i] === this.keys[j] && this.ids[i] < this.ids[j]);
  }

  private swap(i: number, j: number): void {
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
    [this.ids[i], this.ids[j]] = [this.ids[j], this.ids[i]];
    [this.conns[i], this.conns[j]] = [this.conns[j], this.conns[i]];
  }

  private push(key: number, conn: Conn): void {
    this.keys.push(key);
    this.ids.push(conn.id);
    this.conns.push(conn);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): Conn {
    const top = this.conns[0];
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.keys.pop();
    this.ids.pop();
    this.conns.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.keys.length && this.less(l, m)) m = l;
      if (r < this.keys.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}
