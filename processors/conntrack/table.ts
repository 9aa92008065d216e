/**
 * FlowTable: the tuple hash (the kernel's nf_conntrack_hash) as open addressing over an
 * Int32Array. Each entry is present twice, under its original and its reply tuple, like the
 * kernel's two tuplehash nodes; a cell holds slot*2+direction+1 (0 empty, -1 deleted). Tuples
 * are compared against the store's columns, so a hash collision never confuses two flows.
 */
import type { ConnStore } from './store';

const EMPTY = 0;
const DELETED = -1;

export function hashTuple(zone: number, proto: number, src: string, dst: string, sport: number, dport: number): number {
  let h = Math.imul(0x9e3779b1, (zone << 8) ^ proto ^ 0x811c9dc5);
  h = Math.imul(h ^ ((sport << 16) | dport), 0x85ebca6b);
  for (let i = 0; i < src.length; i++) h = Math.imul(h ^ src.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x2f, 0x01000193);
  for (let i = 0; i < dst.length; i++) h = Math.imul(h ^ dst.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}

export class FlowTable {
  private cells = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;
  /** Cells not empty (live + deleted): the load that decides when to rebuild. */
  private used = 0;
  private liveCells = 0;

  constructor(private readonly store: ConnStore) {}

  /** The cell value slot*2+dir of the entry with this tuple, or -1. */
  find(zone: number, proto: number, src: string, dst: string, sport: number, dport: number): number {
    const s = this.store;
    let i = hashTuple(zone, proto, src, dst, sport, dport) & this.mask;
    for (;;) {
      const c = this.cells[i];
      if (c === EMPTY) return -1;
      if (c !== DELETED) {
        const ref = c - 1;
        const slot = ref >> 1;
        if (s.zone[slot] === zone && s.proto[slot] === proto) {
          if ((ref & 1) === 0) {
            if (s.sport[slot] === sport && s.dport[slot] === dport && s.src[slot] === src && s.dst[slot] === dst) return ref;
          } else if (s.replySport[slot] === sport && s.replyDport[slot] === dport && s.replySrc[slot] === src && s.replyDst[slot] === dst) {
            return ref;
          }
        }
      }
      i = (i + 1) & this.mask;
    }
  }

  /** Adds both tuples of a slot. */
  insert(slot: number): void {
    if ((this.used + 2) * 2 > this.cells.length) this.rebuild(this.liveCells + 2);
    const s = this.store;
    this.place(hashTuple(s.zone[slot], s.proto[slot], s.src[slot], s.dst[slot], s.sport[slot], s.dport[slot]), slot * 2 + 1);
    this.place(hashTuple(s.zone[slot], s.proto[slot], s.replySrc[slot], s.replyDst[slot], s.replySport[slot], s.replyDport[slot]), slot * 2 + 2);
    this.liveCells += 2;
  }

  /** Removes both tuples of a slot (call before the slot's columns change). */
  remove(slot: number): void {
    const s = this.store;
    this.erase(hashTuple(s.zone[slot], s.proto[slot], s.src[slot], s.dst[slot], s.sport[slot], s.dport[slot]), slot * 2 + 1);
    this.erase(hashTuple(s.zone[slot], s.proto[slot], s.replySrc[slot], s.replyDst[slot], s.replySport[slot], s.replyDport[slot]), slot * 2 + 2);
    this.liveCells -= 2;
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
    const s = this.store;
    for (let k = 0; k < old.length; k++) {
      const c = old[k];
      if (c <= 0) continue;
      const ref = c - 1;
      const slot = ref >> 1;
      const h = (ref & 1) === 0
        ? hashTuple(s.zone[slot], s.proto[slot], s.src[slot], s.dst[slot], s.sport[slot], s.dport[slot])
        : hashTuple(s.zone[slot], s.proto[slot], s.replySrc[slot], s.replyDst[slot], s.replySport[slot], s.replyDport[slot]);
      this.place(h, c);
    }
  }
}
