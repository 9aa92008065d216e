/**
 * FlowFilter: the entry filters of conntrack(8) (`-p`, `-f`, `-w`, `--state`, `-u`, `-s/-d/-r/-q`,
 * the four port options, `--icmp-*`, `--src-nat/--dst-nat/--any-nat`) as one parsed object, and
 * the event mask of `-e`. Every field is optional and every given field must hold (conntrack ANDs
 * its filters), so a filter with no fields selects everything. Pure: `ctflow list`, `ctflow events`
 * and the HTTP `/flows` API all decide with `matchesFlow`; parsing lives in parseFilter.ts.
 */
import type { EventType, FlowEvent, FlowRecord, Tuple } from '../flow';
import { entryState, STATUS } from '../flow';
import { IPPROTO } from '../packet';
import { inPrefix } from '../conntrack/rules/match';
import type { Prefix } from '../conntrack/rules/match';


/** A NAT filter's optional target: the address (and port) the entry was translated to or from. */
export interface NatTarget {
  /** A full-length prefix: one address. */
  addr: Prefix;
  port?: number;
}

/** `--src-nat`/`--dst-nat`/`--any-nat` with no address: `{}`; with one: `{ target }`. */
export interface NatFilter {
  target?: NatTarget;
}

export interface FlowFilter {
  proto?: number;
  family?: 4 | 6;
  zone?: number;
  /** Upper-case; compared with the protocol state, or UNREPLIED/REPLIED/ASSURED for protocols without one. */
  state?: string;
  /** Status bits that must all be set (conntrack compares `-u` under a mask: every bit given must be on). */
  statusAll?: number;
  /** ctflow's `UNREPLIED` status word: SEEN_REPLY must be off. */
  unreplied?: boolean;
  origSrc?: Prefix;
  origDst?: Prefix;
  replySrc?: Prefix;
  replyDst?: Prefix;
  origSport?: number;
  origDport?: number;
  replySport?: number;
  replyDport?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  srcNat?: NatFilter;
  dstNat?: NatFilter;
  anyNat?: NatFilter;
  /** Neither source- nor destination-NATed (the HTTP API's `nat=none`; conntrack has no such filter). */
  notNat?: boolean;
}

/** Protocols whose tuples carry ports; a port filter never selects an entry of another protocol. */
export const PORT_PROTOS: ReadonlySet<number> = new Set([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE, IPPROTO.SCTP, IPPROTO.DCCP]);
export const ICMP_PROTOS: ReadonlySet<number> = new Set([IPPROTO.ICMP, IPPROTO.ICMPV6]);

const inAddr = (p: Prefix, f: FlowRecord, addr: string): boolean => inPrefix(p, f.family, addr);

/** The reply side's "port" facing the original source (or destination): ports, or the ICMP id. */
function l4Changed(f: FlowRecord, origSide: 'sport' | 'dport', replySide: 'sport' | 'dport'): boolean {
  if (PORT_PROTOS.has(f.proto)) return f.reply[replySide] !== f.orig[origSide];
  // nf_nat translates the ICMP echo id on SNAT; the id is the same field in both tuples.
  if (origSide === 'sport' && f.orig.icmp && f.reply.icmp) return f.reply.icmp.id !== f.orig.icmp.id;
  return false;
}

function l4Of(t: Tuple, side: 'sport' | 'dport', proto: number): number | undefined {
  if (PORT_PROTOS.has(proto)) return t[side];
  return side === 'dport' && t.icmp ? t.icmp.id : undefined;
}

/**
 * Whether the entry was source-NATed, and (with a target) to that address and port. conntrack
 * decides on the tuples: SNAT rewrote the address when the reply goes to another address than the
 * original source, the port when the reply's destination port differs from the original source
 * port. It also wants the kernel's SRC_NAT_DONE bit, which nf_nat sets on every entry passing
 * the nat hooks, changed or not, so for real entries the tuples alone decide (and ctflow's text
 * readers cannot see that bit). A target names the address: only address-NATed entries then
 * match (a port-only translation does not), and a port in the target must be the new port too.
 */
