/** Reads the report's data out of the page: the JSON part, and the columns inflated from gzip+base64. */
import { undelta } from '../reportData';
import type { ColumnName, ColumnRef, ReportMeta } from '../reportData';

export type ColumnArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
export type Columns = Record<ColumnName, ColumnArray>;

export interface ReportData {
  meta: ReportMeta;
  col: Columns;
}

function view(buf: ArrayBuffer, ref: ColumnRef): ColumnArray {
  switch (ref.type) {
    case 'u8': return new Uint8Array(buf, ref.offset, ref.length);
    case 'u16': return new Uint16Array(buf, ref.offset, ref.length);
    case 'u32': return new Uint32Array(buf, ref.offset, ref.length);
    case 'i32': return new Int32Array(buf, ref.offset, ref.length);
    case 'f64': return new Float64Array(buf, ref.offset, ref.length);
  }
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}

export async function loadReport(doc: Document): Promise<ReportData> {
  const metaText = doc.getElementById('ctflow-meta')?.textContent;
  const columnsText = doc.getElementById('ctflow-columns')?.textContent;
  if (!metaText || columnsText === null || columnsText === undefined) throw new Error('ctflow report: the page holds no report data');
  const meta = JSON.parse(metaText) as ReportMeta;
  // The browser's own gzip: nothing is fetched, the bytes come from the page.
  const stream = new Blob([base64Bytes(columnsText.trim())]).stream().pipeThrough(new DecompressionStream('gzip'));
  const buf = await new Response(stream).arrayBuffer();
  const col = {} as Columns;
  for (const [name, ref] of Object.entries(meta.columns)) {
    const a = view(buf, ref);
    if (ref.delta && !(a instanceof Float64Array)) undelta(a);
    col[name as ColumnName] = a;
  }
  return { meta, col };
}
