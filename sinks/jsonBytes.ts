/**
 * Writes JSON straight into UTF-8 bytes, each piece exactly as JSON.stringify would write it, for
 * the record writers of jsonRecordBytes.ts. The Kafka output topics carry one JSON record per
 * transition and flow record: building an object per record and stringifying it cost more than
 * the engine that made the records; concatenating the text and encoding it afterwards took about
 * 1.5 times as long as writing the bytes, and the strings stayed alive (young-generation
 * survivors) until the produce request was acknowledged. Here a record is bytes in a shared
 * 256 KiB chunk from the start; its message value is a view of that chunk, or (ChunkMessage) its
 * place in it.
 */

/**
 * Bytes per chunk. A live pipeline with verdicts writes ~350 MB of records a minute; allocating
 * them as 64 KiB buffers cost 30 µs per buffer (fresh pages each time: a loop of allocations on
 * this machine), as 256 KiB ones 35 µs, about a third of the total; at 1 MiB each allocation maps
 * new memory and costs far more.
 */
const CHUNK = 256 * 1024;
/** Room a record is expected to fit in; a longer one moves to a larger chunk as it grows. */
const ROOM = 2048;

export class JsonBytes {
  private buf: Buffer;
  private pos = 0;
  private start = 0;

  constructor(private readonly chunkSize = CHUNK) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Starts a record. */
  begin(): this {
    if (this.buf.length - this.pos < Math.min(ROOM, this.chunkSize)) {
      this.buf = Buffer.allocUnsafe(this.chunkSize);
      this.pos = 0;
    }
    this.start = this.pos;
    return this;
  }

  /** The record written since begin(), as a view of the chunk (the chunk lives as long as a view of it). */
  end(): Buffer {
    return this.buf.subarray(this.start, this.pos);
  }

  /** The chunk holding the record written since begin(), at [recordStart, recordEnd): the record without a view made of it. */
  get chunk(): Buffer {
    return this.buf;
  }

  get recordStart(): number {
    return this.start;
  }

  get recordEnd(): number {
    return this.pos;
  }

  /** Text known to be ASCII and to need no escaping: keys, punctuation, literals, number text. */
  raw(s: string): this {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
    return this;
  }

  /** A string, quoted: printable ASCII directly, anything else (escapes, non-ASCII) through JSON.stringify. */
  str(s: string): this {
    const n = s.length;
    if (this.pos + n + 2 > this.buf.length) this.grow(n + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return this.utf8(JSON.stringify(s));
      b[p++] = c;
    }
    b[p++] = 0x22;
    this.pos = p;
    return this;
  }

