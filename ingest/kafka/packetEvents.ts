/**
 * The packet-events topic: packets already decoded on the host, one JSON object per message, for
 * agents that parse traffic themselves (eBPF, nflog readers). The schema (docs/topics.md) is
 * checked with zod; a message that does not fit throws TopicFormatError naming the field, and
 * goes to the dead-letter topic. Addresses are rewritten to the canonical text the decoder
 * prints, so a flow looks the same whether it came from a capture or from an agent.
 */
import { z } from 'zod';
import type { IpPacket, L4Header, TcpOptions } from '../../processors/packet';
import { IPPROTO } from '../../processors/packet';
import { ipv6Text, parseIpv4, parseIpv6 } from '../decode/address';
import { TopicFormatError } from './capturedTraffic';

const u8 = z.number().int().min(0).max(0xff);
const u16 = z.number().int().min(0).max(0xffff);
const u32 = z.number().int().min(0).max(0xffffffff);

const PROTO_NAMES: Readonly<Record<string, number>> = {
  icmp: IPPROTO.ICMP, tcp: IPPROTO.TCP, udp: IPPROTO.UDP, dccp: IPPROTO.DCCP, gre: IPPROTO.GRE,
  icmpv6: IPPROTO.ICMPV6, sctp: IPPROTO.SCTP, udplite: IPPROTO.UDPLITE,
};

/** TCP flags as a number (header byte 13) or tcpdump letters: F S R P . (ACK) U E W. */
const FLAG_LETTERS: Readonly<Record<string, number>> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, '.': 0x10, A: 0x10, U: 0x20, E: 0x40, W: 0x80 };
const tcpFlags = z.union([
  u8,
  z.string().regex(/^[FSRP.AUEW]*$/, 'flags must be tcpdump letters from F S R P . A U E W').transform((s) => [...s].reduce((f, c) => f | FLAG_LETTERS[c], 0)),
]);

const tcpSchema = z.strictObject({
  flags: tcpFlags,
  seq: u32,
  ack: u32.default(0),
  window: u16,
  dataLength: z.number().int().min(0).max(0xffff).default(0),
  headerLength: z.number().int().min(20).max(60).default(20),
  options: z
    .strictObject({
      mss: u16.optional(),
      wscale: u8.optional(),
      sackPermitted: z.boolean().optional(),
      sack: z.array(z.tuple([u32, u32])).max(4).optional(),
      timestamp: z.strictObject({ value: u32, echo: u32 }).optional(),
    })
    .default({}),
});

const icmpBase = { type: u8, code: u8, id: u16.default(0), seq: u16.default(0) };

const packetFields = {
  src: z.string().min(1),
  dst: z.string().min(1),
  proto: z.union([u8, z.string().transform((s, ctx) => {
    const p = PROTO_NAMES[s.toLowerCase()];
    if (p === undefined) ctx.addIssue({ code: 'custom', message: `unknown protocol name '${s}' (use a number)` });
    return p ?? 0;
  })]),
  length: u16,
  ttl: u8.default(64),
  sport: u16.optional(),
  dport: u16.optional(),
  fragment: z.strictObject({ id: u32, offset: u16, more: z.boolean() }).optional(),
  tcp: tcpSchema.optional(),
  icmp: z.strictObject({ ...icmpBase, inner: z.lazy((): z.ZodType => innerSchema).optional() }).optional(),
  sctp: z.strictObject({ vtag: u32, chunks: z.array(z.strictObject({ type: u8, flags: u8.default(0), length: u16.default(4), initTag: u32.optional() })).min(1) }).optional(),
  gre: z.strictObject({ version: z.number().int().min(0).max(7), protocolType: u16.default(0x880b), key: u32.optional() }).optional(),
};

const innerSchema = z.strictObject(packetFields);

export const packetEventSchema = z.strictObject({
  /** Capture time: seconds since the epoch (fraction allowed) or integer microseconds as tsUs. */
  ts: z.number().min(0).optional(),
  tsUs: z.number().int().min(0).optional(),
  /** Conntrack zone (default 0). */
  zone: u16.optional(),
  ...packetFields,
});

export type PacketEventJson = z.input<typeof packetEventSchema>;
type PacketFields = z.output<typeof innerSchema>;

export interface PacketEvent {
  tsUs: number;
  /** The event's own zone field; absent when it names none. */
  zone?: number;
  ip: IpPacket;
}

