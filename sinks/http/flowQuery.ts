/**
 * GET /flows: the live table, filtered the way `conntrack -L` filters it, sorted and cut into
 * pages. The query string is checked with zod before anything is read, and a bad or unknown
 * parameter is reported by name, so a typo never silently widens the result.
 *
 * Parameters (all optional):
 *   proto      tcp, udp, udplite, icmp, icmpv6, sctp, gre, dccp or a protocol number  (-p)
 *   family     ipv4 | ipv6                                                            (-f)
 *   zone       conntrack zone                                                        (-w)
 *   state      protocol state (ESTABLISHED, SYN_SENT, ...) or UNREPLIED/REPLIED/ASSURED for
 *              protocols without one (--state)
 *   status     comma list of ASSURED, SEEN_REPLY, UNREPLIED, CONFIRMED, SRC_NAT, DST_NAT (-u)
 *   src, dst             original-direction address or CIDR prefix                 (-s, -d)
 *   reply-src, reply-dst reply-direction address or CIDR prefix                      (-r, -q)
 *   sport, dport, reply-sport, reply-dport   ports                    (--sport, --dport, ...)
 *   nat        src | dst | any | none: entries that are source-NATed, destination-NATed,
 *              either, or neither (--src-nat, --dst-nat, --any-nat)
 *   sort       id, bytes, packets, timeout, start or last; a leading '-' sorts descending
 *   limit      page size, 1 to 1000 (default 100);  offset  entries to skip (default 0)
 */
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import type { FlowRecord } from '../../processors/flow';
import { STATUS } from '../../processors/flow';
import { IPPROTO } from '../../processors/packet';
import { flowJson } from '../conntrackText';
import { entryState } from '../telemetry/labels';
import type { TableView } from '../telemetry/observer';
import { flowBytes, flowPackets } from '../telemetry/topFlows';

export class QueryError extends Error {
  constructor(readonly parameter: string, message: string) {
    super(message);
  }
}

const PROTOS: Record<string, number> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, udplite: IPPROTO.UDPLITE, icmp: IPPROTO.ICMP, icmpv6: IPPROTO.ICMPV6, sctp: IPPROTO.SCTP, gre: IPPROTO.GRE, dccp: IPPROTO.DCCP };

/** Accepts an address or CIDR prefix; becomes a test on address text. */
const addressMatch = z.string().transform((text, ctx) => {
  const [addr, bits, extra] = text.split('/');
  const family = isIP(addr);
  const max = family === 6 ? 128 : 32;
  const prefix = bits === undefined ? max : Number(bits);
  if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
    ctx.addIssue({ code: 'custom', message: `'${text}' is not an IP address or CIDR prefix` });
    return z.NEVER;
  }
  const list = new BlockList();
  const type = family === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(addr, prefix, type);
  return (a: string): boolean => isIP(a) === family && list.check(a, type);
});

const port = z.coerce.number().int().min(0).max(65535);
const SORT_KEYS = ['id', 'bytes', 'packets', 'timeout', 'start', 'last'] as const;
const STATUS_NAMES = ['ASSURED', 'SEEN_REPLY', 'UNREPLIED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT', 'EXPECTED', 'DYING'] as const;

const schema = z
  .object({
    proto: z.string().transform((p, ctx) => {
      const n = /^\d+$/.test(p) ? Number(p) : PROTOS[p.toLowerCase()];
      if (n === undefined || n > 255) {
        ctx.addIssue({ code: 'custom', message: `'${p}' is not a protocol (${Object.keys(PROTOS).join(', ')} or 0-255)` });
        return z.NEVER;
      }
      return n;
    }),
    family: z.enum(['ipv4', 'ipv6']),
    zone: z.coerce.number().int().min(0).max(65535),
    state: z.string().regex(/^[A-Za-z_]+$/, 'a state name such as ESTABLISHED').transform((s) => s.toUpperCase()),
    status: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim().toUpperCase()))
      .pipe(z.array(z.enum(STATUS_NAMES)).min(1)),
    src: addressMatch,
    dst: addressMatch,
    'reply-src': addressMatch,
    'reply-dst': addressMatch,
    sport: port,
    dport: port,
    'reply-sport': port,
    'reply-dport': port,
    nat: z.enum(['src', 'dst', 'any', 'none']),
    id: z.coerce.number().int().min(0),
    sort: z
      .string()
      .regex(/^-?[a-z]+$/, 'a field name, with - in front for descending order')
      .refine((s) => (SORT_KEYS as readonly string[]).includes(s.replace(/^-/, '')), `one of ${SORT_KEYS.join(', ')}`),
    limit: z.coerce.number().int().min(1).max(1000),
    offset: z.coerce.number().int().min(0),
  })
  .partial()
  .strict();

