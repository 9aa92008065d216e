/**
 * The filters' values as text (command-line options, query parameters) into a FlowFilter, with
 * conntrack(8)'s vocabulary and checks: status and state names, CIDR or `--mask-src` masks, one
 * address family throughout. A bad value throws FilterValueError naming the field, so each caller
 * can report it under its own name for the option.
 */
import type { EventType } from '../flow';
import { STATUS } from '../flow';
import { IPPROTO } from '../packet';
import { TCP_STATE_NAMES } from '../conntrack/proto/tcpStates';
import { SCTP_STATE_NAMES } from '../conntrack/proto/sctpStates';
import { ipv6Groups, parsePort, parsePrefix, parseProto } from '../conntrack/rules/match';
import type { Prefix } from '../conntrack/rules/match';
import type { EventMask, FlowFilter, NatFilter } from './flowFilter';
import { ICMP_PROTOS, PORT_PROTOS } from './flowFilter';

/** The filters as text; the NAT ones are `true` when given without an address. */
export interface FilterInput {
  proto?: string;
  family?: string;
  zone?: string;
  state?: string;
  status?: string;
  src?: string;
  dst?: string;
  replySrc?: string;
  replyDst?: string;
  maskSrc?: string;
  maskDst?: string;
  sport?: string;
  dport?: string;
  replySport?: string;
  replyDport?: string;
  icmpType?: string;
  icmpCode?: string;
  icmpId?: string;
  srcNat?: string | true;
  dstNat?: string | true;
  anyNat?: string | true;
}

export type FilterField = keyof FilterInput;

export class FilterValueError extends Error {
  constructor(readonly field: FilterField, message: string) {
    super(message);
  }
}

/**
 * `-u` names: conntrack's (UNSET is no bit at all; FIXED_TIMEOUT, OFFLOAD and HW_OFFLOAD are the
 * kernel's IPS_* bits, which ctflow never sets) and the ones ctflow's JSON shows. UNREPLIED is
 * ctflow's word for SEEN_REPLY being off, what conntrack prints as [UNREPLIED].
 */
const STATUS_BITS: Readonly<Record<string, number>> = {
  ASSURED: STATUS.ASSURED,
  SEEN_REPLY: STATUS.SEEN_REPLY,
  UNSET: 0,
  FIXED_TIMEOUT: 1 << 10,
  EXPECTED: STATUS.EXPECTED,
  OFFLOAD: 1 << 14,
  HW_OFFLOAD: 1 << 15,
  CONFIRMED: STATUS.CONFIRMED,
  SRC_NAT: STATUS.SRC_NAT,
  DST_NAT: STATUS.DST_NAT,
  DYING: STATUS.DYING,
  UNREPLIED: 0,
};

/** conntrack's names for the kernel's TCP state 9 is LISTEN; ctflow (like the kernel's /proc) prints SYN_SENT2. */
const STATE_ALIASES: Readonly<Record<string, string>> = { LISTEN: 'SYN_SENT2' };
const DCCP_STATE_NAMES = ['NONE', 'REQUEST', 'RESPOND', 'PARTOPEN', 'OPEN', 'CLOSEREQ', 'CLOSING', 'TIMEWAIT', 'IGNORE', 'INVALID'];
/** What `--state` is compared with for protocols without a state of their own (ctflow's extension). */
const STATELESS_NAMES = ['UNREPLIED', 'REPLIED', 'ASSURED'];

function stateNames(proto: number | undefined): string[] {
  if (proto === IPPROTO.TCP) return [...TCP_STATE_NAMES, 'LISTEN'];
  if (proto === IPPROTO.SCTP) return [...SCTP_STATE_NAMES];
  if (proto === IPPROTO.DCCP) return DCCP_STATE_NAMES;
  if (proto !== undefined) return STATELESS_NAMES;
  return [...new Set([...TCP_STATE_NAMES, 'LISTEN', ...SCTP_STATE_NAMES, ...DCCP_STATE_NAMES, ...STATELESS_NAMES])];
}

