/**
 * Writes classic pcap files: microsecond timestamps, little-endian, one link type. Enough for
 * test fixtures and sample captures; tcpdump and Wireshark read the result.
 */

export interface PcapRecord {
  tsUs: number;
  data: Uint8Array;
  /** Length on the wire, when the record stands for a frame cut by a snaplen (default data.length). */
  origLength?: number;
}

const MAGIC_US = 0xa1b2c3d4;
const SNAPLEN = 262144;

export function writePcap(records: PcapRecord[], linkType: number): Uint8Array {
  const size = 24 + records.reduce((n, r) => n + 16 + r.data.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC_US, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, SNAPLEN, true);
  view.setUint32(20, linkType, true);
  let o = 24;
  for (const r of records) {
    view.setUint32(o, Math.floor(r.tsUs / 1_000_000), true);
    view.setUint32(o + 4, r.tsUs % 1_000_000, true);
    view.setUint32(o + 8, r.data.length, true);
    view.setUint32(o + 12, r.origLength ?? r.data.length, true);
    out.set(r.data, o + 16);
    o += 16 + r.data.length;
  }
  return out;
}
