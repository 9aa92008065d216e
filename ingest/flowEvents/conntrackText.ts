/**
 * Parser for the text conntrack-tools prints: `conntrack -E -o timestamp,extended,id` event
 * lines and `conntrack -L -o extended,id` table lines (without `extended` too: the family is then
 * read from the addresses). Used to read flow events from hosts and to compare ctflow with the
 * kernel oracle.
 *
 * Field order follows libnetfilter_conntrack's default printer: [time] [TYPE] l3 l3num l4 l4num
 * [timeout] [STATE] original tuple [counters] [UNREPLIED] reply tuple [counters] [ASSURED]
 * mark= secctx= zone= delta-time= helper= use= id=, and for an entry deleted by a program a
 * trailing `[USERSPACE] portid= progname=`.
 */
import type { Tuple } from '../../processors/flow';
import type { HostFlowEvent } from '../../processors/fleet/hostFlowEvent';
import { FlowEventFormatError, PROTO_BY_NAME, checkAddress, excerpt, impliedStatus, parseIntField, withSource } from './common';
import type { FlowEventOptions } from './common';

export interface ParsedCtLine {
  tsUs?: number;
  type?: 'NEW' | 'UPDATE' | 'DESTROY';
  family: 4 | 6;
  protoName: string;
  proto: number;
  timeout?: number;
  state?: string;
  orig: Tuple & { packets?: number; bytes?: number };
  reply: Tuple & { packets?: number; bytes?: number };
  /** Bracketed flags: UNREPLIED, ASSURED, OFFLOAD, USERSPACE ... */
  flags: string[];
  id?: string;
  zone: number;
  mark?: number;
  helper?: string;
  /** Reference count (`use=`, listings only). */
  use?: number;
  /** Seconds since the entry was created (`delta-time=`, with nf_conntrack_timestamp=1). */
  deltaTime?: number;
}

/** A line that is not conntrack text; a FlowEventFormatError, so every reader throws one kind. */
export class CtTextError extends FlowEventFormatError {}

const TYPES = new Set(['NEW', 'UPDATE', 'DESTROY']);
const U32 = 0xffffffff;

type Side = 0 | 1 | 2; // before any tuple, original, reply

/** Parses one line; any problem is a CtTextError naming it. */
export function parseConntrackLine(line: string): ParsedCtLine {
  try {
    return parseLine(line);
  } catch (err) {
    if (err instanceof FlowEventFormatError && !(err instanceof CtTextError)) throw new CtTextError(err.message);
    throw err;
  }
}