function integer(text: string, max: number, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new Error(`'${text}' is not ${what} (0-${max})`);
  return Number(text);
}

/** `-e`: a comma list of ALL, NEW, UPDATES (or UPDATE), DESTROY, any case. */
export function parseEventMask(text: string): EventMask {
  const types = new Set<EventType>();
  for (const word of text.split(',')) {
    const w = word.trim().toUpperCase();
    if (w === 'ALL') ['NEW', 'UPDATE', 'DESTROY'].forEach((t) => types.add(t as EventType));
    else if (w === 'NEW' || w === 'DESTROY') types.add(w);
    else if (w === 'UPDATES' || w === 'UPDATE') types.add('UPDATE');
    else throw new Error(`'${word}' is not an event type (ALL, NEW, UPDATES, DESTROY)`);
  }
  return types;
}

function parseStatus(text: string): { statusAll: number; unreplied: boolean } {
  let statusAll = 0;
  let unreplied = false;
  for (const word of text.split(',')) {
    const w = word.trim().toUpperCase();
    if (!(w in STATUS_BITS)) throw new Error(`'${word}' is not a status (${Object.keys(STATUS_BITS).join(', ')})`);
    statusAll |= STATUS_BITS[w];
    if (w === 'UNREPLIED') unreplied = true;
  }
  return { statusAll, unreplied };
}

/** One address, no prefix length: for NAT targets. `[v6]:port` and `v4:port` carry a port. */
function parseNatTarget(text: string): NatFilter {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([\d.]+)(?::(\d+))?$/.exec(text) ?? /^([^/]*:[^/]*)()$/.exec(text);
  if (!m || m[1].includes('/')) throw new Error(`'${text}' is not an IP address, IP:PORT or [IPv6]:PORT`);
  const addr = parsePrefix(m[1]);
  return { target: { addr, port: m[2] ? parsePort(m[2]) : undefined } };
}

/** A dotted IPv4 mask (any bits, as conntrack ANDs it) or a contiguous IPv6 one. */
function withMask(addrText: string, maskText: string): Prefix {
  const addr = parsePrefix(addrText);
  if (addr.bits !== (addr.family === 4 ? 32 : 128)) throw new Error(`give '${addrText}' without a prefix length when a mask is given`);
  const mask = parsePrefix(maskText);
  if (mask.family !== addr.family) throw new Error(`mask '${maskText}' is not of the address's family`);
  if (addr.family === 4) {
    const mask4 = mask.net4;
    return { ...addr, text: `${addrText}/${maskText}`, mask4, net4: (addr.net4 & mask4) >>> 0 };
  }
  const bits = ipv6Groups(maskText).map((g) => g.toString(2).padStart(16, '0')).join('');
  if (/01/.test(bits)) throw new Error(`'${maskText}' is not a contiguous IPv6 mask`);
  return parsePrefix(`${addrText}/${bits.indexOf('0') < 0 ? 128 : bits.indexOf('0')}`);
}

/** Parses one field, reporting a failure under that field's name. */
function field<T>(name: FilterField, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof FilterValueError) throw err;
    throw new FilterValueError(name, (err as Error).message);
  }
}

function familyOf(text: string): 4 | 6 {
  if (text === 'ipv4') return 4;
  if (text === 'ipv6') return 6;
  throw new Error(`'${text}' is not a family (ipv4 or ipv6)`);
}