  /** A number: the shortest round-trip form as JSON.stringify writes it, null for NaN and infinities. */
  num(n: number): this {
    if (n !== (n | 0)) return this.raw(Number.isFinite(n) ? `${n}` : 'null');
    // An int32 (-0 included, written "0"): its digits without making a string, in int32
    // arithmetic (the one int32 whose negation is not one is written as text).
    if (n === -2147483648) return this.raw('-2147483648');
    if (this.pos + 11 > this.buf.length) this.grow(11);
    const b = this.buf;
    let x = n | 0;
    if (x < 0) {
      b[this.pos++] = 0x2d;
      x = -x;
    }
    const digits = countDigits(x);
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = (x / 10) | 0;
      b[--p] = 0x30 + x - 10 * q;
      x = q;
    } while (x > 0);
    return this;
  }

  /**
   * `us / 1e6` as num() writes it: seconds from integer microseconds (the records' times), without
   * making a string. Below 2^32 s, doubles near a time are closer together than 1e-6 (2^-21 at
   * most), so a decimal with 6 or fewer fraction digits other than the exact one is at least 1e-6
   * from it and cannot round to the same double: the exact decimal, trailing zeros dropped, is the
   * shortest round-trip form JSON.stringify writes. Any other value goes through num().
   */
  micros(us: number): this {
    if (!(us >= 0 && us < MICROS_LIMIT && Number.isInteger(us))) return this.num(us / 1e6);
    // Whole seconds by a division (exact enough: us / 1e6 is within 2^-22 of the true quotient,
    // which is at least 1e-6 from the next integer), then the µs left, an int32: no float modulo.
    let seconds = Math.floor(us / 1e6);
    let frac = us - seconds * 1e6;
    if (frac < 0) {
      seconds--;
      frac += 1e6;
    }
    // Below 2^32 s: at most 10 digits, counted by comparisons rather than divisions.
    const digits = countDigits(seconds);
    let fracDigits = 0;
    if (frac !== 0) {
      fracDigits = 6;
      while (frac % 10 === 0) {
        frac = (frac / 10) | 0;
        fracDigits--;
      }
    }
    const n = digits + (fracDigits ? fracDigits + 1 : 0);
    if (this.pos + n > this.buf.length) this.grow(n);
    const b = this.buf;
    const start = this.pos;
    let p = start + n;
    this.pos = p;
    for (let k = 0; k < fracDigits; k++) {
      const q = (frac / 10) | 0;
      b[--p] = 0x30 + frac - 10 * q;
      frac = q;
    }
    if (fracDigits) b[--p] = 0x2e;
    let x = seconds;
    while (p > start) {
      const q = (x / 10) >>> 0;
      b[--p] = 0x30 + x - 10 * q;
      x = q;
    }
    return this;
  }

  /**
   * `,"key":value` for an optional field of a record (`key` is plain ASCII), or nothing where
   * JSON.stringify leaves the key out (undefined, functions, symbols, an object whose toJSON gives
   * undefined).
   */
  field(key: string, v: unknown): this {
    this.member(key, v, false);
    return this;
  }

  /**
   * field(key, v) with the key's text `,"key":` given whole: a string or number value is written
   * straight after it, without member()'s questions (the verdict and transition writers' optional
   * fields are strings and numbers); anything else goes through field().
   */
  fieldAs(prefix: string, key: string, v: unknown): this {
    if (typeof v === 'string') return this.raw(prefix).str(v);
    if (typeof v === 'number') return this.raw(prefix).num(v);
    return this.field(key, v);
  }

  /** A value that is not undefined. */
  value(v: unknown): this {
    switch (typeof v) {
      case 'number':
        return this.num(v);
      case 'string':
        return this.str(v);
      case 'boolean':
        return this.raw(v ? 'true' : 'false');
      default:
        // null, objects, arrays (toJSON included); bigint throws as JSON.stringify does.
        return this.utf8(JSON.stringify(v) ?? 'null');
    }
  }

  /**
   * `{ ...a, ...b }` (a tuple merged with its counters): a's keys in a's order, b's value where b
   * has the key too, then b's other keys in b's order. Both are plain objects (literals or parsed
   * JSON), so for-in visits exactly the own keys a spread copies.
   */
  merged(a: object, b: object): this {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k in rb) {
      // An integer-like key of b would sort among a's leading integer keys: left to JSON.stringify.
      if (!hasOwn.call(ra, k) && isIndexLike(k)) return this.utf8(JSON.stringify({ ...ra, ...rb }));
    }
    this.raw('{');
    let first = true;
    for (const k in ra) if (this.member(k, hasOwn.call(rb, k) ? rb[k] : ra[k], first)) first = false;
    for (const k in rb) if (!hasOwn.call(ra, k) && this.member(k, rb[k], first)) first = false;
    return this.raw('}');
  }

  /** `"key":value` of an object member (a comma first unless `first`); false where JSON.stringify leaves it out. */
  private member(k: string, v: unknown, first: boolean): boolean {
    const text = typeof v === 'object' || typeof v === 'bigint' ? JSON.stringify(v) : undefined;
    if (text === undefined && omitted(v)) return false;
    if (!first) this.raw(',');
    this.str(k).raw(':');
    if (text !== undefined) this.utf8(text);
    else this.value(v);
    return true;
  }

  /** Any JSON text (already escaped), as UTF-8. */
  private utf8(text: string): this {
    const n = Buffer.byteLength(text, 'utf8');
    if (this.pos + n > this.buf.length) this.grow(n);
    this.pos += this.buf.write(text, this.pos, 'utf8');
    return this;
  }

  /** Moves the record begun so far to a chunk with room for `need` more bytes. */
  private grow(need: number): void {
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.chunkSize, 2 * (used + need)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = used;
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/** Decimal digits of a whole number below 10^10. */
function countDigits(x: number): number {
  return x < 10 ? 1 : x < 100 ? 2 : x < 1000 ? 3 : x < 1e4 ? 4 : x < 1e5 ? 5 : x < 1e6 ? 6 : x < 1e7 ? 7 : x < 1e8 ? 8 : x < 1e9 ? 9 : 10;
}

/** 2^32 seconds in µs: micros() writes times below it itself (an integer below 2^53, so its arithmetic is exact). */
const MICROS_LIMIT = 4294967296e6;

/** What JSON.stringify leaves out of an object (objects were stringified before asking). */
function omitted(v: unknown): boolean {
  const t = typeof v;
  return t === 'undefined' || t === 'function' || t === 'symbol' || t === 'object' || t === 'bigint';
}

/** A key that objects order before the others (an array index: "0", "17", not "01"). */
function isIndexLike(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 0x30 && c <= 0x39 && `${+k >>> 0}` === k && +k !== 4294967295;
}
