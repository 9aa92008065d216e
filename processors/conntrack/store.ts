/**
 * ConnStore: every entry of a shard as a fixed-size record in one ArrayBuffer (the JS form of the
 * kernel's slab of struct nf_conn), so a million entries cost a few hundred bytes each instead of
 * a graph of JS objects, and one packet touches one or two cache lines of its entry: the fields a
 * lookup compares and those every packet updates sit in the record's first 64 bytes. An entry is
 * a slot number; `Conn` (conn.ts) is a small view over one slot. Slots are recycled through a
 * free list; entry ids are never reused, so a stale reference (an expiry-queue node) recognises
 * that its slot changed hands. Live entries are also chained in creation order, which listings
 * and early drop walk. IPv6 addresses, being text, live in two side arrays.
 */

import { dottedQuad } from '../packet';

/**
 * Record size in bytes (a multiple of 8) and field offsets; see the layout table below. The state
 * changelog copies records as they are (state/entryCodec.ts): a change to this layout must bump
 * ENTRY_FORMAT there, or restored entries would be read with the wrong offsets.
 */
const RECORD = 168;
export const RECORD_BYTES = RECORD;
const W64 = RECORD / 8, W32 = RECORD / 4, W16 = RECORD / 2;
// byte offsets
//   0 kind u32 | 4 ports[2] u32 | 12 src4[2] u32 | 20 dst4[2] u32 | 28 status u16 | 30 life u8 | 31 tcpState u8
//  32 expiresUs f64 | 40 scheduledUs f64 | 48 lastUs f64 | 56 packets[2] u32
//  64 bytes[2] f64 | 80 aux f64 | 88 startUs f64 | 96 id u32 | 100 prev i32 | 104 next i32
// 108 tdEnd[2] | 116 tdMaxend[2] | 124 tdMaxwin[2] | 132 tdMaxack[2] | 140 lastSeq | 144 lastAck | 148 lastEnd (u32)
// 152 lastWin u16 | 154 tdScale[2] u8 | 156 tdFlags[2] u8 | 158 lastDir | 159 lastIndex | 160 lastWscale | 161 lastFlags | 162 retrans
// Offsets count the view's elements (the suffix says which: 64 f64, 32 u32, 16 u16, 8 u8); a
// field of slot s sits at s * <record size in those elements> + offset (+ dir for pairs).
const K32 = 0, PORTS32 = 1, SRC32 = 3, DST32 = 5;
const EXPIRES64 = 4, SCHEDULED64 = 5, LAST64 = 6, PACKETS32 = 14, BYTES64 = 8, AUX64 = 10, START64 = 11;
const ID32 = 24, PREV32 = 25, NEXT32 = 26;
/**
 * The record in elements of each view, and the fields of struct ip_ct_tcp and the status the TCP
 * tracker reads and writes on every packet: it indexes the views (words(), halfwords(), octets())
 * itself, since a dozen accessor calls per packet are more than the JIT inlines into it.
 */
const STATUS16 = 14, LIFE8 = 30, TCPSTATE8 = 31;
const TDEND32 = 27, TDMAXEND32 = 29, TDMAXWIN32 = 31, TDMAXACK32 = 33, LASTSEQ32 = 35, LASTACK32 = 36, LASTEND32 = 37;
const LASTWIN16 = 76, TDSCALE8 = 154, TDFLAGS8 = 156, LASTDIR8 = 158, LASTINDEX8 = 159, LASTWSCALE8 = 160, LASTFLAGS8 = 161, RETRANS8 = 162;
// (Exported by name below: an `export const` would turn this module's own uses into property loads.)
export {
  W32 as RECORD_WORDS, W16 as RECORD_HALFWORDS, STATUS16, LIFE8, TCPSTATE8, TDEND32, TDMAXEND32, TDMAXWIN32, TDMAXACK32,
  LASTSEQ32, LASTACK32, LASTEND32, LASTWIN16, TDSCALE8, TDFLAGS8, LASTDIR8, LASTINDEX8, LASTWSCALE8, LASTFLAGS8, RETRANS8,
};

const INITIAL_CAPACITY = 1024;

export const LIFE_USED = 1;
export const LIFE_CONFIRMED = 2;

