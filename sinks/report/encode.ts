/**
 * The model in the form the HTML carries: the columns packed into one buffer (each at an 8-byte
 * aligned offset so the browser can view it without copying), gzip'd and base64'd, and the JSON
 * part with the column directory. The browser inflates with its built-in DecompressionStream.
 */
import { gzipSync } from 'node:zlib';
import type { ReportModel } from './collect';
import { DELTA_COLUMNS, delta } from './reportData';
import type { ColumnRef, ColumnType, ReportMeta } from './reportData';

const TYPE_OF: Array<[new (...a: never[]) => ArrayBufferView, ColumnType]> = [
  [Uint8Array, 'u8'],
  [Uint16Array, 'u16'],
  [Uint32Array, 'u32'],
  [Int32Array, 'i32'],
  [Float64Array, 'f64'],
];

function columnType(a: ArrayBufferView): ColumnType {
  for (const [ctor, type] of TYPE_OF) if (a instanceof ctor) return type;
  throw new Error(`report: column of unsupported type ${a.constructor.name}`);
}

export interface EncodedReport {
  meta: ReportMeta;
  /** gzip'd column buffer, base64. */
  columnsBase64: string;
  /** Column bytes before compression. */
  rawBytes: number;
}

export function encodeReport(model: ReportModel): EncodedReport {
  const refs: Record<string, ColumnRef> = {};
  const stored: Array<[string, ArrayBufferView]> = [];
  let size = 0;
  for (const [name, a] of Object.entries(model.columns)) {
    const type = columnType(a);
    const asDelta = DELTA_COLUMNS.includes(name) && type !== 'f64';
    refs[name] = { type, offset: size, length: a.length, ...(asDelta ? { delta: true } : {}) };
    stored.push([name, asDelta ? delta(a as Uint32Array) : a]);
    size += Math.ceil(a.byteLength / 8) * 8;
  }
  const buf = new Uint8Array(size);
  for (const [name, a] of stored) buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), refs[name].offset);
  return { meta: { ...model.meta, columns: refs }, columnsBase64: gzipSync(buf, { level: 6 }).toString('base64'), rawBytes: size };
}
