/**
 * Builders for IP packets and transport headers, used by tests and by the sample-capture
 * generator. They produce valid, checksummed packets (other tools read what we write):
 * transport builders leave the checksum 0 and the IP builders fill it in, because the TCP,
 * UDP and ICMPv6 checksums cover a pseudo-header only the IP layer knows.
 * Link-layer framings live in linkBuilders.ts and are re-exported here.
 */
import { IPPROTO } from '../../processors/packet';
import { parseIpv4, parseIpv6 } from '../decode/address';

export { ethernetFrame, linuxSllFrame, linuxSll2Frame, loopbackFrame, mplsPayload, nflogFrame, pppoePayload } from './linkBuilders';

/** RFC 1071 ones'-complement sum of `parts` (concatenated), folded and complemented. */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = false; // an odd-length part shifts the byte pairing of the parts after it
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      sum += odd ? p[i] : p[i] << 8;
      odd = !odd;
    }
    sum = (sum % 0x10000) + Math.floor(sum / 0x10000); // plain arithmetic: >>> would wrap past 2^32
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function put16(d: Uint8Array, o: number, v: number): void {
  d[o] = (v >>> 8) & 0xff;
  d[o + 1] = v & 0xff;
}

function put32(d: Uint8Array, o: number, v: number): void {
  put16(d, o, v >>> 16);
  put16(d, o + 2, v & 0xffff);
}

/** Where each transport keeps its checksum (ICMPv4 has no pseudo-header; the others do). */
const CHECKSUM_AT: Record<number, number> = { [IPPROTO.TCP]: 16, [IPPROTO.UDP]: 6, [IPPROTO.UDPLITE]: 6, [IPPROTO.ICMP]: 2, [IPPROTO.ICMPV6]: 2 };

/** Fills the transport checksum of a whole (unfragmented) segment in place. */
function fillL4Checksum(proto: number, segment: Uint8Array, pseudo: Uint8Array | undefined): void {
  const at = CHECKSUM_AT[proto];
  if (at === undefined || segment.length < at + 2) return;
  put16(segment, at, 0);
  const sum = pseudo ? internetChecksum(pseudo, segment) : internetChecksum(segment);
  // UDP sends a computed 0 as 0xffff, since 0 means "no checksum".
  put16(segment, at, sum === 0 && proto === IPPROTO.UDP ? 0xffff : sum);
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  proto: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  mf?: boolean;
  df?: boolean;
  tos?: number;
  /** Raw IPv4 options; padded with zeros (end of list) to a multiple of 4 bytes. */
  options?: Uint8Array;
}

export function ipv4Packet(spec: Ipv4Spec): Uint8Array {
  const optLen = spec.options ? (spec.options.length + 3) & ~3 : 0;
  const hl = 20 + optLen;
  const h = new Uint8Array(hl);
  h[0] = 0x40 | (hl / 4);
  h[1] = spec.tos ?? 0;
  put16(h, 2, hl + spec.payload.length);
  put16(h, 4, spec.id ?? 0);
  put16(h, 6, (spec.mf ? 0x2000 : 0) | (spec.df ? 0x4000 : 0) | ((spec.fragOffset ?? 0) / 8));
  h[8] = spec.ttl ?? 64;
  h[9] = spec.proto;
  const src = parseIpv4(spec.src);
  const dst = parseIpv4(spec.dst);
  h.set(src, 12);
  h.set(dst, 16);
  if (spec.options) h.set(spec.options, 20);
  put16(h, 10, internetChecksum(h));
  const payload = Uint8Array.from(spec.payload);
  if (!spec.mf && !spec.fragOffset) {
    const pseudo = new Uint8Array(12);
    pseudo.set(src, 0);
    pseudo.set(dst, 4);
    pseudo[9] = spec.proto;
    put16(pseudo, 10, payload.length);
    fillL4Checksum(spec.proto, payload, spec.proto === IPPROTO.ICMP ? undefined : pseudo);
  }
  return concat(h, payload);
}

/** An IPv6 extension header; the builder chains the next-header fields itself. */
export type Ipv6Extension =
  | { type: 0 | 43 | 60 | 51; body?: Uint8Array }
  | { type: 44; offset: number; mf: boolean; id: number };

function extensionBytes(ext: Ipv6Extension, next: number): Uint8Array {
  if (ext.type === 44) {
    const f = new Uint8Array(8);
    f[0] = next;
    put16(f, 2, (ext.offset & 0xfff8) | (ext.mf ? 1 : 0));
    put32(f, 4, ext.id);
    return f;
  }
  // Hop-by-hop/routing/destination options count 8-byte units beyond the first; AH counts
  // 4-byte units beyond the first two. Bodies are zero-padded (Pad1 options) to fit.
  const unit = ext.type === 51 ? 4 : 8;
  const body = ext.body ?? new Uint8Array(0);
  const total = Math.max(unit === 4 ? 12 : 8, Math.ceil((body.length + 2) / 8) * 8);
  const out = new Uint8Array(total);
  out[0] = next;
  out[1] = ext.type === 51 ? total / 4 - 2 : total / 8 - 1;
  out.set(body, 2);
  return out;
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  /** Upper-layer protocol (after any extension headers). */
  nextHeader: number;
  payload: Uint8Array;
  hopLimit?: number;
  flowLabel?: number;
  extensions?: Ipv6Extension[];
}