export class ConnStore {
  capacity = 0;
  private f64 = new Float64Array(0);
  private u32 = new Uint32Array(0);
  private i32 = new Int32Array(0);
  private u16 = new Uint16Array(0);
  private u8 = new Uint8Array(0);
  /** IPv6 addresses by [2*slot + dir]; '' for IPv4 entries. */
  private readonly src6: string[] = [];
  private readonly dst6: string[] = [];
  /** Private state of rarely seen protocols (SCTP), by slot. */
  readonly extra = new Map<number, unknown>();

  private freeList: number[] = [];
  private used = 0;
  head = -1;
  tail = -1;
  live = 0;

  constructor() {
    this.grow(INITIAL_CAPACITY);
  }

  // identity and tuples ------------------------------------------------------------------------
  kind(slot: number): number { return this.u32[slot * W32 + K32]; }
  setKind(slot: number, v: number): void { this.u32[slot * W32 + K32] = v; }
  ports(slot: number, dir: number): number { return this.u32[slot * W32 + PORTS32 + dir]; }
  src4(slot: number, dir: number): number { return this.u32[slot * W32 + SRC32 + dir]; }
  dst4(slot: number, dir: number): number { return this.u32[slot * W32 + DST32 + dir]; }
  src6Of(slot: number, dir: number): string { return this.src6[2 * slot + dir]; }
  dst6Of(slot: number, dir: number): string { return this.dst6[2 * slot + dir]; }
  id(slot: number): number { return this.u32[slot * W32 + ID32]; }
  setId(slot: number, v: number): void { this.u32[slot * W32 + ID32] = v; }

  /** Writes one direction's tuple (addresses as the packet gives them). */
  setTuple(slot: number, dir: 0 | 1, family: 4 | 6, src: string, dst: string, ports: number, src4?: number, dst4?: number): void {
    const b = slot * W32;
    this.u32[b + PORTS32 + dir] = ports;
    if (family === 4) {
      this.u32[b + SRC32 + dir] = src4 ?? ipv4Value(src);
      this.u32[b + DST32 + dir] = dst4 ?? ipv4Value(dst);
      this.src6[2 * slot + dir] = this.dst6[2 * slot + dir] = '';
    } else {
      this.u32[b + SRC32 + dir] = this.u32[b + DST32 + dir] = 0;
      this.src6[2 * slot + dir] = src;
      this.dst6[2 * slot + dir] = dst;
    }
  }

  /** One direction's addresses as text. */
  srcText(slot: number, dir: 0 | 1): string {
    return this.kind(slot) & 1 ? this.src6[2 * slot + dir] : dottedQuad(this.src4(slot, dir));
  }
  dstText(slot: number, dir: 0 | 1): string {
    return this.kind(slot) & 1 ? this.dst6[2 * slot + dir] : dottedQuad(this.dst4(slot, dir));
  }

  // life, status and time -----------------------------------------------------------------------
  life(slot: number): number { return this.u8[slot * RECORD + LIFE8]; }
  setLife(slot: number, v: number): void { this.u8[slot * RECORD + LIFE8] = v; }
  status(slot: number): number { return this.u16[slot * W16 + STATUS16]; }
  setStatus(slot: number, v: number): void { this.u16[slot * W16 + STATUS16] = v; }
  expiresUs(slot: number): number { return this.f64[slot * W64 + EXPIRES64]; }
  setExpiresUs(slot: number, v: number): void { this.f64[slot * W64 + EXPIRES64] = v; }
  scheduledUs(slot: number): number { return this.f64[slot * W64 + SCHEDULED64]; }
  setScheduledUs(slot: number, v: number): void { this.f64[slot * W64 + SCHEDULED64] = v; }
  startUs(slot: number): number { return this.f64[slot * W64 + START64]; }
  /** Sets the first and the last packet time of a new entry. */
  setStart(slot: number, v: number): void {
    this.f64[slot * W64 + START64] = v;
    this.f64[slot * W64 + LAST64] = v;
  }
  lastUs(slot: number): number { return this.f64[slot * W64 + LAST64]; }
  aux(slot: number): number { return this.f64[slot * W64 + AUX64]; }
  setAux(slot: number, v: number): void { this.f64[slot * W64 + AUX64] = v; }
  packets(slot: number, dir: number): number { return this.u32[slot * W32 + PACKETS32 + dir]; }
  bytes(slot: number, dir: number): number { return this.f64[slot * W64 + BYTES64 + dir]; }

  /** Counts one packet of `length` bytes in direction `dir` at `nowUs` (nf_ct_acct_update). */
  account(slot: number, dir: number, length: number, nowUs: number): void {
    this.u32[slot * W32 + PACKETS32 + dir]++;
    this.f64[slot * W64 + BYTES64 + dir] += length;
    this.f64[slot * W64 + LAST64] = nowUs;
  }