export type FlowQuery = z.output<typeof schema>;

/** Parses a query string; throws QueryError naming the first bad parameter. */
export function parseFlowQuery(params: URLSearchParams): FlowQuery {
  const raw: Record<string, string> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    if (values.length > 1) throw new QueryError(key, `parameter '${key}' is given ${values.length} times; give it once`);
    raw[key] = values[0];
  }
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    throw new QueryError(key, `unknown parameter '${key}' (known: ${Object.keys(schema.shape).join(', ')})`);
  }
  const key = String(issue.path[0]);
  throw new QueryError(key, `bad parameter '${key}': ${issue.message}`);
}

const srcNat = (f: FlowRecord): boolean => (f.status & STATUS.SRC_NAT) !== 0 || f.reply.dst !== f.orig.src;
const dstNat = (f: FlowRecord): boolean => (f.status & STATUS.DST_NAT) !== 0 || f.reply.src !== f.orig.dst;

function hasStatus(f: FlowRecord, name: (typeof STATUS_NAMES)[number]): boolean {
  if (name === 'UNREPLIED') return (f.status & STATUS.SEEN_REPLY) === 0;
  return (f.status & STATUS[name]) !== 0;
}

function matches(f: FlowRecord, q: FlowQuery): boolean {
  if (q.id !== undefined && f.id !== q.id) return false;
  if (q.proto !== undefined && f.proto !== q.proto) return false;
  if (q.family !== undefined && (f.family === 4 ? 'ipv4' : 'ipv6') !== q.family) return false;
  if (q.zone !== undefined && f.zone !== q.zone) return false;
  if (q.state !== undefined && entryState(f) !== q.state) return false;
  if (q.status && !q.status.every((s) => hasStatus(f, s))) return false;
  if (q.src && !q.src(f.orig.src)) return false;
  if (q.dst && !q.dst(f.orig.dst)) return false;
  if (q['reply-src'] && !q['reply-src'](f.reply.src)) return false;
  if (q['reply-dst'] && !q['reply-dst'](f.reply.dst)) return false;
  if (q.sport !== undefined && f.orig.sport !== q.sport) return false;
  if (q.dport !== undefined && f.orig.dport !== q.dport) return false;
  if (q['reply-sport'] !== undefined && f.reply.sport !== q['reply-sport']) return false;
  if (q['reply-dport'] !== undefined && f.reply.dport !== q['reply-dport']) return false;
  if (q.nat === 'src' && !srcNat(f)) return false;
  if (q.nat === 'dst' && !dstNat(f)) return false;
  if (q.nat === 'any' && !(srcNat(f) || dstNat(f))) return false;
  if (q.nat === 'none' && (srcNat(f) || dstNat(f))) return false;
  return true;
}

const SORT_VALUE: Record<(typeof SORT_KEYS)[number], (f: FlowRecord) => number> = {
  id: (f) => f.id,
  bytes: flowBytes,
  packets: flowPackets,
  timeout: (f) => f.timeout,
  start: (f) => f.startUs,
  last: (f) => f.lastUs,
};

export interface FlowPage {
  total: number;
  offset: number;
  limit: number;
  flows: Array<Record<string, unknown>>;
}

/** Runs a parsed query over the partitions' tables. Ties keep table order (partition, then id). */
export function queryFlows(tables: Array<[number, TableView]>, q: FlowQuery): FlowPage {
  const hits: Array<{ partition: number; flow: FlowRecord }> = [];
  for (const [partition, view] of tables) for (const flow of view.list()) if (matches(flow, q)) hits.push({ partition, flow });
  const sort = q.sort ?? 'id';
  const desc = sort.startsWith('-');
  const value = SORT_VALUE[sort.replace(/^-/, '') as (typeof SORT_KEYS)[number]];
  hits.sort((a, b) => {
    const d = desc ? value(b.flow) - value(a.flow) : value(a.flow) - value(b.flow);
    return d || a.partition - b.partition || a.flow.id - b.flow.id;
  });
  const offset = q.offset ?? 0;
  const limit = q.limit ?? 100;
  const flows = hits.slice(offset, offset + limit).map(({ partition, flow }) => ({ partition, ...flowJson(flow), bytes: flowBytes(flow), packets: flowPackets(flow) }));
  return { total: hits.length, offset, limit, flows };
}