export function ipv6Packet(spec: Ipv6Spec): Uint8Array {
  const exts = spec.extensions ?? [];
  const chain = exts.map((e, i) => extensionBytes(e, i + 1 < exts.length ? exts[i + 1].type : spec.nextHeader));
  const payload = Uint8Array.from(spec.payload);
  const src = parseIpv6(spec.src);
  const dst = parseIpv6(spec.dst);
  const fragmented = exts.some((e) => e.type === 44 && (e.offset !== 0 || e.mf));
  if (!fragmented) {
    const pseudo = new Uint8Array(40);
    pseudo.set(src, 0);
    pseudo.set(dst, 16);
    put32(pseudo, 32, payload.length);
    pseudo[39] = spec.nextHeader;
    fillL4Checksum(spec.nextHeader, payload, pseudo);
  }
  const h = new Uint8Array(40);
  put32(h, 0, (6 << 28) | ((spec.flowLabel ?? 0) & 0xfffff));
  put16(h, 4, chain.reduce((n, c) => n + c.length, 0) + payload.length);
  h[6] = exts.length ? exts[0].type : spec.nextHeader;
  h[7] = spec.hopLimit ?? 64;
  h.set(src, 8);
  h.set(dst, 24);
  return concat(h, ...chain, payload);
}

export interface TcpOptionsSpec {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  sack?: Array<[number, number]>;
  timestamp?: { value: number; echo: number };
}

function tcpOptionBytes(o: TcpOptionsSpec): number[] {
  const b: number[] = [];
  if (o.mss !== undefined) b.push(2, 4, (o.mss >> 8) & 0xff, o.mss & 0xff);
  if (o.sackPermitted) b.push(4, 2);
  if (o.timestamp) {
    const t = new Uint8Array(10);
    t[0] = 8;
    t[1] = 10;
    put32(t, 2, o.timestamp.value);
    put32(t, 6, o.timestamp.echo);
    b.push(...t);
  }
  if (o.wscale !== undefined) b.push(1, 3, 3, o.wscale); // NOP first, as Linux aligns it
  if (o.sack?.length) {
    const s = new Uint8Array(2 + 8 * o.sack.length);
    s[0] = 5;
    s[1] = s.length;
    o.sack.forEach(([l, r], i) => (put32(s, 2 + 8 * i, l), put32(s, 6 + 8 * i, r)));
    b.push(...s);
  }
  while (b.length % 4) b.push(0); // end-of-list padding
  return b;
}

export interface TcpSpec {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  /** Header byte 13 (TCP_FLAG bits). */
  flags: number;
  window?: number;
  options?: TcpOptionsSpec;
  payload?: Uint8Array;
}

export function tcpSegment(spec: TcpSpec): Uint8Array {
  const opts = tcpOptionBytes(spec.options ?? {});
  const payload = spec.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(20 + opts.length + payload.length);
  put16(seg, 0, spec.sport);
  put16(seg, 2, spec.dport);
  put32(seg, 4, spec.seq);
  put32(seg, 8, spec.ack ?? 0);
  seg[12] = ((20 + opts.length) / 4) << 4;
  seg[13] = spec.flags;
  put16(seg, 14, spec.window ?? 65535);
  seg.set(opts, 20);
  seg.set(payload, 20 + opts.length);
  return seg;
}

export function udpDatagram(spec: { sport: number; dport: number; payload?: Uint8Array; length?: number }): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const d = new Uint8Array(8 + payload.length);
  put16(d, 0, spec.sport);
  put16(d, 2, spec.dport);
  put16(d, 4, spec.length ?? d.length);
  d.set(payload, 8);
  return d;
}

/** An ICMP or ICMPv6 message: id/seq fill bytes 4-7 (for errors, leave them 0 or set `rest`). */
export function icmpMessage(spec: { type: number; code?: number; id?: number; seq?: number; rest?: number; payload?: Uint8Array }): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const m = new Uint8Array(8 + payload.length);
  m[0] = spec.type;
  m[1] = spec.code ?? 0;
  if (spec.rest !== undefined) put32(m, 4, spec.rest);
  else {
    put16(m, 4, spec.id ?? 0);
    put16(m, 6, spec.seq ?? 0);
  }
  m.set(payload, 8);
  return m;
}
