/**
 * Parser for the text conntrack-tools prints: `conntrack -E -o timestamp,extended,id` event
 * lines and `conntrack -L -o extended,id` table lines. Used to read flow events from hosts and to
 * compare ctflow with the kernel oracle.
 */
import type { Tuple } from '../../processors/flow';

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
  /** Bracketed flags: UNREPLIED, ASSURED, ... */
  flags: string[];
  id?: string;
  zone: number;
  mark?: number;
  helper?: string;
}

export class CtTextError extends Error {}

const TYPES = new Set(['NEW', 'UPDATE', 'DESTROY']);

export function parseConntrackLine(line: string): ParsedCtLine {
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
  const l3 = tokens[k++];
  if (l3 !== 'ipv4' && l3 !== 'ipv6') throw new CtTextError(`expected ipv4 or ipv6, got '${l3 ?? ''}'`);
  k++; // l3 number
  const protoName = tokens[k++];
  const proto = Number(tokens[k++]);
  if (!protoName || !Number.isInteger(proto)) throw new CtTextError('missing protocol name and number');
  const out: ParsedCtLine = {
    family: l3 === 'ipv4' ? 4 : 6,
    protoName,
    proto,
    orig: { src: '', dst: '', sport: 0, dport: 0 },
    reply: { src: '', dst: '', sport: 0, dport: 0 },
    flags: [],
    zone: 0,
  };
  if (tsUs !== undefined) out.tsUs = tsUs;
  if (type) out.type = type;
  if (/^\d+$/.test(tokens[k] ?? '')) out.timeout = Number(tokens[k++]);
  if (/^[A-Z_0-9]+$/.test(tokens[k] ?? '')) out.state = tokens[k++];
  let tuple: 0 | 1 | 2 = 0;
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
    if (eq < 0) throw new CtTextError(`unexpected token '${t}'`);
    const key = t.slice(0, eq);
    const value = t.slice(eq + 1);
    if (key === 'src') tuple = tuple === 0 ? 1 : 2;
    const cur = tuple === 2 ? out.reply : out.orig;
    const prev = prevKey;
    prevKey = key;
    const ic = icmp[tuple === 2 ? 1 : 0];
    switch (key) {
      case 'src': cur.src = value; break;
      case 'dst': cur.dst = value; break;
      case 'sport': cur.sport = Number(value); break;
      case 'dport': cur.dport = Number(value); break;
      case 'srckey': cur.sport = Number(value); break;
      case 'dstkey': cur.dport = Number(value); break;
      case 'type': ic.type = Number(value); sawIcmp = true; break;
      case 'code': ic.code = Number(value); break;
      case 'packets': cur.packets = Number(value); break;
      case 'bytes': cur.bytes = Number(value); break;
      case 'id':
        // ICMP tuples end with their own id= (right after code=); the entry id comes last.
        if (prev === 'code') ic.id = Number(value);
        else out.id = value;
        break;
      case 'zone': out.zone = Number(value); break;
      case 'mark': out.mark = Number(value); break;
      case 'helper': out.helper = value; break;
      default: break; // use=, secctx=, labels and others carry nothing ctflow models
    }
  }
  if (!out.orig.src || !out.reply.src) throw new CtTextError('missing original or reply tuple');
  if (sawIcmp) {
    out.orig.icmp = icmp[0];
    out.reply.icmp = icmp[1];
  }
  return out;
}
