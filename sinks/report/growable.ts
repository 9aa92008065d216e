/**
 * Typed-array columns that grow together as the replay goes: one row per packet, event or flow,
 * without an object each (a 1.6M-packet capture would otherwise hold millions of small objects).
 *
 * The collector writes `group.arrays.name[row] = value` itself after ensure(row): each such store
 * sees one array type, so V8 keeps it fast, where one shared `set(name, row, value)` method would
 * see all five types and go megamorphic (it made the report's replay several times slower).
 */
import type { ColumnType } from './reportData';

export type TypedArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

const MAKERS: Record<ColumnType, (n: number) => TypedArray> = {
  u8: (n) => new Uint8Array(n),
  u16: (n) => new Uint16Array(n),
  u32: (n) => new Uint32Array(n),
  i32: (n) => new Int32Array(n),
  f64: (n) => new Float64Array(n),
};

export class ColumnGroup<Name extends string> {
  readonly arrays: Record<Name, TypedArray>;
  /** Rows written so far. */
  length = 0;
  private capacity: number;

  constructor(private readonly types: Record<Name, ColumnType>, capacity = 4096) {
    this.capacity = capacity;
    this.arrays = {} as Record<Name, TypedArray>;
    for (const name of Object.keys(types) as Name[]) this.arrays[name] = MAKERS[types[name]](capacity);
  }

  /** Makes row `row` writable in every column, growing them all as needed. */
  ensure(row: number): void {
    if (row >= this.capacity) {
      let n = this.capacity * 2;
      while (n <= row) n *= 2;
      for (const name of Object.keys(this.types) as Name[]) {
        const bigger = MAKERS[this.types[name]](n);
        bigger.set(this.arrays[name]);
        this.arrays[name] = bigger;
      }
      this.capacity = n;
    }
    if (row >= this.length) this.length = row + 1;
  }

  /** The next row, made writable. */
  add(): number {
    const row = this.length;
    this.ensure(row);
    return row;
  }

  /** Column `name`'s rows (a view, not a copy). */
  values(name: Name): TypedArray {
    return this.arrays[name].subarray(0, this.length);
  }
}
