/**
 * FlowTable: the tuple hash (the kernel's nf_conntrack_hash) as open addressing over an
 * Int32Array. Each entry is present twice, under its original and its reply tuple, like the
 * kernel's two tuplehash nodes. A cell's low bits hold (2*slot + direction) + 1 (a cell of 0 is
 * empty, -1 deleted), which is also the index of that direction's tuple in the store; the bits
 * above them, up to the sign bit, hold high bits of the tuple's hash. A lookup compares those
 * first, so a cell of another tuple (a collision: the neighbour of linear probing) rarely costs a
 * read of that entry's record, a cache miss of its own at a million entries. Tuples are then
 * compared against the store's columns, so a hash collision never confuses two flows.
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

/** Value bits of a new table (room for 32k slots); a rebuild widens them as the store grows. */
const MIN_VALUE_BITS = 16;

export class FlowTable {
  private cells = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;
  /** The cell bits holding 2*slot + direction + 1, and the hash's check bits above them (sign bit excluded). */
  private valueMask = (1 << MIN_VALUE_BITS) - 1;
  private checkMask = 0x7fffffff & ~this.valueMask;
  /** Cells not empty (live + deleted): the load that decides when to rebuild. */
  private used = 0;
  private liveCells = 0;

  constructor(private readonly store: ConnStore) {}

  /** 2*slot + direction of the entry holding this tuple, or -1. */
  find(kind: number, ports: number, src4: number, dst4: number, src6: string, dst6: string): number {
    const s = this.store;
    const hash = hashTuple(kind, ports, src4, dst4, src6, dst6);
    const checkMask = this.checkMask;
    const check = (hash >>> 1) & checkMask;
    let i = hash & this.mask;
    for (;;) {
      const c = this.cells[i];
      if (c === EMPTY) return -1;
      if (c > 0 && (c & checkMask) === check) {
        const k = (c & this.valueMask) - 1;
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

  /**
   * For each tuple hash of `hashes[0, n)`, the first cell on its probe path whose check bits match
   * (or 0 when an empty cell comes first) into `cells`, as 2*slot + direction + 1: the entry a
   * lookup of that tuple will most likely read, for ConntrackEngine.prefetch. A loop that does
   * little but load, so the CPU keeps many of these independent misses in flight at once (a load
   * per iteration of the hashing loop would let only two or three overlap).
   */
  loadCells(hashes: Int32Array, cells: Int32Array, n: number): void {
    const table = this.cells, mask = this.mask, checkMask = this.checkMask;
    for (let k = 0; k < n; k++) {
      const hash = hashes[k];
      const check = (hash >>> 1) & checkMask;
      let i = hash & mask;
      let c = table[i];
      while (c !== EMPTY && (c < 0 || (c & checkMask) !== check)) {
        i = (i + 1) & mask;
        c = table[i];
      }
      cells[k] = c & this.valueMask;
    }
  }

  /** Sizes the table for `n` more entries now (a restore), instead of rebuilding at each doubling on the way there. */
  reserve(n: number): void {
    if ((this.used + 2 * n) * 2 > this.cells.length) this.rebuild(this.liveCells + 2 * n);
  }

  /** Adds both tuples of a slot. */
  insert(slot: number): void {
    // A slot beyond what the value bits hold (the store grew): fewer check bits from now on.
    if (2 * slot + 2 > this.valueMask || (this.used + 2) * 2 > this.cells.length) this.rebuild(this.liveCells + 2);
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
    this.cells[i] = ((hash >>> 1) & this.checkMask) | value;
  }

  private erase(hash: number, value: number): void {
    let i = hash & this.mask;
    for (;;) {
      const c = this.cells[i];
      if (c === EMPTY) return;
      if (c > 0 && (c & this.valueMask) === value) {
        this.cells[i] = DELETED;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  /**
   * Reallocates so that `live` cells fill at most a third of the table, dropping deleted cells,
   * with value bits for every slot the store has (2*capacity + 1 must fit).
   */
  private rebuild(live: number): void {
    let size = this.cells.length;
    while (live * 3 > size) size *= 2;
    const old = this.cells, oldValueMask = this.valueMask;
    let bits = MIN_VALUE_BITS;
    while (bits < 31 && 2 * this.store.capacity + 1 > (1 << bits) - 1) bits++;
    this.valueMask = bits >= 31 ? 0x7fffffff : (1 << bits) - 1;
    this.checkMask = 0x7fffffff & ~this.valueMask;
    this.cells = new Int32Array(size);
    this.mask = size - 1;
    this.used = 0;
    for (let k = 0; k < old.length; k++) {
      const c = old[k];
      if (c > 0) {
        const value = c & oldValueMask;
        this.place(this.hashOf(value - 1), value);
      }
    }
  }
}
