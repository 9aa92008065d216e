/**
 * Link layer: from a frame's link type and bytes to the offset of its IP header. Only the
 * framing is read; frames that carry something other than IP are "not-ip" (ARP, LLDP, ...),
 * which is normal traffic, while frames too short for their own framing are "malformed".
 */
import { LINKTYPE } from '../capture/types';
import { u16 } from './bytes';

export type LinkResult =
  | {
      kind: 'ip';
      /** Offset of the IP header in the frame. */
      offset: number;
      /** End of the bytes that belong to the IP packet (NFLOG has TLVs after it). */
      end: number;
      /** IP version the framing announced; undefined when only the header can tell (raw IP). */
      family?: 4 | 6;
      /** Outermost 802.1Q/802.1ad VLAN id. */
      vlan?: number;
    }
  | { kind: 'not-ip'; reason: string }
  | { kind: 'malformed'; reason: string };

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_ARP = 0x0806;
const ETH_VLAN_TPIDS = new Set([0x8100, 0x88a8, 0x9100, 0x9200]);
const ETH_PPPOE_SESSION = 0x8864;
const ETH_MPLS = new Set([0x8847, 0x8848]);
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;
/** BSD address families for IPv6 differ by OS (NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30). */
const AF_INET = 2;
const AF_INET6_BSD = new Set([24, 28, 30]);
const ARPHRD_NETLINK = 824;
const NFULA_PAYLOAD = 9;
/** Netlink attribute types carry two flag bits (nested, network byte order) above the type. */
const NLA_TYPE_MASK = 0x3fff;

const hex4 = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;
const truncated = (what: string, have: number, need: number): LinkResult => ({
  kind: 'malformed',
  reason: `truncated ${what}: ${Math.max(0, have)} of ${need} bytes`,
});

function ip(offset: number, end: number, family?: 4 | 6, vlan?: number): LinkResult {
  return { kind: 'ip', offset, end, family, vlan };
}

/** Guesses IPv4/IPv6 from the version nibble, for encapsulations that do not say (MPLS, NFLOG). */
function byVersionNibble(d: Uint8Array, off: number, what: string): LinkResult {
  if (off >= d.length) return truncated(`${what} payload`, 0, 1);
  const version = d[off] >> 4;
  if (version === 4 || version === 6) return ip(off, d.length, version);
  return { kind: 'not-ip', reason: `${what} payload is not ip (version nibble ${version})` };
}

/**
 * Follows an EtherType through VLAN tags, PPPoE and MPLS to the IP header. `off` is where the
 * payload that `type` describes starts. The outermost VLAN id is recorded.
 */
function fromEthertype(d: Uint8Array, type: number, off: number): LinkResult {
  let vlan: number | undefined;
  for (;;) {
    if (type === ETH_IPV4) return ip(off, d.length, 4, vlan);
    if (type === ETH_IPV6) return ip(off, d.length, 6, vlan);
    if (ETH_VLAN_TPIDS.has(type)) {
      if (d.length - off < 4) return truncated('vlan tag', d.length - off, 4);
      vlan ??= u16(d, off) & 0x0fff;
      type = u16(d, off + 2);
      off += 4;
      continue;
    }
    if (type === ETH_PPPOE_SESSION) {
      // 6-byte PPPoE header, then the 2-byte PPP protocol number.
      if (d.length - off < 8) return truncated('pppoe header', d.length - off, 8);
      const proto = u16(d, off + 6);
      if (proto === PPP_IPV4) return ip(off + 8, d.length, 4, vlan);
      if (proto === PPP_IPV6) return ip(off + 8, d.length, 6, vlan);
      return { kind: 'not-ip', reason: `pppoe protocol ${hex4(proto)}` };
    }
    if (ETH_MPLS.has(type)) {
      // Label stack entries are 4 bytes; the bottom-of-stack bit is the low bit of byte 2.
      for (;;) {
        if (d.length - off < 4) return truncated('mpls label', d.length - off, 4);
        const bottom = d[off + 2] & 1;
        off += 4;
        if (bottom) break;
      }
      const r = byVersionNibble(d, off, 'mpls');
      return r.kind === 'ip' ? { ...r, vlan } : r;
    }
    if (type === ETH_ARP) return { kind: 'not-ip', reason: 'arp' };
    return { kind: 'not-ip', reason: `ethertype ${hex4(type)}` };
  }
}

function ethernet(d: Uint8Array): LinkResult {
  if (d.length < 14) return truncated('ethernet header', d.length, 14);
  const type = u16(d, 12);
  if (type >= 0x0600) return fromEthertype(d, type, 14);
  // An 802.3 length field: only LLC/SNAP (AA AA 03, OUI, EtherType) can carry IP.
  if (d.length >= 22 && d[14] === 0xaa && d[15] === 0xaa && d[16] === 0x03) return fromEthertype(d, u16(d, 20), 22);
  return { kind: 'not-ip', reason: '802.3 llc frame' };
}