/** The whole filter, with conntrack's cross-checks (masks need their address, one family, per-protocol options). */
export function parseFlowFilter(input: FilterInput): FlowFilter {
  const f: FlowFilter = {};
  const i = input;
  if (i.proto !== undefined) f.proto = field('proto', () => parseProto(i.proto!));
  if (i.family !== undefined) f.family = field('family', () => familyOf(i.family!));
  if (i.zone !== undefined) f.zone = field('zone', () => integer(i.zone!, 65535, 'a zone'));
  if (i.status !== undefined) Object.assign(f, field('status', () => parseStatus(i.status!)));
  const address = (name: 'src' | 'dst' | 'replySrc' | 'replyDst', mask?: 'maskSrc' | 'maskDst'): Prefix | undefined => {
    const text = i[name];
    const maskText = mask ? i[mask] : undefined;
    if (text === undefined) {
      if (maskText !== undefined) throw new FilterValueError(mask!, `'${maskText}' masks the original ${mask === 'maskSrc' ? 'source' : 'destination'}: give that address too`);
      return undefined;
    }
    return maskText === undefined ? field(name, () => parsePrefix(text)) : field(mask!, () => withMask(text, maskText));
  };
  f.origSrc = address('src', 'maskSrc');
  f.origDst = address('dst', 'maskDst');
  f.replySrc = address('replySrc');
  f.replyDst = address('replyDst');
  for (const name of ['srcNat', 'dstNat', 'anyNat'] as const) {
    const v = i[name];
    if (v !== undefined) f[name] = v === true ? {} : field(name, () => parseNatTarget(v));
  }
  for (const name of ['sport', 'dport', 'replySport', 'replyDport'] as const) {
    const v = i[name];
    if (v === undefined) continue;
    if (f.proto !== undefined && !PORT_PROTOS.has(f.proto)) throw new FilterValueError(name, `'${v}': protocol ${i.proto} has no ports`);
    const port = field(name, () => parsePort(v));
    const key = { sport: 'origSport', dport: 'origDport', replySport: 'replySport', replyDport: 'replyDport' } as const;
    f[key[name]] = port;
  }
  for (const [name, key, max] of [['icmpType', 'icmpType', 255], ['icmpCode', 'icmpCode', 255], ['icmpId', 'icmpId', 65535]] as const) {
    const v = i[name];
    if (v === undefined) continue;
    if (f.proto !== undefined && !ICMP_PROTOS.has(f.proto)) throw new FilterValueError(name, `'${v}': protocol ${i.proto} is not icmp or icmpv6`);
    f[key] = field(name, () => integer(v, max, 'a number'));
  }
  if (i.state !== undefined) {
    const raw = i.state.trim().toUpperCase();
    const names = stateNames(f.proto);
    if (!names.includes(raw)) throw new FilterValueError('state', `'${i.state}' is not a state${f.proto !== undefined ? ` of protocol ${i.proto}` : ''} (${names.join(', ')})`);
    f.state = STATE_ALIASES[raw] ?? raw;
  }
  checkOneFamily(f, i);
  return f;
}

/** Checks one value on its own (the checks between options come with parseFlowFilter); throws with the reason. */
export function checkFilterValue(name: FilterField, value: string): void {
  if (name === 'maskSrc' || name === 'maskDst') {
    const mask = parsePrefix(value);
    if (mask.bits !== (mask.family === 4 ? 32 : 128)) throw new Error(`'${value}' is not a mask (255.255.255.0, ffff:ffff::)`);
    return;
  }
  parseFlowFilter({ [name]: value });
}

/** conntrack refuses addresses of two families (or of another family than -f): nothing could match. */
function checkOneFamily(f: FlowFilter, i: FilterInput): void {
  let family = f.family;
  const given: Array<[FilterField, Prefix | undefined]> = [
    ['src', f.origSrc],
    ['dst', f.origDst],
    ['replySrc', f.replySrc],
    ['replyDst', f.replyDst],
    ['srcNat', f.srcNat?.target?.addr],
    ['dstNat', f.dstNat?.target?.addr],
    ['anyNat', f.anyNat?.target?.addr],
  ];
  for (const [name, p] of given) {
    if (!p) continue;
    if (family !== undefined && p.family !== family) throw new FilterValueError(name, `'${String(i[name])}' is an IPv${p.family} address, but the filter is for IPv${family} (mismatched address family)`);
    family = p.family;
  }
}
