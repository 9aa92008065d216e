/**
 * What the three flow-event readers (conntrack text, XML, JSON) share: the error they throw, the
 * options a caller passes, value checks, and the STATUS bits a printed entry implies.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { STATUS } from '../../processors/flow';
import type { Tuple } from '../../processors/flow';
import type { HostFlowEvent } from '../../processors/fleet/hostFlowEvent';

/** Input that is not a flow event; `message` is the reason, short enough for a dead-letter header. */
export class FlowEventFormatError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'FlowEventFormatError';
  }
}

export interface FlowEventOptions {
  /** The fleet zone of the host these events come from (overrides the table's host rule). */
  zone?: number;
  /** The host these events come from. */
  host?: string;
}

/** Protocol numbers by the names conntrack-tools prints (libnetfilter_conntrack's proto2str). */
export const PROTO_BY_NAME: Readonly<Record<string, number>> = {
  icmp: 1,
  tcp: 6,
  udp: 17,
  dccp: 33,
  gre: 47,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

const ICMP_PROTOS = new Set([1, 58]);
/** Protocols whose tuples carry ports (libnetfilter_conntrack prints sport=/dport= for these). */
const PORT_PROTOS = new Set([6, 17, 33, 132, 136]);
export const isIcmpProto = (proto: number): boolean => ICMP_PROTOS.has(proto);

/** A whole number in [min, max], or a FlowEventFormatError naming `what`. */
export function checkInt(value: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new FlowEventFormatError(`${what}: '${value}' is not an integer from ${min} to ${max}`);
  return value;
}

/** Parses a decimal (or, for GRE keys, 0x-hex) field strictly: `Number('')` is 0 and `Number('1e3')` 1000, neither is a port. */
export function parseIntField(text: string, what: string, min: number, max: number): number {
  if (!/^(\d+|0x[0-9a-fA-F]+)$/.test(text)) throw new FlowEventFormatError(`${what}: '${text}' is not a number`);
  return checkInt(Number(text), what, min, max);
}

export function checkAddress(address: string, family: 4 | 6, what: string): string {
  if (family === 4 ? !isIPv4(address) : !isIPv6(address)) throw new FlowEventFormatError(`${what}: '${address}' is not an IPv${family} address`);
  return address;
}

/** Checks a tuple's fields; ports are 16-bit, ICMP type/code 8-bit, the ICMP id 16-bit. */
export function checkTuple(t: Tuple, family: 4 | 6, dir: string): Tuple {
  checkAddress(t.src, family, `${dir} src`);
  checkAddress(t.dst, family, `${dir} dst`);
  checkInt(t.sport, `${dir} sport`, 0, 0xffff);
  checkInt(t.dport, `${dir} dport`, 0, 0xffff);
  if (t.icmp) {
    checkInt(t.icmp.type, `${dir} icmp type`, 0, 255);
    checkInt(t.icmp.code, `${dir} icmp code`, 0, 255);
    checkInt(t.icmp.id, `${dir} icmp id`, 0, 0xffff);
  }
  return t;
}

/**
 * The STATUS bits a printed entry implies. conntrack prints [UNREPLIED] for an entry without
 * IPS_SEEN_REPLY and [ASSURED] for IPS_ASSURED; events and listings only ever show confirmed
 * entries. NAT is not printed but shows in the tuples: nf_nat rewrites the reply tuple, so a reply
 * whose destination is not the original source was source-NATed (IPS_SRC_NAT), and one whose
 * source is not the original destination was destination-NATed (IPS_DST_NAT). Ports count for
 * the port protocols and the echo id (NATed as a source port) for ICMP; GRE keys do not, since
 * the PPTP helper gives each direction keys of its own.
 */
export function impliedStatus(flags: readonly string[], proto: number, orig: Tuple, reply: Tuple): number {
  let status = STATUS.CONFIRMED;
  if (!flags.includes('UNREPLIED')) status |= STATUS.SEEN_REPLY;
  if (flags.includes('ASSURED')) status |= STATUS.ASSURED;
  const ports = PORT_PROTOS.has(proto);
  const icmpIdChanged = orig.icmp !== undefined && reply.icmp !== undefined && orig.icmp.id !== reply.icmp.id;
  if (reply.dst !== orig.src || (ports && reply.dport !== orig.sport) || icmpIdChanged) status |= STATUS.SRC_NAT;
  if (reply.src !== orig.dst || (ports && reply.sport !== orig.dport)) status |= STATUS.DST_NAT;
  return status;
}

/** Fills in what the caller knows about the source (host, fleet zone). */
export function withSource(e: HostFlowEvent, opts: FlowEventOptions | undefined): HostFlowEvent {
  if (opts?.host !== undefined && e.host === undefined) e.host = opts.host;
  if (opts?.zone !== undefined && e.hostZone === undefined) e.hostZone = opts.zone;
  return e;
}

/** Shortens a bad input for an error message. */
export function excerpt(text: string, max = 200): string {
  const t = text.trim();
  return t.length > max ? `${t.slice(0, max)}...` : t;
}
