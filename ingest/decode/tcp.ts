/**
 * TCP header and options. The options conntrack cares about are the ones that change window
 * tracking: MSS, window scale, SACK-permitted, SACK blocks and timestamps.
 */
import type { TcpHeader, TcpOptions } from '../../processors/packet';
import { u16, u32 } from './bytes';

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERM = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;
const MIN_HEADER = 20;
/** What an ICMP error must quote at least (RFC 792): ports and sequence number. */
const MIN_QUOTED = 8;

/**
 * Parses the option bytes [start, end). Like the kernel's tcp_parse_options it stops at the
 * first option whose length is impossible, keeping what it parsed before.
 */
export function parseTcpOptions(d: Uint8Array, start: number, end: number): TcpOptions {
  // Every option field in the literal, absent ones undefined: one object shape for all packets,
  // so the tracker's reads of options (SACK blocks on every packet once SACK is permitted) stay
  // monomorphic. JSON and toEqual ignore undefined fields.
  const opts: TcpOptions = { mss: undefined, wscale: undefined, sackPermitted: undefined, sack: undefined, timestamp: undefined };
  for (let o = start; o < end; ) {
    const kind = d[o];
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= end) break;
    const len = d[o + 1];
    if (len < 2 || o + len > end) break;
    if (kind === OPT_MSS && len === 4) opts.mss = u16(d, o + 2);
    else if (kind === OPT_WSCALE && len === 3) opts.wscale = d[o + 2];
    else if (kind === OPT_SACK_PERM && len === 2) opts.sackPermitted = true;
    else if (kind === OPT_TIMESTAMP && len === 10) opts.timestamp = { value: u32(d, o + 2), echo: u32(d, o + 6) };
    else if (kind === OPT_SACK && len >= 10 && (len - 2) % 8 === 0) {
      const blocks: Array<[number, number]> = [];
      for (let b = o + 2; b < o + len; b += 8) blocks.push([u32(d, b), u32(d, b + 4)]);
      opts.sack = blocks;
    }
    o += len;
  }
  return opts;
}

/**
 * Decodes the TCP header at [start, end) (end = captured end of the IP packet). `segmentLength`
 * is the TCP length the IP header claims, which gives dataLength even when the capture was cut.
 * Returns a reason string when the header is unusable. A quoted header (inside an ICMP error)
 * needs only its first 8 bytes; the fields it lacks read as 0.
 */
export function decodeTcp(
  d: Uint8Array,
  start: number,
  end: number,
  segmentLength: number,
  quoted: boolean,
): TcpHeader | string {
  const avail = end - start;
  const need = quoted ? MIN_QUOTED : MIN_HEADER;
  if (avail < need) return `truncated tcp header: ${Math.max(0, avail)} of ${need} bytes`;
  const sport = u16(d, start);
  const dport = u16(d, start + 2);
  const seq = u32(d, start + 4);
  if (avail < MIN_HEADER) {
    return { kind: 'tcp', sport, dport, seq, ack: 0, flags: 0, window: 0, headerLength: 0, dataLength: 0, options: parseTcpOptions(d, start, start), payload: undefined };
  }
  const headerLength = (d[start + 12] >> 4) * 4;
  if (!quoted) {
    if (headerLength < MIN_HEADER) return `bad tcp header length ${headerLength}`;
    if (headerLength > segmentLength) return `bad tcp header length ${headerLength} > segment ${segmentLength} bytes`;
  }
  const optionsEnd = Math.min(start + headerLength, end);
  const payloadStart = Math.min(start + Math.max(headerLength, MIN_HEADER), end);
  return {
    kind: 'tcp',
    sport,
    dport,
    seq,
    ack: u32(d, start + 8),
    flags: d[start + 13],
    window: u16(d, start + 14),
    headerLength,
    dataLength: Math.max(0, segmentLength - headerLength),
    options: parseTcpOptions(d, start + MIN_HEADER, optionsEnd),
    payload: d.subarray(payloadStart, end),
  };
}
