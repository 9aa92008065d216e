/**
 * ConnStore: every entry of a shard kept column-wise in typed arrays (struct of arrays), so a
 * million entries cost a few hundred bytes each instead of a graph of JS objects, and lookups
 * touch flat memory. An entry is a slot number; `Conn` (conn.ts) is a small view over one slot.
 * Slots are recycled through a free list; entry ids are never reused, so a stale reference
 * (an expiry-queue node) recognises that its slot changed hands. Live entries are also chained in
 * creation order, which listings and early drop walk.
 */

const INITIAL_CAPACITY = 1024;

type Growable = Float64Array | Uint32Array | Int32Array | Uint16Array | Uint8Array;

export class ConnStore {
  capacity = 0;
  // Tuples, one per direction at [2*slot + dir] (original 0, reply 1), packed so that a lookup
  // touches few cache lines: IPv4 addresses as 32-bit values, IPv6 ones as text.
  /** (zone << 9) | (protocol << 1) | (1 for IPv6). */
  kind = new Uint32Array(0);
  /** (sport << 16) | dport; ICMP: (id << 16) | (type << 8) | code. */
  ports = new Uint32Array(0);
  src4 = new Uint32Array(0);
  dst4 = new Uint32Array(0);
  src6: string[] = [];
  dst6: string[] = [];
  /** Bit 0 used, bit 1 confirmed, bit 2 dead. */
  life = new Uint8Array(0);
  status = new Uint16Array(0);
  /** The creating packet's index + 1 (captures of up to 2^32 packets). */
  id = new Uint32Array(0);
  expiresUs = new Float64Array(0);
  scheduledUs = new Float64Array(0);
  startUs = new Float64Array(0);
  lastUs = new Float64Array(0);
  pktsOrig = new Uint32Array(0);
  pktsReply = new Uint32Array(0);
  bytesOrig = new Float64Array(0);
  bytesReply = new Float64Array(0);
  /** Per-protocol packet-time scalar (UDP: when the entry may become a stream). */
  aux = new Float64Array(0);
  /** Creation-order chain of live (confirmed) entries. */
  prev = new Int32Array(0);
  next = new Int32Array(0);
  // TCP (struct ip_ct_tcp): two directions per slot at [2*slot + dir]
  tcpState = new Uint8Array(0);
  tdEnd = new Uint32Array(0);
  tdMaxend = new Uint32Array(0);
  tdMaxwin = new Uint32Array(0);
  tdMaxack = new Uint32Array(0);
  tdScale = new Uint8Array(0);
  tdFlags = new Uint8Array(0);
  lastDir = new Uint8Array(0);
  lastIndex = new Uint8Array(0);
  lastSeq = new Uint32Array(0);
  lastAck = new Uint32Array(0);
  lastEnd = new Uint32Array(0);
  lastWin = new Uint16Array(0);
  lastWscale = new Uint8Array(0);
  lastFlags = new Uint8Array(0);
  retrans = new Uint8Array(0);
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

  /** Writes one direction's tuple (addresses as the packet gives them). */
  setTuple(slot: number, dir: 0 | 1, family: 4 | 6, src: string, dst: string, ports: number): void {
    const k = 2 * slot + dir;
    this.ports[k] = ports;
    if (family === 4) {
      this.src4[k] = ipv4Value(src);
      this.dst4[k] = ipv4Value(dst);
      this.src6[k] = this.dst6[k] = '';
    } else {
      this.src4[k] = this.dst4[k] = 0;
      this.src6[k] = src;
      this.dst6[k] = dst;
    }
  }

  /** One direction's addresses as text. */
  srcText(slot: number, dir: 0 | 1): string {
    const k = 2 * slot + dir;
    return this.kind[slot] & 1 ? this.src6[k] : ipv4Text(this.src4[k]);
  }

  dstText(slot: number, dir: 0 | 1): string {
    const k = 2 * slot + dir;
    return this.kind[slot] & 1 ? this.dst6[k] : ipv4Text(this.dst4[k]);
  }

  /** A fresh, zeroed slot (not yet chained: see link()). */
  alloc(): number {
    let slot = this.freeList.pop();
    if (slot === undefined) {
      // Grow by a quarter: the slack of unused slots stays small (memory per flow is a target).
      if (this.used === this.capacity) this.grow(Math.ceil(this.capacity * 1.25));
      slot = this.used++;
    }
    this.clear(slot);
    this.life[slot] = 1;
    return slot;
  }

  /** Returns a slot to the free list (unlinking it first when it was chained). */
  release(slot: number): void {
    if (this.life[slot] & 2) this.unlink(slot);
    this.life[slot] = 0;
    this.src6[2 * slot] = this.dst6[2 * slot] = this.src6[2 * slot + 1] = this.dst6[2 * slot + 1] = '';
    this.extra.delete(slot);
    this.freeList.push(slot);
  }

  /** Appends a confirmed entry to the creation-order chain. */
  link(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = -1;
    if (this.tail >= 0) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
    this.live++;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.live--;
  }

  private clear(slot: number): void {
    this.status[slot] = 0;
    this.expiresUs[slot] = 0;
    this.scheduledUs[slot] = Infinity;
    this.pktsOrig[slot] = this.pktsReply[slot] = this.bytesOrig[slot] = this.bytesReply[slot] = 0;
    this.aux[slot] = 0;
    this.resetTcp(slot);
  }

  resetTcp(slot: number): void {
    this.tcpState[slot] = 0;
    for (const d of [2 * slot, 2 * slot + 1]) {
      this.tdEnd[d] = this.tdMaxend[d] = this.tdMaxwin[d] = this.tdMaxack[d] = 0;
      this.tdScale[d] = this.tdFlags[d] = 0;
    }
    this.lastDir[slot] = 0;
    this.lastIndex[slot] = 5;
    this.lastSeq[slot] = this.lastAck[slot] = this.lastEnd[slot] = 0;
    this.lastWin[slot] = this.lastWscale[slot] = this.lastFlags[slot] = this.retrans[slot] = 0;
  }

  private grow(capacity: number): void {
    const self = this as unknown as Record<string, Growable>;
    for (const [name, value] of Object.entries(this)) {
      if (!ArrayBuffer.isView(value)) continue;
      const old = value as Growable;
      const perSlot = old.length / Math.max(1, this.capacity) || (PAIRED.has(name) ? 2 : 1);
      const next = new (old.constructor as { new (n: number): Growable })(capacity * perSlot);
      next.set(old);
      self[name] = next;
    }
    this.capacity = capacity;
  }
}

/** Columns holding one value per direction. */
const PAIRED = new Set(['ports', 'src4', 'dst4', 'tdEnd', 'tdMaxend', 'tdMaxwin', 'tdMaxack', 'tdScale', 'tdFlags']);

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

export function ipv4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}
