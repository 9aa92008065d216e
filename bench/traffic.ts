/**
 * The benchmark's synthetic traffic, written as real IPv4 bytes so that both forms the engine is
 * measured on come from the project's own code: "decoded packets" are what ingest/decode makes of
 * these bytes (the exact objects a capture would hand over), and "raw capture bytes" are the same
 * packets in Ethernet frames in a pcap file. Flow i is client 10.a.b.c (i's low 24 bits), port
 * 1024 + i % 60000, talking to 192.0.2.1 port 443 (TCP) or 53 (UDP). Checksums stay zero:
 * nf_conntrack_checksum is off by default, and the decoder does not verify them.
 */
import type { IpPacket } from '../processors/packet';
import { decodeIp } from '../ingest/decode/ip';

const SERVER = 0xc0000201; // 192.0.2.1
const ETH_HEADER = 14;
const PCAP_FILE_HEADER = 24;
const PCAP_RECORD_HEADER = 16;

const clientOf = (i: number): number => ((10 << 24) | (i & 0xffffff)) >>> 0;
const clientPort = (i: number): number => 1024 + (i % 60000);

/** IPv4 packets appended to one growing buffer (offsets kept), to decode or frame later. */
export class PacketList {
  private buf = new Uint8Array(1 << 20);
  private used = 0;
  readonly starts: number[] = [];

  get length(): number {
    return this.starts.length;
  }

  /** A TCP segment of flow i: `reply` runs server -> client; `payload` bytes of zeros. */
  tcp(i: number, reply: boolean, flags: number, seq: number, ack: number, payload: number): void {
    const d = this.ip(i, reply, 6, 20 + payload);
    const o = this.used + 20;
    put16(d, o, reply ? 443 : clientPort(i));
    put16(d, o + 2, reply ? clientPort(i) : 443);
    put32(d, o + 4, seq);
    put32(d, o + 8, ack);
    d[o + 12] = 5 << 4; // data offset: 20-byte header, no options
    d[o + 13] = flags;
    put16(d, o + 14, 65535);
    this.used += 40 + payload;
  }

  /** A 32-byte DNS-sized UDP datagram of flow i (query, or its answer when `reply`). */
  udp(i: number, reply: boolean): void {
    const d = this.ip(i, reply, 17, 40);
    const o = this.used + 20;
    put16(d, o, reply ? 53 : clientPort(i));
    put16(d, o + 2, reply ? clientPort(i) : 53);
    put16(d, o + 4, 40);
    this.used += 60;
  }

  /** Packet k as ingest/decode hands it to the engine. */
  decoded(k: number): IpPacket {
    const r = decodeIp(this.buf, this.starts[k], this.end(k), 4);
    if (r.kind !== 'ip') throw new Error(`bench packet ${k} does not decode: ${r.reason}`);
    return r.packet;
  }

  /** A pcap file (Ethernet, microsecond timestamps 1 µs apart from `firstUs`) of every packet. */
  pcap(firstUs: number): Uint8Array {
    const out = new Uint8Array(PCAP_FILE_HEADER + this.starts.length * (PCAP_RECORD_HEADER + ETH_HEADER) + this.used);
    const view = new DataView(out.buffer);
    view.setUint32(0, 0xa1b2c3d4, true);
    view.setUint16(4, 2, true);
    view.setUint16(6, 4, true);
    view.setUint32(16, 65535, true);
    view.setUint32(20, 1, true); // LINKTYPE_ETHERNET
    let o = PCAP_FILE_HEADER;
    for (let k = 0; k < this.starts.length; k++) {
      const tsUs = firstUs + k;
      const len = ETH_HEADER + this.end(k) - this.starts[k];
      view.setUint32(o, Math.floor(tsUs / 1e6), true);
      view.setUint32(o + 4, tsUs % 1e6, true);
      view.setUint32(o + 8, len, true);
      view.setUint32(o + 12, len, true);
      o += PCAP_RECORD_HEADER;
      out[o + 1] = out[o + 7] = 2; // locally administered MACs; the decoder reads only the EtherType
      put16(out, o + 12, 0x0800);
      out.set(this.buf.subarray(this.starts[k], this.end(k)), o + ETH_HEADER);
      o += len;
    }
    return out;
  }

  private end(k: number): number {
    return k + 1 < this.starts.length ? this.starts[k + 1] : this.used;
  }

  /** Room for `length` more bytes, and the IPv4 header of flow i's next packet. */
  private ip(i: number, reply: boolean, proto: number, l4Length: number): Uint8Array {
    const length = 20 + l4Length;
    if (this.used + length > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.used + length));
      bigger.set(this.buf.subarray(0, this.used));
      this.buf = bigger;
    }
    const d = this.buf, o = this.used;
    d.fill(0, o, o + length);
    d[o] = 0x45;
    put16(d, o + 2, length);
    d[o + 8] = 64;
    d[o + 9] = proto;
    put32(d, o + 12, reply ? SERVER : clientOf(i));
    put32(d, o + 16, reply ? clientOf(i) : SERVER);
    this.starts.push(o);
    return d;
  }
}

function put16(d: Uint8Array, o: number, v: number): void {
  d[o] = (v >>> 8) & 0xff;
  d[o + 1] = v & 0xff;
}

function put32(d: Uint8Array, o: number, v: number): void {
  put16(d, o, v >>> 16);
  put16(d, o + 2, v & 0xffff);
}

/** A workload: its packets, of which those before `timedFrom` set the flows up and are not timed. */
export interface Workload {
  packets: PacketList;
  timedFrom: number;
}

export type WorkloadKind = 'udp' | 'tcp';

export function workload(kind: WorkloadKind, flows: number): Workload {
  const packets = new PacketList();
  if (kind === 'udp') {
    // Each flow's first query creates it; then a query and its answer per flow, every lookup a hit.
    for (let i = 0; i < flows; i++) packets.udp(i, false);
    const timedFrom = packets.length;
    for (let i = 0; i < flows; i++) {
      packets.udp(i, false);
      packets.udp(i, true);
    }
    return { packets, timedFrom };
  }
  // Handshakes first; then a 100-byte data segment and its ACK per flow (the window-tracking path).
  for (let i = 0; i < flows; i++) {
    packets.tcp(i, false, 0x02, 1000, 0, 0);
    packets.tcp(i, true, 0x12, 5000, 1001, 0);
    packets.tcp(i, false, 0x10, 1001, 5001, 0);
  }
  const timedFrom = packets.length;
  for (let i = 0; i < flows; i++) {
    packets.tcp(i, false, 0x18, 1001, 5001, 100);
    packets.tcp(i, true, 0x10, 5001, 1101, 0);
  }
  return { packets, timedFrom };
}