function address(text: string, field: string): { family: 4 | 6; text: string; v4?: number } {
  try {
    if (text.includes(':')) return { family: 6, text: ipv6Text(parseIpv6(text), 0) };
    const b = parseIpv4(text);
    return { family: 4, text: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, v4: ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 };
  } catch {
    throw new TopicFormatError(`${field}: '${text.slice(0, 60)}' is not an IPv4 or IPv6 address`);
  }
}

function ports(p: PacketFields, what: string): { sport: number; dport: number } {
  if (p.sport === undefined || p.dport === undefined) throw new TopicFormatError(`${what} packet needs sport and dport`);
  return { sport: p.sport, dport: p.dport };
}

function l4Of(p: PacketFields, family: 4 | 6, path: string): L4Header | undefined {
  const proto = p.proto;
  if (p.fragment && p.fragment.offset > 0) return undefined; // only the first fragment carries the header
  if (proto === IPPROTO.TCP) {
    if (!p.tcp) throw new TopicFormatError(`${path}tcp: a TCP packet needs its tcp object (flags, seq, window)`);
    const t = p.tcp;
    return { kind: 'tcp', ...ports(p, 'a TCP'), seq: t.seq, ack: t.ack, flags: t.flags, window: t.window, headerLength: t.headerLength, dataLength: t.dataLength, options: t.options as TcpOptions };
  }
  if (proto === IPPROTO.UDP || proto === IPPROTO.UDPLITE) {
    return { kind: proto === IPPROTO.UDP ? 'udp' : 'udplite', ...ports(p, 'a UDP'), length: Math.max(8, p.length - (family === 4 ? 20 : 40)) };
  }
  if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    if (!p.icmp) throw new TopicFormatError(`${path}icmp: an ICMP packet needs its icmp object (type, code)`);
    const { type, code, id, seq, inner } = p.icmp as { type: number; code: number; id: number; seq: number; inner?: PacketFields };
    const h: L4Header = { kind: proto === IPPROTO.ICMP ? 'icmp' : 'icmpv6', type, code, id, seq };
    if (inner) h.inner = toIp(inner, `${path}icmp.inner.`);
    return h;
  }
  if (proto === IPPROTO.SCTP) {
    if (!p.sctp) throw new TopicFormatError(`${path}sctp: an SCTP packet needs its sctp object (vtag, chunks)`);
    return { kind: 'sctp', ...ports(p, 'an SCTP'), vtag: p.sctp.vtag, chunks: p.sctp.chunks };
  }
  if (proto === IPPROTO.GRE) {
    if (!p.gre) return { kind: 'gre', version: 0, protocolType: 0x0800 };
    return { kind: 'gre', ...p.gre };
  }
  if (proto === IPPROTO.DCCP) return { kind: 'dccp', ...ports(p, 'a DCCP'), type: 0 };
  return { kind: 'generic' };
}

function toIp(p: PacketFields, path = ''): IpPacket {
  const src = address(p.src, `${path}src`);
  const dst = address(p.dst, `${path}dst`);
  if (src.family !== dst.family) throw new TopicFormatError(`${path}src and ${path}dst are of different address families`);
  const ip: IpPacket = { family: src.family, src: src.text, dst: dst.text, proto: p.proto, length: p.length, ttl: p.ttl };
  if (src.v4 !== undefined) {
    ip.src4 = src.v4;
    ip.dst4 = dst.v4;
  }
  if (p.fragment) ip.fragment = { id: p.fragment.id, offset: p.fragment.offset, moreFragments: p.fragment.more };
  const l4 = l4Of(p, src.family, path);
  if (l4) ip.l4 = l4;
  return ip;
}

function zodReason(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`)
    .join('; ');
}

/** One packet-event message. `fallbackTsMs` (the Kafka message timestamp) is used when the object has no ts. */
export function decodePacketEvent(value: string | Uint8Array, fallbackTsMs: number): PacketEvent {
  const text = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TopicFormatError(`packet event is not JSON: ${(err as Error).message}`);
  }
  const r = packetEventSchema.safeParse(json);
  if (!r.success) throw new TopicFormatError(`packet event: ${zodReason(r.error)}`);
  const e = r.data;
  const tsUs = e.tsUs ?? (e.ts !== undefined ? Math.round(e.ts * 1e6) : fallbackTsMs * 1000);
  const ev: PacketEvent = { tsUs, ip: toIp(e) };
  if (e.zone !== undefined) ev.zone = e.zone;
  return ev;
}
