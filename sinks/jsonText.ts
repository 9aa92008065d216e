/**
 * Pieces of JSON text written directly, each giving exactly what JSON.stringify gives for the same
 * value, for the record writers of jsonRecordText.ts. Building an object only to stringify it made
 * the output encoding (and the garbage it leaves) the largest cost of the Kafka pipeline.
 */

/** A string as JSON.stringify quotes it; strings needing no escape (addresses, names) skip its call. */
export function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Control characters, quote and backslash are escaped; lone surrogates too (well-formed JSON.stringify).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** A number as JSON.stringify writes it: the shortest round-trip form, null for NaN and infinities. */
export function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

/** Any value; undefined where JSON.stringify leaves the key out (undefined, functions, symbols). */
export function value(v: unknown): string | undefined {
  switch (typeof v) {
    case 'number':
      return num(v);
    case 'string':
      return str(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    default:
      // null, objects and arrays (toJSON included), and bigint, which throws as JSON.stringify does.
      return JSON.stringify(v);
  }
}

const hasOwn = Object.prototype.hasOwnProperty;
/** A key that objects order before the others (an array index: "0", "17", not "01"). */
const isIndexLike = (k: string): boolean => k.length > 0 && k.charCodeAt(0) <= 0x39 && k.charCodeAt(0) >= 0x30 && `${+k >>> 0}` === k && +k !== 4294967295;

/**
 * `{ ...a, ...b }` as JSON: a's keys in a's order (b's value where b has the key too), then b's
 * other keys in b's order. Used for a tuple merged with its counters. Both are plain objects
 * (object literals or parsed JSON), so for-in visits exactly the own keys spread would copy.
 */
export function merged(a: object, b: object): string {
  let s = '{';
  let sep = '';
  for (const k in a) {
    const v = value(hasOwn.call(b, k) ? (b as Record<string, unknown>)[k] : (a as Record<string, unknown>)[k]);
    if (v === undefined) continue;
    s += `${sep}${str(k)}:${v}`;
    sep = ',';
  }
  for (const k in b) {
    if (hasOwn.call(a, k)) continue;
    // An integer-like key of b would sort among a's leading integer keys: rare enough to leave to JSON.stringify.
    if (isIndexLike(k)) return JSON.stringify({ ...a, ...b });
    const v = value((b as Record<string, unknown>)[k]);
    if (v === undefined) continue;
    s += `${sep}${str(k)}:${v}`;
    sep = ',';
  }
  return `${s}}`;
}
