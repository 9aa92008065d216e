/**
 * The FTP helper (the kernel's nf_conntrack_ftp.c), without NAT: reads the control connection's
 * commands and replies and announces the data connection they set up.
 *
 * Kernel behaviour mirrored:
 * - Only packets of a connection that has seen traffic both ways are read (ctinfo ESTABLISHED or
 *   ESTABLISHED_REPLY), and only their TCP payload.
 * - A segment is read only when it starts right after a newline the helper saw in the same
 *   direction: each direction remembers up to two "sequence number after a newline"
 *   (seq_aft_nl, NUM_SEQ_TO_REMEMBER), so the first segment each side sends is never read.
 * - Client to server: PORT a,b,c,d,p1,p2 and EPRT |1|addr|port| or |2|addr6|port|; server to
 *   client: "227 " (the first digit after it starts a,b,c,d,p1,p2, RFC 1123) and "229 " with
 *   (|||port|). Commands are matched case-insensitively at the start of the segment.
 * - A segment that could still become a command (shorter than the pattern, no delimiter, numbers
 *   that do not parse) is a partial match: the kernel drops the packet and leaves its newline
 *   bookkeeping alone.
 * - An announced address other than the sender's own is not trusted (the module's loose=0).
 * - PORT/EPRT expect the server side to connect to the announced port; 227/229 expect the client
 *   to connect to the server. EPSV gives only a port.
 */
import { isIP } from 'node:net';
import { ipv6Groups } from '../rules/match';

/** What one segment asks of the helper. */
export type FtpParse =
  | { kind: 'none' }
  | { kind: 'partial'; pattern: string }
  | { kind: 'match'; command: FtpCommand; address?: FtpAddress; port: number; span: MatchSpan };

/** Where the announced address and port stand in the segment (the kernel's matchoff, matchlen): what nf_nat_ftp rewrites. */
export interface MatchSpan {
  start: number;
  end: number;
}

/** What a number parser read: the values and the end of the text it read (exclusive). */
type Parsed = { port: number; address?: FtpAddress; start: number; end: number };

export type FtpCommand = 'PORT' | 'EPRT' | 'PASV' | 'EPSV';

/** The address a command names: IPv4 as a 32-bit value, IPv6 as eight 16-bit groups. */
export type FtpAddress = { family: 4; value: number } | { family: 6; groups: number[] };

interface Search {
  pattern: string;
  command: FtpCommand;
  /** Skip to just after this character before the numbers (0: start right after the pattern). */
  skip: number;
  /** The character that must end the numbers (0: any). */
  term: number;
  parse: (d: Uint8Array, from: number, term: number, family: 4 | 6) => Parsed | null;
}

const CR = 13, SPACE = 32, PAREN = 40, CLOSE = 41;

const FROM_CLIENT: Search[] = [
  { pattern: 'PORT', command: 'PORT', skip: SPACE, term: CR, parse: rfc959 },
  { pattern: 'EPRT', command: 'EPRT', skip: SPACE, term: CR, parse: eprt },
];
const FROM_SERVER: Search[] = [
  { pattern: '227 ', command: 'PASV', skip: 0, term: 0, parse: rfc1123 },
  { pattern: '229 ', command: 'EPSV', skip: PAREN, term: CLOSE, parse: epsvResponse },
];

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const lower = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c);

/** Reads `count` numbers separated by `sep`, ended by `term` (or anything, when term is 0), like the kernel's try_number: u32 arithmetic, no range checks. */
function numbers(d: Uint8Array, from: number, count: number, sep: number, term: number): { values: number[]; length: number } | null {
  const values = new Array<number>(count).fill(0);
  let i = 0;
  for (let k = from; k < d.length && i < count; k++) {
    const c = d[k];
    if (isDigit(c)) values[i] = (Math.imul(values[i], 10) + (c - 48)) >>> 0;
    else if (c === sep) i++;
    else if ((c === term || term === 0) && i === count - 1) return { values, length: k - from };
    else return null;
  }
  return null; // ran out of data (or of numbers) before the terminator
}

/** a,b,c,d,p1,p2 (try_rfc959): the address's octets and the port's two bytes, C's truncating shifts included. */
function rfc959(d: Uint8Array, from: number, term: number): Parsed | null {
  const n = numbers(d, from, 6, 44, term);
  if (!n || n.length === 0) return null;
  const [a, b, c, e, p1, p2] = n.values;
  return { address: { family: 4, value: ((a << 24) | (b << 16) | (c << 8) | e) >>> 0 }, port: ((p1 << 8) | p2) & 0xffff, start: from, end: from + n.length };
}

/** 227 replies: the numbers start at the first digit, parentheses or not (try_rfc1123, RFC 1123 4.1.2.6). */
function rfc1123(d: Uint8Array, from: number): Parsed | null {
  let k = from;
  while (k < d.length && !isDigit(d[k])) k++;
  if (k === d.length) return null;
  return rfc959(d, k, 0);
}

/** PORT|EPRT's port: digits up to the delimiter, not 0 (get_port; a 16-bit counter), and the index just past that delimiter. */
function portUpTo(d: Uint8Array, from: number, delim: number): { port: number; end: number } | null {
  let port = 0;
  for (let k = from; k < d.length; k++) {
    const c = d[k];
    if (c === delim) return port === 0 ? null : { port, end: k + 1 };
    if (!isDigit(c)) return null;
    port = (port * 10 + (c - 48)) & 0xffff;
  }
  return null;
}

const validDelimiter = (c: number): boolean => !isDigit(c) && c >= 33 && c <= 126;

