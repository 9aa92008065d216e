/**
 * Output lines crossing from a capture worker to the merging thread as bytes, not strings. A
 * worker that kept its lines as strings until it posted them made every young-generation GC copy
 * them, and each string was then serialized and rebuilt on the other side; measured with
 * `npm run bench:workers`, that was a large share of the worker runs' extra CPU. Here each line is
 * UTF-8 encoded at once into one growing buffer that is transferred, and the other side decodes
 * the whole batch in one call and cuts it into lines by their lengths.
 *
 * UTF-8 gives back exactly the string encoded when it is well formed (JSON.stringify's always is);
 * a line with a lone surrogate would come back changed, so such a line travels as a string.
 */

const encoder = new TextEncoder();
// ignoreBOM: a line that starts with U+FEFF keeps it.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
/** String.prototype.isWellFormed (ES2024, in Node 20), which the ES2022 typings do not declare. */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** A batch as it crosses the thread: `bytes` is transferable. */
export interface EncodedLines {
  bytes: Uint8Array;
  /** Each line's length in UTF-16 units; -1: the line is the next one of `strings`. */
  lengths: Int32Array;
  strings: string[];
}

/**
 * The writing side: lines appended as they are formatted. `asStrings` (lines that stay in their
 * thread: the main thread's own share) skips the encoding.
 */
export class LineWriter {
  private bytes = new Uint8Array(1 << 16);
  private used = 0;
  private lengths: number[] = [];
  private strings: string[] = [];

  constructor(private readonly asStrings = false) {}

  add(line: string): void {
    if (this.asStrings || !wellFormed(line)) {
      this.lengths.push(-1);
      this.strings.push(line);
      return;
    }
    // A UTF-16 unit takes at most 3 UTF-8 bytes.
    if (this.bytes.length - this.used < line.length * 3) this.grow(line.length * 3);
    this.used += encoder.encodeInto(line, this.bytes.subarray(this.used)).written;
    this.lengths.push(line.length);
  }

  /** The lines so far, handed over (the writer starts a new batch). */
  take(): EncodedLines {
    const batch: EncodedLines = { bytes: this.bytes.slice(0, this.used), lengths: Int32Array.from(this.lengths), strings: this.strings };
    this.used = 0;
    this.lengths = [];
    this.strings = [];
    return batch;
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.used + need));
    next.set(this.bytes.subarray(0, this.used));
    this.bytes = next;
  }
}

/** The merging side: a batch's lines, read in order. */
export class LineReader {
  private readonly text: string;
  private pos = 0;
  private line = 0;
  private string = 0;

  constructor(private readonly batch: EncodedLines) {
    this.text = decoder.decode(batch.bytes);
  }

  /** The next line; call at most lengths.length times. */
  next(): string {
    const n = this.batch.lengths[this.line++];
    if (n < 0) return this.batch.strings[this.string++];
    const start = this.pos;
    this.pos += n;
    return this.text.slice(start, this.pos);
  }
}

/** The buffers of a batch to list in postMessage's transfer list. */
export function transferOf(batch: EncodedLines): ArrayBuffer[] {
  return [batch.bytes.buffer as ArrayBuffer, batch.lengths.buffer as ArrayBuffer];
}
