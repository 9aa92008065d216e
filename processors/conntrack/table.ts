/**
 * FlowTable: the tuple hash (the kernel's nf_conntrack_hash) as open addressing over an
 * Int32Array. Each entry is present twice, under its original and its reply tuple, like the
 * kernel's two tuplehash nodes; a cell holds (2*slot + direction) + 1 (0 empty, -1 deleted),
 * which is also the index of that direction's tuple in the store. Tuples are compared against
 * the store's columns, so a hash collision never confuses two flows.
 */
import type { ConnStore } from './store';

const EMPTY = 0;
const DELETED = -1;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return (h << 13) | (h >>> 19);
}

/** The hash of one direction's tuple; IPv6 addresses (text) are folded in character by character. */
export function hashTuple(kind: number, ports: number, src4: number, dst4: number, src6: string, dst6: string): number {
  let h = mix(mix(mix(mix(0x811c9dc5, kind), ports), src4), dst4);
  if (kind & 1) h = mixText(h, src6, dst6); // (apart, so the IPv4 path stays small enough to inline)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function mixText(h: number, src6: string, dst6: string): number {
  for (let i = 0; i < src6.length; i++) h = Math.imul(h ^ src6.charCodeAt(i), 0x01000193);
  h = mix(h, 0x2f);
  for (let i = 0; i < dst6.length; i++) h = Math.imul(h ^ dst6.charCodeAt(i), 0x01000193);
  return h;
}

export class FlowTable {
  private cells = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;
  /** Cells not empty (live + deleted): the load that decides when to rebuild. */
  private used = 0;
  private liveCells = 0;

  constructor(private readonly store: ConnStore) {}

  /** 2*slot + direction of the entry holding this tuple, or -1. */
  find(kind: number, ports: number, src4: number, dst4: number, src6: string, dst6: string): number {
    const s = this.store;
    let i = hashTuple(kind, ports, src4, dst4, src6, dst6) & this.mask;
    for (;;) {
      const c = this.cells[i];
      if (c === EMPTY) return -1;
      if (c !== DELETED) {
        const k = c - 1;
        const slot = k >> 1, dir = k & 1;
        if (
          s.ports(slot, dir) === ports &&
          s.src4(slot, dir) === src4 &&
          s.dst4(slot, dir) === dst4 &&
          s.kind(slot) === kind &&
          ((kind & 1) === 0 || (s.src6Of(slot, dir) === src6 && s.dst6Of(slot, dir) === dst6))
        ) {
          return k;
        }
      }
      i = (i + 1) & this.mask;
    }
  }

  /** The index of the cell a lookup of this tuple reads first, for ConntrackEngine.prefetch. */
  homeIndex(kind: number, ports: number, src4: number, dst4: number, src6: string, dst6: string): number {
    return hashTuple(kind, ports, src4, dst4, src6, dst6) & this.mask;
  }

  /**
   * The cells at `indices[0, n)` (home indices from homeIndex) into `cells`: a loop that does
   * nothing but load, so the CPU keeps many of these independent misses in flight at once (a
   * load per iteration of the hashing loop would let only two or three overlap).
   */
  loadCells(indices: Int32Array, cells: Int32Array, n: number): void {
    const table = this.cells;
    for (let k = 0; k < n; k++) cells[k] = indices[k] < 0 ? 0 : table[indices[k]];
  }

  /** Sizes the table for `n` more entries now (a restore), instead of rebuilding at each doubling on the way there. */
  reserve(n: number): void {
    if ((this.used + 2 * n) * 2 > this.cells.length) this.rebuild(this.liveCells + 2 * n);
  }

  /** Adds both tuples of a slot. */
  insert(slot: number): void {
    if ((this.used + 2) * 2 > this.cells.length) this.rebuild(this.liveCells + 2);
    this.place(this.hashOf(2 * slot), 2 * slot + 1);
    this.place(this.hashOf(2 * slot + 1), 2 * slot + 2);
    this.liveCells += 2;
  }

  /** Removes both tuples of a slot (call before the slot's columns change). */
  remove(slot: number): void {
    this.erase(this.hashOf(2 * slot), 2 * slot + 1);
    this.erase(this.hashOf(2 * slot + 1), 2 * slot + 2);
    this.liveCells -= 2;
  }

  private hashOf(k: number): number {
    const s = this.store, slot = k >> 1, dir = k & 1;
    return hashTuple(s.kind(slot), s.ports(slot, dir), s.src4(slot, dir), s.dst4(slot, dir), s.src6Of(slot, dir), s.dst6Of(slot, dir));
  }

  private place(hash: number, value: number): void {
    let i = hash & this.mask;
    while (this.cells[i] > 0) i = (i + 1) & this.mask;
    if (this.cells[i] === EMPTY) this.used++;
    this.cells[i] = value;
  }

  private erase(hash: number, value: number): void {
    let i = hash & this.mask;
    for (;;) {
      const c = this.cells[i];
      if (c === EMPTY) return;
      if (c === value) {
        this.cells[i] = DELETED;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** Reallocates so that `live` cells fill at most a third of the table, dropping deleted cells. */
  private rebuild(live: number): void {
    let size = this.cells.length;
    while (live * 3 > size) size *= 2;
    const old = this.cells;
    this.cells = new Int32Array(size);
    this.mask = size - 1;
    this.used = 0;
    for (let k = 0; k < old.length; k++) {
      const c = old[k];
      if (c > 0) this.place(this.hashOf(c - 1), c);
    }
  }
}
