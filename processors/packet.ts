/**
 * The decoded packet: what ingest/ produces and the engine consumes. Defined once, shared by
 * every layer. Addresses are kept in their canonical text form (dotted quad, RFC 5952 IPv6)
 * because that is what every output (conntrack -E/-L, JSON, metrics labels) prints.
 */

export const IPPROTO = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  DCCP: 33,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  SCTP: 132,
  UDPLITE: 136,
} as const;

/** TCP flag bits as they sit in the header's 13th byte (CWR..FIN). */
export const TCP_FLAG = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export interface TcpOptions {
  mss?: number;
  /** Window scale shift as sent (not clamped; the tracker clamps to 14 like the kernel). */
  wscale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left, right) pairs of 32-bit sequence numbers. */
  sack?: Array<[number, number]>;
  timestamp?: { value: number; echo: number };
}

export interface TcpHeader {
  kind: 'tcp';
  sport: number;
  dport: number;
  /** Unsigned 32-bit. */
  seq: number;
  /** Unsigned 32-bit. */
  ack: number;
  /** Header byte 13 (CWR ECE URG ACK PSH RST SYN FIN). */
  flags: number;
  /** Raw (unscaled) window field. */
  window: number;
  /** Header length in bytes (data offset * 4). */
  headerLength: number;
  /** Payload bytes after the TCP header, as claimed by the IP length (not the captured length). */
  dataLength: number;
  options: TcpOptions;
  /** Captured payload bytes (may be shorter than dataLength when the capture was cut). Helpers read it. */
  payload?: Uint8Array;
}

export interface UdpHeader {
  kind: 'udp' | 'udplite';
  sport: number;
  dport: number;
  length: number;
  payload?: Uint8Array;
}

export interface IcmpHeader {
  kind: 'icmp' | 'icmpv6';
  type: number;
  code: number;
  /** Echo/info identifier and sequence (only meaningful for query types). */
  id: number;
  seq: number;
  /** For error messages: the IP packet quoted in the body, decoded as far as it goes. */
  inner?: IpPacket;
}

export interface SctpChunk {
  type: number;
  flags: number;
  length: number;
  /** For INIT / INIT ACK: the initiate tag (the peer's future verification tag). */
  initTag?: number;
}

export interface SctpHeader {
  kind: 'sctp';
  sport: number;
  dport: number;
  vtag: number;
  chunks: SctpChunk[];
}

export interface GreHeader {
  kind: 'gre';
  version: number;
  protocolType: number;
  /** GREv1 (PPTP) call id, or the GREv0 key when present. */
  key?: number;
}

export interface DccpHeader {
  kind: 'dccp';
  sport: number;
  dport: number;
  type: number;
}

export interface GenericHeader {
  kind: 'generic';
}

export type L4Header =
  | TcpHeader
  | UdpHeader
  | IcmpHeader
  | SctpHeader
  | GreHeader
  | DccpHeader
  | GenericHeader;

export interface FragmentInfo {
  /** IPv4 identification or IPv6 fragment header identification. */
  id: number;
  /** Offset of this fragment's data in bytes. */
  offset: number;
  moreFragments: boolean;
  /** Offset inside the IP packet where this fragment's data starts (after the IPv4 header, or after the IPv6 fragment header). */
  dataOffset?: number;
}

export interface IpPacket {
  family: 4 | 6;
  src: string;
  dst: string;
  /** IPv4 only: the addresses as 32-bit values (the engine hashes these; absent means parse the text). */
  src4?: number;
  dst4?: number;
  /** The upper-layer protocol number (after the IPv6 extension-header chain). */
  proto: number;
  /** The IP datagram's length in bytes (IPv4 total length; IPv6 40 + payload length). This is what conntrack counts. */
  length: number;
  ttl: number;
  /** Present when this packet is a fragment (more fragments set or offset non-zero). */
  fragment?: FragmentInfo;
  /** Decoded upper layer. Absent for non-first fragments and for quoted headers cut short. */
  l4?: L4Header;
  /** Why the upper-layer header could not be decoded (truncated, bad data offset); `l4` is then absent. */
  l4Error?: string;
  /** The bytes from the start of the IP header as captured (for reassembly and helpers). */
  bytes?: Uint8Array;
  /** Offset of the upper-layer header inside `bytes`. */
  l4Offset?: number;
}

/** One IP packet read from a capture, with its position and capture time. */
export interface CapturedPacket {
  /** Index among the IP packets of the capture, from 0 (the oracle's `i`). */
  index: number;
  /** Index of the frame in the capture file, from 0. */
  frame: number;
  /** Capture time in integer microseconds since the epoch. */
  tsUs: number;
  /** pcapng interface id (0 for pcap). */
  interfaceId: number;
  /** The pcapng interface's name (if_name), when the capture records it. */
  interfaceName?: string;
  /** Outermost 802.1Q VLAN id, when tagged. */
  vlan?: number;
  ip: IpPacket;
}

/** "0." to "255." and "0" to "255": a dotted quad is four table loads and three joins, no number formatting. */
const OCTET_DOT = Array.from({ length: 256 }, (_, i) => `${i}.`);
const OCTET = Array.from({ length: 256 }, (_, i) => `${i}`);

/**
 * The text of recently formatted addresses, direct-mapped by value. Traffic repeats its addresses
 * (every packet of a flow, every event of an entry), so most calls format nothing. Slots start as
 * 0.0.0.0, which is a correct entry, so no slot is ever "empty".
 */
const TEXT_CACHE_BITS = 12;
const cachedValue = new Int32Array(1 << TEXT_CACHE_BITS);
const cachedText: string[] = new Array<string>(1 << TEXT_CACHE_BITS).fill('0.0.0.0');

/** The dotted-quad text of an IPv4 address given as its 32-bit value (the canonical form above). */
export function dottedQuad(value: number): string {
  const v = value | 0;
  const slot = Math.imul(v, 0x9e3779b1) >>> (32 - TEXT_CACHE_BITS);
  if (cachedValue[slot] === v) return cachedText[slot];
  const text = OCTET_DOT[(v >>> 24) & 255] + OCTET_DOT[(v >>> 16) & 255] + OCTET_DOT[(v >>> 8) & 255] + OCTET[v & 255];
  cachedValue[slot] = v;
  cachedText[slot] = text;
  return text;
}