function parseLine(line: string): ParsedCtLine {
  const tokens = line.trim().split(/\s+/);
  let k = 0;
  let tsUs: number | undefined;
  let type: ParsedCtLine['type'];
  const ts = /^\[(\d+)\.(\d{1,6})\]$/.exec(tokens[k] ?? '');
  if (ts) {
    tsUs = Number(ts[1]) * 1e6 + Number(ts[2].padEnd(6, '0'));
    k++;
  }
  const ty = /^\[([A-Z]+)\]$/.exec(tokens[k] ?? '');
  if (ty && TYPES.has(ty[1])) {
    type = ty[1] as ParsedCtLine['type'];
    k++;
  }
  // `-o extended` prefixes the layer 3 name and number; without it the line starts at layer 4.
  let family: 4 | 6 | undefined;
  const l3 = tokens[k];
  if (l3 === 'ipv4' || l3 === 'ipv6') {
    family = l3 === 'ipv4' ? 4 : 6;
    if (!/^\d+$/.test(tokens[k + 1] ?? '')) throw new CtTextError(`expected the layer 3 number after '${l3}'`);
    k += 2;
  }
  const protoName = tokens[k++];
  if (!protoName || !/^[a-z0-9-]+$/.test(protoName)) throw new CtTextError(`expected ipv4, ipv6 or a protocol name, got '${protoName ?? ''}'`);
  const protoText = tokens[k++] ?? '';
  if (!/^\d+$/.test(protoText)) {
    if (family === undefined) throw new CtTextError(`expected ipv4, ipv6 or a protocol name and number, got '${excerpt(`${protoName} ${protoText}`, 40)}'`);
    throw new CtTextError(`missing protocol number after '${protoName}'`);
  }
  const proto = parseIntField(protoText, 'protocol number', 0, 255);
  const known = PROTO_BY_NAME[protoName];
  if (known !== undefined && known !== proto) throw new CtTextError(`protocol '${protoName}' is number ${known}, not ${proto}`);
  const out: ParsedCtLine = {
    family: family ?? 4,
    protoName,
    proto,
    orig: { src: '', dst: '', sport: 0, dport: 0 },
    reply: { src: '', dst: '', sport: 0, dport: 0 },
    flags: [],
    zone: 0,
  };
  if (tsUs !== undefined) out.tsUs = tsUs;
  if (type) out.type = type;
  if (/^\d+$/.test(tokens[k] ?? '')) out.timeout = parseIntField(tokens[k++], 'timeout', 0, U32);
  if (/^[A-Z][A-Z_0-9]*$/.test(tokens[k] ?? '')) out.state = tokens[k++];
  let side: Side = 0;
  const icmp: Array<{ type: number; code: number; id: number }> = [{ type: 0, code: 0, id: 0 }, { type: 0, code: 0, id: 0 }];
  let sawIcmp = false;
  let prevKey = '';
  for (; k < tokens.length; k++) {
    const t = tokens[k];
    const flag = /^\[([A-Z_]+)\]$/.exec(t);
    if (flag) {
      out.flags.push(flag[1]);
      continue;
    }
    const eq = t.indexOf('=');
    if (eq <= 0) throw new CtTextError(`unexpected token '${t}'`);
    const key = t.slice(0, eq);
    const value = t.slice(eq + 1);
    if (key === 'src') {
      if (side === 2) throw new CtTextError('more than two tuples');
      side = side === 0 ? 1 : 2;
    }
    const cur = side === 2 ? out.reply : out.orig;
    const dir = side === 2 ? 'reply' : 'original';
    const prev = prevKey;
    prevKey = key;
    const ic = icmp[side === 2 ? 1 : 0];
    switch (key) {
      case 'src': cur.src = value; break;
      case 'dst': cur.dst = value; break;
      case 'sport': cur.sport = parseIntField(value, `${dir} sport`, 0, 0xffff); break;
      case 'dport': cur.dport = parseIntField(value, `${dir} dport`, 0, 0xffff); break;
      // GRE keys are printed in hex (0x...); the tuple keeps them where ports go.
      case 'srckey': cur.sport = parseIntField(value, `${dir} srckey`, 0, U32); break;
      case 'dstkey': cur.dport = parseIntField(value, `${dir} dstkey`, 0, U32); break;
      case 'type': ic.type = parseIntField(value, `${dir} icmp type`, 0, 255); sawIcmp = true; break;
      case 'code': ic.code = parseIntField(value, `${dir} icmp code`, 0, 255); break;
      case 'packets': cur.packets = parseIntField(value, `${dir} packets`, 0, Number.MAX_SAFE_INTEGER); break;
      case 'bytes': cur.bytes = parseIntField(value, `${dir} bytes`, 0, Number.MAX_SAFE_INTEGER); break;
      case 'id':
        // ICMP tuples end with their own id= (right after code=); the entry id comes last.
        if (prev === 'code') ic.id = parseIntField(value, `${dir} icmp id`, 0, 0xffff);
        else out.id = String(parseIntField(value, 'id', 0, U32));
        break;
      case 'zone': out.zone = parseIntField(value, 'zone', 0, 0xffff); break;
      case 'mark': out.mark = parseIntField(value, 'mark', 0, U32); break;
      case 'use': out.use = parseIntField(value, 'use', 0, U32); break;
      case 'delta-time': out.deltaTime = parseIntField(value, 'delta-time', 0, Number.MAX_SAFE_INTEGER); break;
      case 'helper': out.helper = value; break;
      // secmark=, secctx=, labels=, zone-orig=/zone-reply= (directional zones), and the
      // portid=/progname= of [USERSPACE] carry nothing the fleet table models.
      default: break;
    }
  }
  if (!out.orig.src || !out.reply.src) throw new CtTextError('missing original or reply tuple');
  if (!out.orig.dst || !out.reply.dst) throw new CtTextError('a tuple has no dst=');
  if (family === undefined) out.family = out.orig.src.includes(':') ? 6 : 4;
  for (const [t, dir] of [[out.orig, 'original'], [out.reply, 'reply']] as const) {
    checkAddress(t.src, out.family, `${dir} src`);
    checkAddress(t.dst, out.family, `${dir} dst`);
  }
  if (sawIcmp) {
    out.orig.icmp = icmp[0];
    out.reply.icmp = icmp[1];
  }
  return out;
}

function plainTuple(t: ParsedCtLine['orig']): Tuple {
  const out: Tuple = { src: t.src, dst: t.dst, sport: t.sport, dport: t.dport };
  if (t.icmp) out.icmp = { ...t.icmp };
  return out;
}

/** The event a parsed line stands for. A listing line (no [TYPE]) becomes an UPDATE marked `listed`. */
export function hostEventFromCtLine(p: ParsedCtLine, opts?: FlowEventOptions): HostFlowEvent {
  const orig = plainTuple(p.orig);
  const reply = plainTuple(p.reply);
  const e: HostFlowEvent = {
    type: p.type ?? 'UPDATE',
    flow: {
      zone: p.zone,
      family: p.family,
      proto: p.proto,
      orig,
      reply,
      status: impliedStatus(p.flags, p.proto, orig, reply),
    },
  };
  if (!p.type) e.listed = true;
  if (p.tsUs !== undefined) e.tsUs = p.tsUs;
  const f = e.flow;
  if (p.id !== undefined) f.id = Number(p.id);
  if (p.state !== undefined) f.state = p.state;
  if (p.timeout !== undefined) f.timeout = p.timeout;
  // With nf_conntrack_acct=1 both directions print packets= and bytes=.
  if (p.orig.packets !== undefined || p.reply.packets !== undefined) {
    f.counters = {
      orig: { packets: p.orig.packets ?? 0, bytes: p.orig.bytes ?? 0 },
      reply: { packets: p.reply.packets ?? 0, bytes: p.reply.bytes ?? 0 },
    };
  }
  if (p.deltaTime !== undefined) f.deltaTime = p.deltaTime;
  if (p.helper !== undefined) f.helper = p.helper;
  if (p.mark !== undefined) f.mark = p.mark;
  return withSource(e, opts);
}

/** One line of conntrack text as a HostFlowEvent; throws FlowEventFormatError. */
export function parseConntrackEvent(line: string, opts?: FlowEventOptions): HostFlowEvent {
  return hostEventFromCtLine(parseConntrackLine(line), opts);
}
