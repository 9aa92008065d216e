/**
 * The text formats of conntrack-tools that users already read: `conntrack -E -o
 * timestamp,extended,id`, `conntrack -L -o extended,id` and `conntrack -S`. Field order follows
 * libnetfilter_conntrack's default printer; counters appear only with nf_conntrack_acct=1, as in
 * the kernel.
 */
import type { CtStats, FlowEvent, FlowRecord, Tuple } from '../processors/flow';
import type { ExpectEvent, ExpectationRecord } from '../processors/conntrack/helpers/expectations';
import { STATUS } from '../processors/flow';
import { IPPROTO } from '../processors/packet';

const PROTO_NAMES: Readonly<Record<number, string>> = {
  [IPPROTO.TCP]: 'tcp',
  [IPPROTO.UDP]: 'udp',
  [IPPROTO.UDPLITE]: 'udplite',
  [IPPROTO.ICMP]: 'icmp',
  [IPPROTO.ICMPV6]: 'icmpv6',
  [IPPROTO.SCTP]: 'sctp',
  [IPPROTO.GRE]: 'gre',
  [IPPROTO.DCCP]: 'dccp', // tracked as generic by 6.18, but conntrack-tools still names it and prints zero ports
};

export function protoName(proto: number): string {
  return PROTO_NAMES[proto] ?? 'unknown';
}

export interface TextOptions {
  /** Print packets=/bytes= (nf_conntrack_acct=1). */
  acct: boolean;
}

function tupleText(t: Tuple, proto: number): string {
  let s = `src=${t.src} dst=${t.dst} `;
  if (t.icmp) s += `type=${t.icmp.type} code=${t.icmp.code} id=${t.icmp.id} `;
  else if (proto === IPPROTO.GRE) s += `srckey=0x${t.sport.toString(16)} dstkey=0x${t.dport.toString(16)} `;
  else if (PROTO_NAMES[proto]) s += `sport=${t.sport} dport=${t.dport} `;
  return s;
}

function header(f: FlowRecord): string {
  const l3 = f.family === 4 ? 'ipv4     2 ' : 'ipv6     10 ';
  return `${l3}${protoName(f.proto).padEnd(8)} ${f.proto} `;
}

function body(f: FlowRecord, o: TextOptions): string {
  const acct = (c: { packets: number; bytes: number }): string => (o.acct ? `packets=${c.packets} bytes=${c.bytes} ` : '');
  let s = tupleText(f.orig, f.proto) + acct(f.counters.orig);
  if (!(f.status & STATUS.SEEN_REPLY)) s += '[UNREPLIED] ';
  s += tupleText(f.reply, f.proto) + acct(f.counters.reply);
  if (f.status & STATUS.ASSURED) s += '[ASSURED] ';
  return s;
}

/** One line of `conntrack -E -o timestamp,extended,id`. */
export function formatEvent(e: FlowEvent, o: TextOptions): string {
  const f = e.flow;
  const secs = Math.floor(e.tsUs / 1e6);
  const micros = String(Math.round(e.tsUs - secs * 1e6)).padStart(6, '0');
  let s = `[${secs}.${micros}]\t${`[${e.type}]`.padStart(9)} ${header(f)}`;
  if (!(e.type === 'DESTROY' && e.reason === 'timeout')) s += `${f.timeout} `;
  if (f.state !== undefined && (e.protoinfo || e.type === 'DESTROY')) s += `${f.state} `;
  s += body(f, o);
  if (f.zone) s += `zone=${f.zone} `;
  if (f.helper) s += `helper=${f.helper} `;
  return `${s}id=${f.id}`;
}

/** One line of `conntrack -L -o extended,id`. */
export function formatEntry(f: FlowRecord, o: TextOptions): string {
  let s = `${header(f)}${f.timeout} `;
  if (f.state !== undefined) s += `${f.state} `;
  s += body(f, o) + 'mark=0 ';
  if (f.zone) s += `zone=${f.zone} `;
  if (f.helper) s += `helper=${f.helper} `;
  return `${s}use=${f.use ?? 1} id=${f.id}`;
}

const STAT_ORDER: Array<keyof CtStats> = [
  'found', 'invalid', 'insert', 'insert_failed', 'drop', 'early_drop', 'error', 'search_restart', 'clash_resolve', 'chaintoolong',
];

/** `conntrack -S`: one line (the shards summed, as one CPU). */
export function formatStats(stats: CtStats, entries: number): string {
  const fields = STAT_ORDER.map((k) => `${k}=${stats[k]}`).join(' ');
  return `cpu=0   \tentries=${entries} ${fields} `;
}

/** The all-ones mask conntrack prints for an address compared in full. */
function fullMask(family: 4 | 6): string {
  return family === 4 ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
}

/** One expectation as `conntrack -L expect` prints it (libnetfilter_conntrack's default expect printer). */
export function formatExpectation(x: ExpectationRecord): string {
  let s = `${x.timeout} proto=${x.proto} src=${x.src} dst=${x.dst} sport=${x.sport} dport=${x.dport} `;
  s += `mask-src=${fullMask(x.family)} mask-dst=${fullMask(x.family)} sport=${x.sportExact ? 65535 : 0} dport=65535 `;
  s += `master-src=${x.master.src} master-dst=${x.master.dst} sport=${x.master.sport} dport=${x.master.dport} `;
  if (x.zone) s += `zone=${x.zone} `;
  s += 'class=0 ';
  if (x.flags & 1) s += 'PERMANENT ';
  return `${s}helper=${x.helper}`;
}

/**
 * One line of `conntrack -E expect`. Its timestamp is printed as conntrack-tools does for
 * expectations: the microseconds left-aligned in six columns, not zero-padded.
 */
export function formatExpectEvent(e: ExpectEvent): string {
  const secs = Math.floor(e.tsUs / 1e6);
  const micros = String(Math.round(e.tsUs - secs * 1e6)).padEnd(6);
  return `[${secs}.${micros}]\t${`[${e.type}]`.padStart(9)} ${formatExpectation(e.expectation)}`;
}

/** JSON form of an expectation. */
export function expectationJson(x: ExpectationRecord): Record<string, unknown> {
  return {
    timeout: x.timeout,
    zone: x.zone,
    l3: x.family === 4 ? 'ipv4' : 'ipv6',
    proto: protoName(x.proto),
    protonum: x.proto,
    src: x.src,
    dst: x.dst,
    sport: x.sportExact ? x.sport : null,
    dport: x.dport,
    master: { id: x.masterId, ...x.master },
    helper: x.helper,
    class: 0,
    flags: x.flags & 1 ? ['PERMANENT'] : [],
  };
}

/** JSON form of a flow, with names spelled out for people and tools. */
export function flowJson(f: FlowRecord): Record<string, unknown> {
  const status: string[] = [];
  for (const [name, bit] of Object.entries(STATUS)) if (f.status & bit) status.push(name);
  return {
    id: f.id,
    zone: f.zone,
    l3: f.family === 4 ? 'ipv4' : 'ipv6',
    proto: protoName(f.proto),
    protonum: f.proto,
    state: f.state ?? null,
    timeout: f.timeout,
    orig: { ...f.orig, ...f.counters.orig },
    reply: { ...f.reply, ...f.counters.reply },
    status,
    start: f.startUs / 1e6,
    last: f.lastUs / 1e6,
    ...(f.helper ? { helper: f.helper } : {}),
    ...(f.masterId !== undefined ? { master: f.masterId } : {}),
  };
}
