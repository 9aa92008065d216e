/**
 * Link-layer framings around an IP packet, one per link type the decoder reads. Used by tests
 * and the sample-capture generator; each returns the frame bytes for writePcap.
 */

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

function put16(d: Uint8Array, o: number, v: number, littleEndian = false): void {
  d[o + (littleEndian ? 1 : 0)] = (v >>> 8) & 0xff;
  d[o + (littleEndian ? 0 : 1)] = v & 0xff;
}

function withHeader(header: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + payload.length);
  out.set(header, 0);
  out.set(payload, header.length);
  return out;
}

/** The EtherType for an IP packet, read from its version nibble. */
function ipEthertype(ip: Uint8Array): number {
  return ip.length > 0 && ip[0] >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
}

export interface EthernetSpec {
  payload: Uint8Array;
  /** Defaults to the EtherType for the payload's IP version. */
  etherType?: number;
  /** VLAN ids, outermost first. */
  vlans?: number[];
  /** TPID per tag, outermost first; defaults to 802.1ad (0x88a8) outside, 802.1Q (0x8100) inside. */
  tpids?: number[];
  dst?: Uint8Array;
  src?: Uint8Array;
}

export function ethernetFrame(spec: EthernetSpec): Uint8Array {
  const vlans = spec.vlans ?? [];
  const h = new Uint8Array(14 + 4 * vlans.length);
  h.set(spec.dst ?? [0x02, 0, 0, 0, 0, 0x02], 0);
  h.set(spec.src ?? [0x02, 0, 0, 0, 0, 0x01], 6);
  let o = 12;
  vlans.forEach((id, i) => {
    put16(h, o, spec.tpids?.[i] ?? (i === vlans.length - 1 ? 0x8100 : 0x88a8));
    put16(h, o + 2, id & 0x0fff);
    o += 4;
  });
  put16(h, o, spec.etherType ?? ipEthertype(spec.payload));
  return withHeader(h, spec.payload);
}

/** PPPoE session header + PPP protocol, for ethernetFrame({etherType: 0x8864}). */
export function pppoePayload(ip: Uint8Array, sessionId = 1): Uint8Array {
  const h = new Uint8Array(8);
  h[0] = 0x11; // version 1, type 1
  put16(h, 2, sessionId);
  put16(h, 4, ip.length + 2);
  put16(h, 6, ip[0] >> 4 === 6 ? 0x0057 : 0x0021);
  return withHeader(h, ip);
}

/** An MPLS label stack (bottom-of-stack set on the last), for ethernetFrame({etherType: 0x8847}). */
export function mplsPayload(labels: number[], ip: Uint8Array): Uint8Array {
  const h = new Uint8Array(4 * labels.length);
  labels.forEach((label, i) => {
    const last = i === labels.length - 1;
    h[4 * i] = (label >>> 12) & 0xff;
    h[4 * i + 1] = (label >>> 4) & 0xff;
    h[4 * i + 2] = ((label & 0xf) << 4) | (last ? 1 : 0);
    h[4 * i + 3] = 64; // TTL
  });
  return withHeader(h, ip);
}

/** Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113). */
export function linuxSllFrame(ip: Uint8Array, protocol = ipEthertype(ip)): Uint8Array {
  const h = new Uint8Array(16);
  put16(h, 0, 0); // packet type: to us
  put16(h, 2, 1); // ARPHRD_ETHER
  put16(h, 4, 6);
  h.set([0x02, 0, 0, 0, 0, 0x01], 6);
  put16(h, 14, protocol);
  return withHeader(h, ip);
}

/** Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276). */
export function linuxSll2Frame(ip: Uint8Array, protocol = ipEthertype(ip), ifIndex = 1): Uint8Array {
  const h = new Uint8Array(20);
  put16(h, 0, protocol);
  h[4] = (ifIndex >>> 24) & 0xff;
  h[5] = (ifIndex >>> 16) & 0xff;
  put16(h, 6, ifIndex & 0xffff);
  put16(h, 8, 1); // ARPHRD_ETHER
  h[10] = 0; // packet type
  h[11] = 6;
  h.set([0x02, 0, 0, 0, 0, 0x01], 12);
  return withHeader(h, ip);
}

/**
 * BSD loopback: a 4-byte address family, in the host's byte order for LINKTYPE_NULL (0) or
 * big-endian for LINKTYPE_LOOP (108). IPv6 defaults to 30 (Darwin); 24 and 28 also occur.
 */
export function loopbackFrame(ip: Uint8Array, opts: { littleEndian?: boolean; af?: number } = {}): Uint8Array {
  const af = opts.af ?? (ip[0] >> 4 === 6 ? 30 : 2);
  const h = new Uint8Array(4);
  const le = opts.littleEndian ?? true;
  for (let i = 0; i < 4; i++) h[le ? i : 3 - i] = (af >>> (8 * i)) & 0xff;
  return withHeader(h, ip);
}

/** One netlink attribute: length and type in the logging host's byte order, padded to 4. */
function tlv(type: number, value: Uint8Array, le: boolean): Uint8Array {
  const out = new Uint8Array((4 + value.length + 3) & ~3);
  put16(out, 0, 4 + value.length, le);
  put16(out, 2, type, le);
  out.set(value, 4);
  return out;
}

/** NFLOG (LINKTYPE_NFLOG, 239): header, packet-header TLV, prefix TLV, then the payload TLV. */
export function nflogFrame(ip: Uint8Array, opts: { littleEndian?: boolean; prefix?: string } = {}): Uint8Array {
  const le = opts.littleEndian ?? true;
  const v6 = ip[0] >> 4 === 6;
  const hdr = Uint8Array.of(v6 ? 10 : 2, 0, 0, 1); // family, version, resource id (big-endian)
  const packetHdr = new Uint8Array(4);
  put16(packetHdr, 0, v6 ? ETH_IPV6 : ETH_IPV4); // hw_protocol is always network order
  packetHdr[2] = 0; // hook
  const prefix = new TextEncoder().encode(`${opts.prefix ?? 'ctflow'}\0`);
  const parts = [hdr, tlv(1, packetHdr, le), tlv(10, prefix, le), tlv(9, ip, le)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