export function sourceNatted(f: FlowRecord, target?: NatTarget): boolean {
  const addrChanged = f.reply.dst !== f.orig.src;
  if (!target) return addrChanged || l4Changed(f, 'sport', 'dport');
  if (!addrChanged || !inAddr(target.addr, f, f.reply.dst)) return false;
  return target.port === undefined || (l4Changed(f, 'sport', 'dport') && l4Of(f.reply, 'dport', f.proto) === target.port);
}

/** Destination NAT, the mirror image: the reply comes from another address or port than the original destination. */
export function destinationNatted(f: FlowRecord, target?: NatTarget): boolean {
  const addrChanged = f.reply.src !== f.orig.dst;
  const portChanged = PORT_PROTOS.has(f.proto) && f.reply.sport !== f.orig.dport;
  if (!target) return addrChanged || portChanged;
  if (!addrChanged || !inAddr(target.addr, f, f.reply.src)) return false;
  return target.port === undefined || (portChanged && f.reply.sport === target.port);
}

function hasPort(f: FlowRecord, want: number | undefined, got: (f: FlowRecord) => number): boolean {
  return want === undefined || (PORT_PROTOS.has(f.proto) && got(f) === want);
}

function hasIcmp(f: FlowRecord, want: number | undefined, field: 'type' | 'code' | 'id'): boolean {
  return want === undefined || (ICMP_PROTOS.has(f.proto) && f.orig.icmp !== undefined && f.orig.icmp[field] === want);
}

/** Whether the entry passes every filter given. */
export function matchesFlow(filter: FlowFilter, f: FlowRecord): boolean {
  const q = filter;
  if (q.proto !== undefined && f.proto !== q.proto) return false;
  if (q.family !== undefined && f.family !== q.family) return false;
  if (q.zone !== undefined && f.zone !== q.zone) return false;
  if (q.state !== undefined && entryState(f) !== q.state) return false;
  if (q.statusAll !== undefined && (f.status & q.statusAll) !== q.statusAll) return false;
  if (q.unreplied && (f.status & STATUS.SEEN_REPLY) !== 0) return false;
  if (q.origSrc && !inAddr(q.origSrc, f, f.orig.src)) return false;
  if (q.origDst && !inAddr(q.origDst, f, f.orig.dst)) return false;
  if (q.replySrc && !inAddr(q.replySrc, f, f.reply.src)) return false;
  if (q.replyDst && !inAddr(q.replyDst, f, f.reply.dst)) return false;
  if (!hasPort(f, q.origSport, (x) => x.orig.sport) || !hasPort(f, q.origDport, (x) => x.orig.dport)) return false;
  if (!hasPort(f, q.replySport, (x) => x.reply.sport) || !hasPort(f, q.replyDport, (x) => x.reply.dport)) return false;
  if (!hasIcmp(f, q.icmpType, 'type') || !hasIcmp(f, q.icmpCode, 'code') || !hasIcmp(f, q.icmpId, 'id')) return false;
  if (q.srcNat && !sourceNatted(f, q.srcNat.target)) return false;
  if (q.dstNat && !destinationNatted(f, q.dstNat.target)) return false;
  // --any-nat ADDR: translated to that address on the source side, or from it on the destination side.
  if (q.anyNat && !(sourceNatted(f, q.anyNat.target) || destinationNatted(f, q.anyNat.target))) return false;
  if (q.notNat && (sourceNatted(f) || destinationNatted(f))) return false;
  return true;
}

/** `-e`: the event types to show; conntrack's UPDATES is ctflow's UPDATE. */
export type EventMask = ReadonlySet<EventType>;

export function matchesEvent(mask: EventMask | undefined, e: FlowEvent): boolean {
  return mask === undefined || mask.has(e.type);
}

/** An event passes when its type is in the mask and its entry passes the entry filters (conntrack -E applies both). */
export function selectsEvent(filter: FlowFilter, mask: EventMask | undefined, e: FlowEvent): boolean {
  return matchesEvent(mask, e) && matchesFlow(filter, e.flow);
}