  // TCP (struct ip_ct_tcp) ----------------------------------------------------------------------
  tcpState(slot: number): number { return this.u8[slot * RECORD + TCPSTATE8]; }
  setTcpState(slot: number, v: number): void { this.u8[slot * RECORD + TCPSTATE8] = v; }
  tdEnd(slot: number, dir: number): number { return this.u32[slot * W32 + TDEND32 + dir]; }
  setTdEnd(slot: number, dir: number, v: number): void { this.u32[slot * W32 + TDEND32 + dir] = v; }
  tdMaxend(slot: number, dir: number): number { return this.u32[slot * W32 + TDMAXEND32 + dir]; }
  setTdMaxend(slot: number, dir: number, v: number): void { this.u32[slot * W32 + TDMAXEND32 + dir] = v; }
  tdMaxwin(slot: number, dir: number): number { return this.u32[slot * W32 + TDMAXWIN32 + dir]; }
  setTdMaxwin(slot: number, dir: number, v: number): void { this.u32[slot * W32 + TDMAXWIN32 + dir] = v; }
  tdMaxack(slot: number, dir: number): number { return this.u32[slot * W32 + TDMAXACK32 + dir]; }
  setTdMaxack(slot: number, dir: number, v: number): void { this.u32[slot * W32 + TDMAXACK32 + dir] = v; }
  tdScale(slot: number, dir: number): number { return this.u8[slot * RECORD + TDSCALE8 + dir]; }
  setTdScale(slot: number, dir: number, v: number): void { this.u8[slot * RECORD + TDSCALE8 + dir] = v; }
  tdFlags(slot: number, dir: number): number { return this.u8[slot * RECORD + TDFLAGS8 + dir]; }
  setTdFlags(slot: number, dir: number, v: number): void { this.u8[slot * RECORD + TDFLAGS8 + dir] = v; }
  lastSeq(slot: number): number { return this.u32[slot * W32 + LASTSEQ32]; }
  setLastSeq(slot: number, v: number): void { this.u32[slot * W32 + LASTSEQ32] = v; }
  lastAck(slot: number): number { return this.u32[slot * W32 + LASTACK32]; }
  setLastAck(slot: number, v: number): void { this.u32[slot * W32 + LASTACK32] = v; }
  lastEnd(slot: number): number { return this.u32[slot * W32 + LASTEND32]; }
  setLastEnd(slot: number, v: number): void { this.u32[slot * W32 + LASTEND32] = v; }
  lastWin(slot: number): number { return this.u16[slot * W16 + LASTWIN16]; }
  setLastWin(slot: number, v: number): void { this.u16[slot * W16 + LASTWIN16] = v; }
  lastDir(slot: number): number { return this.u8[slot * RECORD + LASTDIR8]; }
  setLastDir(slot: number, v: number): void { this.u8[slot * RECORD + LASTDIR8] = v; }
  lastIndex(slot: number): number { return this.u8[slot * RECORD + LASTINDEX8]; }
  setLastIndex(slot: number, v: number): void { this.u8[slot * RECORD + LASTINDEX8] = v; }
  lastWscale(slot: number): number { return this.u8[slot * RECORD + LASTWSCALE8]; }
  setLastWscale(slot: number, v: number): void { this.u8[slot * RECORD + LASTWSCALE8] = v; }
  lastFlags(slot: number): number { return this.u8[slot * RECORD + LASTFLAGS8]; }
  setLastFlags(slot: number, v: number): void { this.u8[slot * RECORD + LASTFLAGS8] = v; }
  retrans(slot: number): number { return this.u8[slot * RECORD + RETRANS8]; }
  setRetrans(slot: number, v: number): void { this.u8[slot * RECORD + RETRANS8] = v; }

  // the record arrays, for the TCP tracker (valid until the store grows: only alloc() grows it) ---
  words(): Uint32Array { return this.u32; }
  halfwords(): Uint16Array { return this.u16; }
  octets(): Uint8Array { return this.u8; }

  // slots ---------------------------------------------------------------------------------------
  next(slot: number): number { return this.i32[slot * W32 + NEXT32]; }

  /** The slot's record bytes, a view (valid until the store grows): what the state changelog copies. */
  recordBytes(slot: number): Uint8Array { return this.u8.subarray(slot * RECORD, (slot + 1) * RECORD); }