function linuxSll(d: Uint8Array): LinkResult {
  if (d.length < 16) return truncated('linux sll header', d.length, 16);
  if (u16(d, 2) === ARPHRD_NETLINK) return { kind: 'not-ip', reason: 'netlink' };
  return fromEthertype(d, u16(d, 14), 16);
}

function linuxSll2(d: Uint8Array): LinkResult {
  if (d.length < 20) return truncated('linux sll2 header', d.length, 20);
  if (u16(d, 8) === ARPHRD_NETLINK) return { kind: 'not-ip', reason: 'netlink' };
  return fromEthertype(d, u16(d, 0), 20);
}

/** DLT_NULL stores the family in the capturing host's byte order; LOOP always big-endian. */
function loopback(d: Uint8Array, hostOrder: boolean): LinkResult {
  if (d.length < 4) return truncated('loopback header', d.length, 4);
  const be = ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
  const le = ((d[3] << 24) | (d[2] << 16) | (d[1] << 8) | d[0]) >>> 0;
  // A family is a small number, so its zero bytes give away the order it was written in.
  const af = hostOrder && d[0] === 0 && d[1] === 0 ? be : hostOrder ? le : be;
  if (af === AF_INET) return ip(4, d.length, 4);
  if (AF_INET6_BSD.has(af)) return ip(4, d.length, 6);
  return { kind: 'not-ip', reason: `address family ${af}` };
}

function ppp(d: Uint8Array): LinkResult {
  let off = d.length >= 2 && d[0] === 0xff && d[1] === 0x03 ? 2 : 0; // optional HDLC address/control
  if (off >= d.length) return truncated('ppp header', d.length, off + 1);
  // Protocol field compression: an odd first byte is a one-byte protocol number.
  let proto: number;
  if (d[off] & 1) proto = d[off++];
  else {
    if (d.length - off < 2) return truncated('ppp header', d.length, off + 2);
    proto = u16(d, off);
    off += 2;
  }
  if (proto === PPP_IPV4) return ip(off, d.length, 4);
  if (proto === PPP_IPV6) return ip(off, d.length, 6);
  return { kind: 'not-ip', reason: `ppp protocol ${hex4(proto)}` };
}

/** True when (len, type) read in one byte order look like a netlink attribute. */
function plausibleTlv(len: number, type: number, left: number): boolean {
  const t = type & NLA_TYPE_MASK;
  return len >= 4 && len <= left && t >= 1 && t <= 32;
}

/** NFLOG: 4-byte header, then TLVs in the logging host's byte order, each padded to 4 bytes. */
function nflog(d: Uint8Array): LinkResult {
  if (d.length < 4) return truncated('nflog header', d.length, 4);
  let le = true;
  if (d.length >= 8) {
    const left = d.length - 4;
    const leOk = plausibleTlv(d[4] | (d[5] << 8), d[6] | (d[7] << 8), left);
    le = leOk || !plausibleTlv(u16(d, 4), u16(d, 6), left);
  }
  for (let off = 4; off < d.length; ) {
    if (d.length - off < 4) return truncated('nflog tlv header', d.length - off, 4);
    const len = le ? d[off] | (d[off + 1] << 8) : u16(d, off);
    const type = (le ? d[off + 2] | (d[off + 3] << 8) : u16(d, off + 2)) & NLA_TYPE_MASK;
    if (len < 4) return { kind: 'malformed', reason: `bad nflog tlv length ${len}` };
    if (type === NFULA_PAYLOAD) {
      const end = Math.min(off + len, d.length);
      const r = byVersionNibble(d, off + 4, 'nflog');
      return r.kind === 'ip' ? { ...r, end } : r;
    }
    off += (len + 3) & ~3;
  }
  return { kind: 'not-ip', reason: 'nflog record without payload' };
}

/** Finds the IP header in a frame of the given link type. Never throws. */
export function findIpHeader(linkType: number, d: Uint8Array): LinkResult {
  switch (linkType) {
    case LINKTYPE.ETHERNET:
      return ethernet(d);
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_ALT12:
    case LINKTYPE.RAW_ALT14:
      return ip(0, d.length);
    case LINKTYPE.IPV4:
      return ip(0, d.length, 4);
    case LINKTYPE.IPV6:
      return ip(0, d.length, 6);
    case LINKTYPE.LINUX_SLL:
      return linuxSll(d);
    case LINKTYPE.LINUX_SLL2:
      return linuxSll2(d);
    case LINKTYPE.NULL:
      return loopback(d, true);
    case LINKTYPE.LOOP:
      return loopback(d, false);
    case LINKTYPE.PPP:
      return ppp(d);
    case LINKTYPE.NFLOG:
      return nflog(d);
    case LINKTYPE.UNDECLARED:
      return { kind: 'malformed', reason: 'packet block names an undeclared pcapng interface' };
    default:
      return { kind: 'not-ip', reason: `unsupported link type ${linkType}` };
  }
}