/** |1|a.b.c.d|port| or |2|ipv6|port| with any printable delimiter (try_eprt); the protocol digit must be the connection's family. */
function eprt(d: Uint8Array, from: number, _term: number, family: 4 | 6): Parsed | null {
  if (d.length - from <= 3) return null;
  const delim = d[from];
  if (!validDelimiter(delim) || d[from + 2] !== delim) return null;
  const proto = d[from + 1];
  if ((family === 4 && proto !== 49) || (family === 6 && proto !== 50)) return null;
  let address: FtpAddress;
  let end: number; // index of the delimiter after the address
  if (proto === 49) {
    const n = numbers(d, from + 3, 4, 46, delim);
    if (!n || n.length === 0) return null;
    const [a, b, c, e] = n.values;
    address = { family: 4, value: ((a << 24) | (b << 16) | (c << 8) | e) >>> 0 };
    end = from + 3 + n.length;
  } else {
    end = d.indexOf(delim, from + 3);
    if (end < 0) return null;
    const text = String.fromCharCode(...d.subarray(from + 3, end));
    if (isIP(text) !== 6) return null; // (in6_pton)
    address = { family: 6, groups: ipv6Groups(text) };
  }
  const port = portUpTo(d, end + 1, delim);
  return port === null ? null : { address, port: port.port, start: from, end: port.end };
}

/** (|||port|): three equal delimiters, then the port (try_epsv_response). */
function epsvResponse(d: Uint8Array, from: number): Parsed | null {
  if (d.length - from <= 3) return null;
  const delim = d[from];
  if (!validDelimiter(delim) || d[from + 1] !== delim || d[from + 2] !== delim) return null;
  const port = portUpTo(d, from + 3, delim);
  return port === null ? null : { port: port.port, start: from, end: port.end };
}

/** find_pattern for one search: 1 match, 0 not this command, -1 partial. */
function findPattern(d: Uint8Array, s: Search, family: 4 | 6): FtpParse {
  const plen = s.pattern.length;
  const n = Math.min(d.length, plen);
  for (let k = 0; k < n; k++) if (lower(d[k]) !== lower(s.pattern.charCodeAt(k))) return { kind: 'none' };
  if (d.length <= plen) return { kind: 'partial', pattern: s.pattern };
  let from = plen;
  if (s.skip) {
    while (d[from] !== s.skip) {
      if (from === d.length - 1) return { kind: 'partial', pattern: s.pattern };
      from++;
    }
    from++;
  }
  const r = s.parse(d, from, s.term, family);
  if (!r) return { kind: 'partial', pattern: s.pattern };
  return { kind: 'match', command: s.command, address: r.address, port: r.port, span: { start: r.start, end: r.end } };
}

/** What a segment's payload says, for a connection of `family`, sent by the client (dir 0) or the server (dir 1). Never throws. */
export function parseFtpSegment(payload: Uint8Array, dir: 0 | 1, family: 4 | 6): FtpParse {
  for (const s of dir === 0 ? FROM_CLIENT : FROM_SERVER) {
    const r = findPattern(payload, s, family);
    if (r.kind !== 'none') return r;
  }
  return { kind: 'none' };
}

/** NUM_SEQ_TO_REMEMBER. */
const REMEMBERED = 2;

/** struct nf_ct_ftp_master: per direction, the sequence numbers right after a newline. */
export class FtpState {
  readonly afterNewline: [number[], number[]] = [[], []];

  /** find_nl_seq: does a segment starting at `seq` start a line? */
  startsLine(dir: 0 | 1, seq: number): boolean {
    return this.afterNewline[dir].includes(seq);
  }

  /** update_nl_seq: remember `seq` (just after a newline); with two kept, it replaces the older if later. */
  noteNewline(dir: 0 | 1, seq: number): void {
    const kept = this.afterNewline[dir];
    if (kept.includes(seq)) return;
    if (kept.length < REMEMBERED) {
      kept.push(seq);
      return;
    }
    const oldest = before(kept[0], kept[1]) ? 0 : 1;
    if (before(kept[oldest], seq)) kept[oldest] = seq;
  }
}

/** TCP sequence comparison modulo 2^32 (the kernel's before()). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** What the helper decided for one segment: nothing, drop the packet (partial command), or expect a connection. */
export type FtpVerdict =
  | { kind: 'accept' }
  | { kind: 'drop'; why: string }
  | { kind: 'expect'; command: FtpCommand; port: number; address?: FtpAddress; span: MatchSpan };

/**
 * The helper's reading of one established-state segment (help() in nf_conntrack_ftp.c): `seq` is
 * the segment's sequence number, `payload` its TCP data. Updates the newline bookkeeping.
 */
export function ftpSegment(state: FtpState, dir: 0 | 1, family: 4 | 6, seq: number, payload: Uint8Array): FtpVerdict {
  if (payload.length === 0) return { kind: 'accept' };
  const endsInNewline = payload[payload.length - 1] === 10;
  const next = (seq + payload.length) >>> 0;
  let verdict: FtpVerdict = { kind: 'accept' };
  if (state.startsLine(dir, seq)) {
    const r = parseFtpSegment(payload, dir, family);
    if (r.kind === 'partial') return { kind: 'drop', why: `partial matching of '${r.pattern}'` }; // (no newline update)
    if (r.kind === 'match') verdict = { kind: 'expect', command: r.command, port: r.port, address: r.address, span: r.span };
  }
  if (endsInNewline) state.noteNewline(dir, next);
  return verdict;
}
