/**
 * FlowFilter: the entry filters of conntrack(8) (`-p`, `-f`, `-w`, `--state`, `-u`, `-s/-d/-r/-q`,
 * the four port options, `--icmp-*`, `--src-nat/--dst-nat/--any-nat`) as one parsed object, and
 * the event mask of `-e`. Every field is optional and every given field must hold (conntrack ANDs
 * its filters), so a filter with no fields selects everything. Pure: `ctflow list`, `ctflow events`
 * and the HTTP `/flows` API all decide with `matchesFlow`; parsing lives in parseFilter.ts.
 */
import type { EventType, FlowEvent, FlowRecord } from '../flow';
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

/** The original source's port and the port the reply goes back to: ports, or the ICMP id (which SNAT may rewrite). */
function sourcePorts(f: FlowRecord): [number, number] | undefined {
  if (PORT_PROTOS.has(f.proto)) return [f.orig.sport, f.reply.dport];
  if (f.orig.icmp && f.reply.icmp) return [f.orig.icmp.id, f.reply.icmp.id];
  return undefined;
}

/** The original destination port and the port the reply comes from. */
function destinationPorts(f: FlowRecord): [number, number] | undefined {
  return PORT_PROTOS.has(f.proto) ? [f.orig.dport, f.reply.sport] : undefined;
}

/**
 * One side's NAT test, as conntrack's: the address was rewritten when the reply's address on
 * that side differs from the original's, the port when the ports differ. With a target only an
 * address-NATed entry matches (a port-only translation does not), to (or from) that address, and
 * a port in the target must be a rewritten port equal to it.
 */
function natted(f: FlowRecord, before: string, after: string, ports: [number, number] | undefined, target?: NatTarget): boolean {
  const addrChanged = after !== before;
  const portChanged = ports !== undefined && ports[0] !== ports[1];
  if (!target) return addrChanged || portChanged;
  if (!addrChanged || !inAddr(target.addr, f, after)) return false;
  return target.port === undefined || (portChanged && ports![1] === target.port);
}

/**
 * Source NAT: the reply goes to another address or port than the original source. conntrack
 * also wants the kernel's SRC_NAT_DONE bit, but nf_nat sets that on every entry passing the nat
 * hooks, translated or not, so for real entries the tuples decide (and ctflow's readers of
 * conntrack's text cannot see the bit).
 */
export function sourceNatted(f: FlowRecord, target?: NatTarget): boolean {
  return natted(f, f.orig.src, f.reply.dst, sourcePorts(f), target);
}

/** Destination NAT, the mirror image: the reply comes from another address or port than the original destination. */
export function destinationNatted(f: FlowRecord, target?: NatTarget): boolean {
  return natted(f, f.orig.dst, f.reply.src, destinationPorts(f), target);
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
