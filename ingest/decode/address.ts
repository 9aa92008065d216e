/**
 * Address text. IPv6 follows RFC 5952 the way glibc's inet_ntop prints it, since conntrack(8)
 * output (which ours must match) goes through inet_ntop: lower-case hex, the longest run of two
 * or more zero groups shortened to "::" (the first on a tie), and a dotted-quad tail for
 * IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses.
 */
import { dottedQuad } from '../../processors/packet';
import { u32 } from './bytes';

export function ipv4Text(d: Uint8Array, o: number): string {
  return dottedQuad(u32(d, o));
}

/**
 * Recently printed IPv6 addresses, direct-mapped by a hash of their 16 bytes. The packets of a
 * capture keep meeting the same addresses, and building the text (about half of decoding an IPv6
 * packet, measured) is what a hit saves: four reads, a mix and a compare. A slot holds the
 * address's four words and its text; a collision just replaces it.
 */
const SLOT_BITS = 10;
const TEXT_SLOTS = 1 << SLOT_BITS;
const slotWords = new Uint32Array(TEXT_SLOTS * 4);
const slotText: Array<string | undefined> = new Array<string | undefined>(TEXT_SLOTS).fill(undefined);

export function ipv6Text(d: Uint8Array, o: number): string {
  const a = u32(d, o);
  const b = u32(d, o + 4);
  const c = u32(d, o + 8);
  const e = u32(d, o + 12);
  const slot = Math.imul(a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b) ^ Math.imul(e, 0xc2b2ae35), 0x27d4eb2f) >>> (32 - SLOT_BITS);
  const w = slot * 4;
  const cached = slotText[slot];
  if (cached !== undefined && slotWords[w] === a && slotWords[w + 1] === b && slotWords[w + 2] === c && slotWords[w + 3] === e) return cached;
  const text = formatIpv6(d, o);
  slotWords[w] = a;
  slotWords[w + 1] = b;
  slotWords[w + 2] = c;
  slotWords[w + 3] = e;
  slotText[slot] = text;
  return text;
}

/** The text itself, built every time (ipv6Text caches it). */
export function formatIpv6(d: Uint8Array, o: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((d[o + 2 * i] << 8) | d[o + 2 * i + 1]);

  // Longest run of zero words (first one on a tie); runs of one are not shortened.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;

  // glibc's rule for an embedded IPv4 tail: ::a.b.c.d (six zero words) and ::ffff:a.b.c.d.
  const v4Tail = bestStart === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff));

  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestStart >= 0 && i >= bestStart && i < bestStart + bestLen) {
      if (i === bestStart) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (v4Tail && i === 6) return out + ipv4Text(d, o + 12);
    out += words[i].toString(16);
  }
  return bestStart >= 0 && bestStart + bestLen === 8 ? out + ':' : out;
}

/** Parses a dotted quad into 4 bytes; throws on anything else (used by builders, not decoding). */
export function parseIpv4(text: string): Uint8Array {
  const parts = text.split('.');
  const bytes = parts.map(Number);
  if (parts.length !== 4 || bytes.some((b, i) => !/^\d{1,3}$/.test(parts[i]) || b > 255)) {
    throw new Error(`bad ipv4 address: ${text}`);
  }
  return Uint8Array.from(bytes);
}

/** Parses IPv6 text ("::" shorthand and a dotted-quad tail allowed) into 16 bytes; throws if bad. */
export function parseIpv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  let tail: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail = parseIpv4(s.slice(lastColon + 1));
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw new Error(`bad ipv6 address: ${text}`);
  const toWords = (h: string) => (h === '' ? [] : h.split(':'));
  const head = toWords(halves[0]);
  const rest = halves.length === 2 ? toWords(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0) || (halves.length === 2 && fill < 1)) {
    throw new Error(`bad ipv6 address: ${text}`);
  }
  const words = [...head, ...Array<string>(fill).fill('0'), ...rest];
  words.forEach((w, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(w)) throw new Error(`bad ipv6 address: ${text}`);
    const v = parseInt(w, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}
