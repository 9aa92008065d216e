/**
 * PacketMatch: the part of a netfilter rule that selects packets, as the raw table's notrack
 * rules, the nat table's rules and `ct helper set` rules use it: protocol, family, addresses or
 * prefixes, ports and zone. Every field is optional; a rule with none matches every packet.
 * Matching reads only the packet's header fields, so it stays pure and cheap: IPv4 prefixes are
 * compared as 32-bit values, IPv6 ones on the parsed 16-bit groups.
 */
import { isIP } from 'node:net';
import type { IpPacket } from '../../packet';
import { IPPROTO } from '../../packet';
import { ipv4Value } from '../store';

/** An address prefix in a form that can be compared without parsing text per packet. */
export interface Prefix {
  family: 4 | 6;
  /** The prefix as written (for messages and listings). */
  text: string;
  /** IPv4: the network and mask as 32-bit values. */
  net4: number;
  mask4: number;
  /** IPv6: the eight 16-bit groups of the network, and the prefix length. */
  groups6: number[];
  bits: number;
}

export interface PacketMatch {
  /** IP protocol number (6 tcp, 17 udp, ...). */
  proto?: number;
  family?: 4 | 6;
  src?: Prefix;
  dst?: Prefix;
  sport?: number;
  dport?: number;
  /** `PROTO/PORT` shorthand: the port on either side (the oracle's `--notrack tcp/80`). */
  port?: number;
  zone?: number;
}

export const PROTO_NUMBERS: Readonly<Record<string, number>> = {
  tcp: IPPROTO.TCP,
  udp: IPPROTO.UDP,
  udplite: IPPROTO.UDPLITE,
  icmp: IPPROTO.ICMP,
  icmpv6: IPPROTO.ICMPV6,
  sctp: IPPROTO.SCTP,
  gre: IPPROTO.GRE,
  dccp: IPPROTO.DCCP,
};

/** A protocol name (tcp, udp, ...) or number 0-255; throws naming the text otherwise. */
export function parseProto(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : PROTO_NUMBERS[text.toLowerCase()];
  if (n === undefined || n > 255) throw new Error(`'${text}' is not a protocol (${Object.keys(PROTO_NUMBERS).join(', ')} or 0-255)`);
  return n;
}

/** A port number 0-65535; throws naming the text otherwise. */
export function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new Error(`'${text}' is not a port (0-65535)`);
  return Number(text);
}

/** The eight 16-bit groups of an IPv6 address in any valid text form. */
export function ipv6Groups(text: string): number[] {
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const q = ipv4Value(v4[1]);
    s = `${s.slice(0, v4.index)}${(q >>> 16).toString(16)}:${(q & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - h.length - t.length;
  return [...h, ...Array<string>(zeros).fill('0'), ...t].map((g) => parseInt(g, 16));
}

/** An address or CIDR prefix (`198.18.0.0/15`, `2001:db8::/32`, `10.0.0.1`); throws naming the text otherwise. */
export function parsePrefix(text: string): Prefix {
  const [addr, bitsText, extra] = text.split('/');
  const family = isIP(addr);
  const max = family === 6 ? 128 : 32;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (!family || extra !== undefined || (bitsText !== undefined && !/^\d+$/.test(bitsText)) || bits > max) {
    throw new Error(`'${text}' is not an IP address or CIDR prefix`);
  }
  if (family === 4) {
    const mask4 = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return { family: 4, text, net4: (ipv4Value(addr) & mask4) >>> 0, mask4, groups6: [], bits };
  }
  const groups6 = ipv6Groups(addr).map((g, i) => {
    const keep = Math.max(0, Math.min(16, bits - 16 * i));
    return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  return { family: 6, text, net4: 0, mask4: 0, groups6, bits };
}

/** Whether an address (as the decoder gives it: text, and for IPv4 its value) lies in the prefix. */
export function inPrefix(p: Prefix, family: 4 | 6, text: string, value4?: number): boolean {
  if (p.family !== family) return false;
  if (family === 4) return (((value4 ?? ipv4Value(text)) & p.mask4) >>> 0) === p.net4;
  const g = ipv6Groups(text);
  for (let i = 0; i < 8 && 16 * i < p.bits; i++) {
    const keep = Math.min(16, p.bits - 16 * i);
    if ((g[i] & ((0xffff << (16 - keep)) & 0xffff)) !== p.groups6[i]) return false;
  }
  return true;
}

/** The packet's ports when its protocol has them (TCP, UDP, UDP-Lite, SCTP, DCCP), else undefined. */
export function packetPorts(ip: IpPacket): { sport: number; dport: number } | undefined {
  const l4 = ip.l4;
  switch (l4?.kind) {
    case 'tcp':
    case 'udp':
    case 'udplite':
    case 'sctp':
    case 'dccp':
      return { sport: l4.sport, dport: l4.dport };
    default:
      return undefined;
  }
}

/** Whether a packet in `zone` matches. A port test on a packet without ports fails, as in nft. */
export function matchesPacket(m: PacketMatch, ip: IpPacket, zone: number): boolean {
  if (m.zone !== undefined && m.zone !== zone) return false;
  if (m.family !== undefined && m.family !== ip.family) return false;
  if (m.proto !== undefined && m.proto !== ip.proto) return false;
  if (m.src && !inPrefix(m.src, ip.family, ip.src, ip.src4)) return false;
  if (m.dst && !inPrefix(m.dst, ip.family, ip.dst, ip.dst4)) return false;
  if (m.sport === undefined && m.dport === undefined && m.port === undefined) return true;
  const ports = packetPorts(ip);
  if (!ports) return false;
  if (m.sport !== undefined && ports.sport !== m.sport) return false;
  if (m.dport !== undefined && ports.dport !== m.dport) return false;
  if (m.port !== undefined && ports.sport !== m.port && ports.dport !== m.port) return false;
  return true;
}

/** The `PROTO/PORT` shorthand of the command line (`tcp/80`, `udp/53`). */
export function parseProtoPort(text: string): { proto: number; port: number } {
  const m = /^([A-Za-z0-9]+)\/(\d+)$/.exec(text);
  if (!m) throw new Error(`'${text}' is not PROTO/PORT (such as tcp/80 or udp/53)`);
  return { proto: parseProto(m[1]), port: parsePort(m[2]) };
}

/** A match in words, for rule listings and error messages. */
export function describeMatch(m: PacketMatch): string {
  const parts: string[] = [];
  if (m.zone !== undefined) parts.push(`zone ${m.zone}`);
  if (m.family !== undefined) parts.push(m.family === 4 ? 'ip' : 'ip6');
  if (m.src) parts.push(`saddr ${m.src.text}`);
  if (m.dst) parts.push(`daddr ${m.dst.text}`);
  const name = Object.keys(PROTO_NUMBERS).find((k) => PROTO_NUMBERS[k] === m.proto) ?? (m.proto !== undefined ? `proto ${m.proto}` : 'any');
  if (m.proto !== undefined || m.sport !== undefined || m.dport !== undefined || m.port !== undefined) parts.push(name);
  if (m.sport !== undefined) parts.push(`sport ${m.sport}`);
  if (m.dport !== undefined) parts.push(`dport ${m.dport}`);
  if (m.port !== undefined) parts.push(`port ${m.port}`);
  return parts.length ? parts.join(' ') : 'any packet';
}