  /**
   * A fresh slot holding a record saved by recordBytes() and its IPv6 addresses, for a restore.
   * Not chained: the caller links it (the saved chain pointers named another store's slots).
   */
  loadRecord(bytes: Uint8Array, addr6?: readonly string[]): number {
    const slot = this.alloc();
    this.u8.set(bytes, slot * RECORD);
    if (addr6) {
      this.src6[2 * slot] = addr6[0];
      this.dst6[2 * slot] = addr6[1];
      this.src6[2 * slot + 1] = addr6[2];
      this.dst6[2 * slot + 1] = addr6[3];
    } else {
      this.src6[2 * slot] = this.dst6[2 * slot] = this.src6[2 * slot + 1] = this.dst6[2 * slot + 1] = '';
    }
    return slot;
  }

  /**
   * Reads one word in every cache line the record touches (bytes 0, 60, 120 and 164: no two more
   * than 64 apart), for ConntrackEngine.prefetch: the loads are independent, so their misses
   * overlap. The sum means nothing.
   */
  touch(slot: number): number {
    const b = slot * W32;
    return this.u32[b] + this.u32[b + 15] + this.u32[b + 30] + this.u32[b + 41];
  }

  /** A fresh, zeroed slot (not yet chained: see link()). */
  alloc(): number {
    let slot = this.freeList.pop();
    if (slot === undefined) {
      // Grow by a quarter: the slack of unused slots stays small (memory per flow is a target).
      if (this.used === this.capacity) this.grow(Math.ceil(this.capacity * 1.25));
      slot = this.used++;
    }
    this.u8.fill(0, slot * RECORD, (slot + 1) * RECORD);
    this.f64[slot * W64 + SCHEDULED64] = Infinity;
    this.u8[slot * RECORD + LASTINDEX8] = 5; // TCP_NONE_SET
    this.u8[slot * RECORD + LIFE8] = LIFE_USED;
    return slot;
  }

  /** Makes room for `n` more entries at once (a restore knows how many it loads: one copy, not one per growth step). */
  reserve(n: number): void {
    const needed = this.used - this.freeList.length + n;
    if (needed > this.capacity) this.grow(needed);
  }

  /** Returns a slot to the free list (unlinking it first when it was chained). TCP state and id stay readable until reuse. */
  release(slot: number): void {
    if (this.life(slot) & LIFE_CONFIRMED) this.unlink(slot);
    this.setLife(slot, 0);
    this.src6[2 * slot] = this.dst6[2 * slot] = this.src6[2 * slot + 1] = this.dst6[2 * slot + 1] = '';
    this.extra.delete(slot);
    this.freeList.push(slot);
  }

  /** Appends a confirmed entry to the creation-order chain. */
  link(slot: number): void {
    this.i32[slot * W32 + PREV32] = this.tail;
    this.i32[slot * W32 + NEXT32] = -1;
    if (this.tail >= 0) this.i32[this.tail * W32 + NEXT32] = slot;
    else this.head = slot;
    this.tail = slot;
    this.live++;
  }

  private unlink(slot: number): void {
    const p = this.i32[slot * W32 + PREV32];
    const n = this.i32[slot * W32 + NEXT32];
    if (p >= 0) this.i32[p * W32 + NEXT32] = n;
    else this.head = n;
    if (n >= 0) this.i32[n * W32 + PREV32] = p;
    else this.tail = p;
    this.live--;
  }

  private grow(capacity: number): void {
    const buffer = new ArrayBuffer(capacity * RECORD);
    new Uint8Array(buffer).set(this.u8);
    this.f64 = new Float64Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.capacity = capacity;
  }
}

export const kindOf = (zone: number, proto: number, family: 4 | 6): number => ((zone << 9) | (proto << 1) | (family === 6 ? 1 : 0)) >>> 0;
export const zoneOfKind = (kind: number): number => kind >>> 9;
export const protoOfKind = (kind: number): number => (kind >>> 1) & 0xff;
export const familyOfKind = (kind: number): 4 | 6 => (kind & 1 ? 6 : 4);

/** Dotted-quad text to its 32-bit value (the decoder's canonical form; no validation needed). */
export function ipv4Value(text: string): number {
  let value = 0;
  let part = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      value = (value << 8) | part;
      part = 0;
    } else {
      part = part * 10 + (c - 48);
    }
  }
  return ((value << 8) | part) >>> 0;
}

