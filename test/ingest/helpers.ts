/**
 * Test-only capture writers for the variants ingest/ reads but never writes: big-endian and
 * nanosecond pcap, and pcapng with several sections and interfaces.
 */
import { tcpSegment, ipv4Packet } from '../../ingest/capture/frameBuilders';
import { IPPROTO, TCP_FLAG } from '../../processors/packet';

export interface VariantRecord {
  sec: number;
  /** Microseconds, or nanoseconds when nanos is set. */
  frac: number;
  data: Uint8Array;
  origLength?: number;
}

export function writePcapVariant(
  records: VariantRecord[],
  linkType: number,
  opts: { bigEndian?: boolean; nanos?: boolean } = {},
): Uint8Array {
  const le = !opts.bigEndian;
  const out = new Uint8Array(24 + records.reduce((n, r) => n + 16 + r.data.length, 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, opts.nanos ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, 65535, le);
  v.setUint32(20, linkType, le);
  let o = 24;
  for (const r of records) {
    v.setUint32(o, r.sec, le);
    v.setUint32(o + 4, r.frac, le);
    v.setUint32(o + 8, r.data.length, le);
    v.setUint32(o + 12, r.origLength ?? r.data.length, le);
    out.set(r.data, o + 16);
    o += 16 + r.data.length;
  }
  return out;
}

export interface NgInterface {
  linkType: number;
  snapLen?: number;
  /** Raw if_tsresol byte (e.g. 9 for ns, 0x8a for 2^-10). */
  tsresol?: number;
  /** if_tsoffset in seconds. */
  tsoffset?: number;
  /** if_name, written as UTF-8 without a terminating NUL. */
  name?: string;
}

export type NgBlock =
  | { kind: 'idb'; iface: NgInterface }
  | { kind: 'epb'; interfaceId: number; ts: bigint; data: Uint8Array; origLength?: number }
  | { kind: 'pb'; interfaceId: number; ts: bigint; data: Uint8Array }
  | { kind: 'spb'; data: Uint8Array; origLength?: number }
  | { kind: 'raw'; type: number; body: Uint8Array };

export interface NgSection {
  bigEndian?: boolean;
  blocks: NgBlock[];
}

function block(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const padded = (body.length + 3) & ~3;
  const out = new Uint8Array(12 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, le);
  v.setUint32(4, out.length, le);
  out.set(body, 8);
  v.setUint32(out.length - 4, out.length, le);
  return out;
}

function body(size: number, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(size);
  fill(new DataView(b.buffer));
  return b;
}

function option(code: number, value: Uint8Array, le: boolean): Uint8Array {
  const out = new Uint8Array(4 + ((value.length + 3) & ~3));
  const v = new DataView(out.buffer);
  v.setUint16(0, code, le);
  v.setUint16(2, value.length, le);
  out.set(value, 4);
  return out;
}

function cat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function writePcapng(sections: NgSection[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const s of sections) {
    const le = !s.bigEndian;
    parts.push(
      block(0x0a0d0d0a, body(16, (v) => {
        v.setUint32(0, 0x1a2b3c4d, le);
        v.setUint16(4, 1, le);
        v.setBigInt64(8, -1n, le);
      }), le),
    );
    for (const b of s.blocks) {
      if (b.kind === 'idb') {
        const opts: Uint8Array[] = [];
        if (b.iface.name !== undefined) opts.push(option(2, new TextEncoder().encode(b.iface.name), le));
        if (b.iface.tsresol !== undefined) opts.push(option(9, Uint8Array.of(b.iface.tsresol), le));
        if (b.iface.tsoffset !== undefined) {
          opts.push(option(14, body(8, (v) => v.setBigInt64(0, BigInt(b.iface.tsoffset ?? 0), le)), le));
        }
        if (opts.length) opts.push(option(0, new Uint8Array(0), le));
        const fixed = body(8, (v) => {
          v.setUint16(0, b.iface.linkType, le);
          v.setUint32(4, b.iface.snapLen ?? 0, le);
        });
        parts.push(block(1, cat([fixed, ...opts]), le));
      } else if (b.kind === 'epb' || b.kind === 'pb') {
        const fixed = body(20, (v) => {
          if (b.kind === 'epb') v.setUint32(0, b.interfaceId, le);
          else v.setUint16(0, b.interfaceId, le);
          v.setUint32(4, Number(b.ts >> 32n), le);
          v.setUint32(8, Number(b.ts & 0xffffffffn), le);
          v.setUint32(12, b.data.length, le);
          v.setUint32(16, b.kind === 'epb' ? (b.origLength ?? b.data.length) : b.data.length, le);
        });
        parts.push(block(b.kind === 'epb' ? 6 : 2, cat([fixed, b.data]), le));
      } else if (b.kind === 'spb') {
        const fixed = body(4, (v) => v.setUint32(0, b.origLength ?? b.data.length, le));
        parts.push(block(3, cat([fixed, b.data]), le));
      } else {
        parts.push(block(b.type, b.body, le));
      }
    }
  }
  return cat(parts);
}

/** A small valid IPv4 TCP SYN, the default packet for tests that need "some IP packet". */
export function sampleTcpSyn(sport = 40000): Uint8Array {
  return ipv4Packet({
    src: '198.18.0.1',
    dst: '198.18.0.2',
    proto: IPPROTO.TCP,
    payload: tcpSegment({ sport, dport: 80, seq: 1000, flags: TCP_FLAG.SYN, options: { mss: 1460 } }),
  });
}

/** Flag letters in the order the oracle's verdicts.jsonl spells them (scapy's FSRPAUEC). */
export function tcpFlagText(flags: number): string {
  return [...'FSRPAUEC'].filter((_, i) => flags & (1 << i)).join('');
}
