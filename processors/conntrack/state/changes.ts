/**
 * Which entries of a shard may have changed since the state changelog last looked (see
 * processors/stream/stateChangelog.ts): slots touched by a packet, an expiry or a helper, and the
 * ids of the entries destroyed (their tombstones). A shard keeps one only while state is
 * tracked; without it the per-packet path pays one null test. Marking is a flag per slot, so a
 * packet costs a load and, the first time its slot is marked, a push.
 */
export class EntryChanges {
  private flags = new Uint8Array(1024);
  private slots: number[] = [];
  private gone: number[] = [];

  /** The entry in `slot` may have changed (or was just created). */
  mark(slot: number): void {
    if (slot >= this.flags.length) {
      const bigger = new Uint8Array(Math.max(slot + 1, this.flags.length * 2));
      bigger.set(this.flags);
      this.flags = bigger;
    }
    if (this.flags[slot] === 0) {
      this.flags[slot] = 1;
      this.slots.push(slot);
    }
  }

  /** The entry with this id is gone (a confirmed entry destroyed). */
  destroyed(id: number): void {
    this.gone.push(id);
  }

  /** Whether anything was marked since the last take(). */
  get pending(): boolean {
    return this.slots.length > 0 || this.gone.length > 0;
  }

  /** What was marked since the last call; starts over. Slots may since hold another entry, or none. */
  take(): { slots: number[]; gone: number[] } {
    const out = { slots: this.slots, gone: this.gone };
    for (const slot of this.slots) this.flags[slot] = 0;
    this.slots = [];
    this.gone = [];
    return out;
  }
}
