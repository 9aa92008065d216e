/**
 * Typed-array columns that grow as the replay goes: one value per packet, event or flow,
 * without an object each (a 1.6M-packet capture would otherwise hold millions of small objects).
 */
import type { ColumnType } from './reportData';

type TypedArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

const MAKERS: Record<ColumnType, (n: number) => TypedArray> = {
  u8: (n) => new Uint8Array(n),
  u16: (n) => new Uint16Array(n),
  u32: (n) => new Uint32Array(n),
  i32: (n) => new Int32Array(n),
  f64: (n) => new Float64Array(n),
};

export class Column {
  private data: TypedArray;
  length = 0;

  constructor(readonly type: ColumnType, capacity = 1024) {
    this.data = MAKERS[type](capacity);
  }

  /** Writes `value` at `index`, growing (and extending `length`) as needed. */
  set(index: number, value: number): void {
    if (index >= this.data.length) {
      let n = this.data.length * 2;
      while (n <= index) n *= 2;
      const bigger = MAKERS[this.type](n);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[index] = value;
    if (index >= this.length) this.length = index + 1;
  }

  push(value: number): void {
    this.set(this.length, value);
  }

  get(index: number): number {
    return this.data[index];
  }

  /** The values written so far (a view, not a copy). */
  values(): TypedArray {
    return this.data.subarray(0, this.length);
  }
}
