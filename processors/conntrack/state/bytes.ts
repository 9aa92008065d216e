/**
 * The byte level of the state changelog (processors/stream/stateChangelog.ts): a growable writer,
 * a reader that names the record it reads when the bytes run out, and a small self-describing
 * encoding for the rare, irregular parts of the state (SCTP private state, helper data, held
 * fragments, expectations). The regular part of an entry, its ConnStore record, is copied as raw
 * bytes instead (entryCodec.ts). Numbers are little-endian, as the typed arrays of every platform
 * Node runs on store them.
 *
 * The tagged encoding keeps what a deep equality sees: undefined, null, booleans, numbers (as
 * float64, so -0, NaN and 2^53 survive), strings, Uint8Arrays, arrays and plain objects (own
 * enumerable keys in order; a property whose value is undefined stays present). Object identity
 * and prototypes are not kept: the decoders of entryCodec.ts rebuild the classes they need.
 */

const TEXT_ENCODER = new TextEncoder();
/** Bytes per slab the writer cuts its values from. */
const SLAB = 1 << 20;
/** Scratch for reading a float64 without a DataView per record. */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const TEXT_DECODER = new TextDecoder('utf-8', { fatal: true });

/** Why a changelog record cannot be read: names the key, so a bad record can be found in the topic. */
export class StateFormatError extends Error {
  constructor(readonly key: string, message: string) {
    super(`state record '${key}': ${message}`);
    this.name = 'StateFormatError';
  }
}

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  /** Starts a new value, reusing the buffer. */
  reset(): this {
    this.length = 0;
    return this;
  }

  /**
   * A copy of what was written (the buffer is reused). Copies are cut from a shared slab: a
   * million small values each with an ArrayBuffer of its own cost the garbage collector far more
   * than the copying (a whole-table stateChanges() took seconds longer).
   */
  bytes(): Uint8Array {
    if (this.length > SLAB / 8) return this.buf.slice(0, this.length);
    if (this.slabUsed + this.length > SLAB) {
      this.slab = new Uint8Array(SLAB);
      this.slabUsed = 0;
    }
    const out = this.slab.subarray(this.slabUsed, this.slabUsed + this.length);
    out.set(this.buf.subarray(0, this.length));
    this.slabUsed += (this.length + 7) & ~7;
    return out;
  }
  private slab = new Uint8Array(0);
  private slabUsed = SLAB; // (full: the first value allocates one)

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  f64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }

  /** An unsigned integer below 2^53 in 7-bit groups (LEB128): counters and lengths are mostly small. */
  uint(v: number): void {
    if (!(v >= 0 && Number.isSafeInteger(v))) throw new RangeError(`not an unsigned integer: ${v}`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  str(s: string): void {
    // Almost every string here is short ASCII (addresses, state names): written byte by byte,
    // which costs far less than a TextEncoder call.
    if (s.length < 128 && /^[\x00-\x7f]*$/.test(s)) {
      this.room(s.length + 1);
      this.buf[this.length++] = s.length;
      for (let i = 0; i < s.length; i++) this.buf[this.length++] = s.charCodeAt(i);
      return;
    }
    const b = TEXT_ENCODER.encode(s);
    this.uint(b.length);
    this.raw(b);
  }

  /** One value in the tagged encoding (see the file comment). */
  value(v: unknown): void {
    if (v === undefined) this.u8(T.UNDEFINED);
    else if (v === null) this.u8(T.NULL);
    else if (v === false) this.u8(T.FALSE);
    else if (v === true) this.u8(T.TRUE);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0)) {
        this.u8(T.UINT);
        this.uint(v);
      } else {
        this.u8(T.F64);
        this.f64(v);
      }
    } else if (typeof v === 'string') {
      this.u8(T.STRING);
      this.str(v);
    } else if (v instanceof Uint8Array) {
      this.u8(T.BYTES);
      this.uint(v.length);
      this.raw(v);
    } else if (Array.isArray(v)) {
      this.u8(T.ARRAY);
      this.uint(v.length);
      for (const x of v) this.value(x);
    } else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      const keys = Object.keys(v);
      this.u8(T.OBJECT);
      this.uint(keys.length);
      for (const k of keys) {
        this.str(k);
        this.value((v as Record<string, unknown>)[k]);
      }
    } else {
      throw new TypeError(`cannot encode a ${typeof v} (${Object.prototype.toString.call(v)}) in the state changelog`);
    }
  }
}

const T = { UNDEFINED: 0, NULL: 1, FALSE: 2, TRUE: 3, UINT: 4, F64: 5, STRING: 6, BYTES: 7, ARRAY: 8, OBJECT: 9 } as const;

export class ByteReader {
  private pos = 0;

  constructor(readonly key: string, private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  fail(message: string): never {
    throw new StateFormatError(this.key, message);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`truncated: needs ${this.pos + n} bytes, has ${this.buf.length}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  f64(): number {
    this.need(8);
    // (little-endian, as the writer's DataView wrote it and every platform's typed arrays read)
    for (let i = 0; i < 8; i++) F64_BYTES[i] = this.buf[this.pos + i];
    this.pos += 8;
    return F64[0];
  }

  uint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 56) this.fail('integer too long');
    }
  }

  raw(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  str(): string {
    const b = this.raw(this.uint());
    if (b.length < 64) {
      // Short ASCII (addresses, state names) without a TextDecoder call.
      let ascii = '';
      let i = 0;
      for (; i < b.length && b[i] <= 0x7f; i++) ascii += String.fromCharCode(b[i]);
      if (i === b.length) return ascii;
    }
    try {
      return TEXT_DECODER.decode(b);
    } catch {
      return this.fail('a string is not valid UTF-8');
    }
  }

  value(): unknown {
    const tag = this.u8();
    switch (tag) {
      case T.UNDEFINED: return undefined;
      case T.NULL: return null;
      case T.FALSE: return false;
      case T.TRUE: return true;
      case T.UINT: return this.uint();
      case T.F64: return this.f64();
      case T.STRING: return this.str();
      case T.BYTES: return this.raw(this.uint()).slice();
      case T.ARRAY: {
        const n = this.uint();
        const a: unknown[] = [];
        for (let i = 0; i < n; i++) a.push(this.value());
        return a;
      }
      case T.OBJECT: {
        const n = this.uint();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.str();
          o[k] = this.value();
        }
        return o;
      }
      default:
        return this.fail(`unknown value tag ${tag}`);
    }
  }

  /** The value must end here: trailing bytes mean a writer and reader disagree. */
  end(): void {
    if (!this.done) this.fail(`${this.buf.length - this.pos} unexpected bytes at the end`);
  }
}
