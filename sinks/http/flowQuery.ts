/**
 * GET /flows: the live table, filtered the way `conntrack -L` filters it, sorted and cut into
 * pages. The query string is checked with zod before anything is read, and a bad or unknown
 * parameter is reported by name, so a typo never silently widens the result.
 *
 * Parameters (all optional), named after conntrack(8)'s options and meaning the same
 * (processors/filter decides for the CLI and the API alike); all given must hold:
 *   proto      tcp, udp, udplite, icmp, icmpv6, sctp, gre, dccp or a protocol number  (-p)
 *   family     ipv4 | ipv6                                                            (-f)
 *   zone       conntrack zone                                                        (-w)
 *   state      protocol state (ESTABLISHED, SYN_SENT, ...) or UNREPLIED/REPLIED/ASSURED for
 *              protocols without one (--state)
 *   status     comma list of statuses that must all be set: ASSURED, SEEN_REPLY, EXPECTED,
 *              FIXED_TIMEOUT, OFFLOAD, HW_OFFLOAD, UNSET, and CONFIRMED, SRC_NAT, DST_NAT,
 *              DYING, UNREPLIED (no reply yet)                                       (-u)
 *   src, dst             original-direction address or CIDR prefix                 (-s, -d)
 *   mask-src, mask-dst   a mask for src or dst (255.255.255.0)           (--mask-src, --mask-dst)
 *   reply-src, reply-dst reply-direction address or CIDR prefix                      (-r, -q)
 *   sport, dport, reply-sport, reply-dport   ports                    (--sport, --dport, ...)
 *   icmp-type, icmp-code, icmp-id            the original ICMP tuple       (--icmp-type, ...)
 *   nat        src | dst | any | none: entries that are source-NATed, destination-NATed,
 *              either, or neither (--src-nat, --dst-nat, --any-nat)
 *   nat-addr   with nat=src|dst|any: NATed to (src) or from (dst) this IP or IP:PORT
 *   id         the entry with this id
 *   sort       id, bytes, packets, timeout, start or last; a leading '-' sorts descending
 *   limit      page size, 1 to 1000 (default 100);  offset  entries to skip (default 0)
 */
import { z } from 'zod';
import { matchesFlow } from '../../processors/filter/flowFilter';
import type { FlowFilter } from '../../processors/filter/flowFilter';
import { FilterValueError, parseFlowFilter } from '../../processors/filter/parseFilter';
import type { FilterField, FilterInput } from '../../processors/filter/parseFilter';
import type { FlowRecord } from '../../processors/flow';
import { flowJson } from '../conntrackText';
import type { TableView } from '../telemetry/observer';
import { flowBytes, flowPackets } from '../telemetry/topFlows';

export class QueryError extends Error {
  constructor(readonly parameter: string, message: string) {
    super(message);
  }
}

/** Query parameters that are conntrack filters, and the filter field each one fills. */
const FILTER_PARAMS: Readonly<Record<string, Exclude<FilterField, 'srcNat' | 'dstNat' | 'anyNat'>>> = {
  proto: 'proto',
  family: 'family',
  zone: 'zone',
  state: 'state',
  status: 'status',
  src: 'src',
  dst: 'dst',
  'mask-src': 'maskSrc',
  'mask-dst': 'maskDst',
  'reply-src': 'replySrc',
  'reply-dst': 'replyDst',
  sport: 'sport',
  dport: 'dport',
  'reply-sport': 'replySport',
  'reply-dport': 'replyDport',
  'icmp-type': 'icmpType',
  'icmp-code': 'icmpCode',
  'icmp-id': 'icmpId',
};
const NAT_FIELD = { src: 'srcNat', dst: 'dstNat', any: 'anyNat' } as const;

const SORT_KEYS = ['id', 'bytes', 'packets', 'timeout', 'start', 'last'] as const;

const schema = z
  .object({
    ...Object.fromEntries(Object.keys(FILTER_PARAMS).map((k) => [k, z.string()])),
    nat: z.enum(['src', 'dst', 'any', 'none']),
    'nat-addr': z.string(),
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

export interface FlowQuery {
  filter: FlowFilter;
  id?: number;
  sort?: string;
  limit?: number;
  offset?: number;
}

/** The parameter a filter field came from, for messages. */
function parameterOf(field: FilterField): string {
  if (field === 'srcNat' || field === 'dstNat' || field === 'anyNat') return 'nat-addr';
  return Object.keys(FILTER_PARAMS).find((k) => FILTER_PARAMS[k] === field) ?? field;
}

/** The conntrack filters of a checked query. */
function filterOf(raw: Record<string, string | undefined>): FlowFilter {
  const input: FilterInput = {};
  for (const [param, field] of Object.entries(FILTER_PARAMS)) if (raw[param] !== undefined) input[field] = raw[param];
  const nat = raw.nat;
  const natAddr = raw['nat-addr'];
  if (natAddr !== undefined && (nat === undefined || nat === 'none')) throw new QueryError('nat-addr', `bad parameter 'nat-addr': '${natAddr}' needs nat=src, dst or any`);
  if (nat !== undefined && nat !== 'none') input[NAT_FIELD[nat as keyof typeof NAT_FIELD]] = natAddr ?? true;
  try {
    const filter = parseFlowFilter(input);
    if (nat === 'none') filter.notNat = true;
    return filter;
  } catch (err) {
    if (!(err instanceof FilterValueError)) throw err;
    const parameter = parameterOf(err.field);
    throw new QueryError(parameter, `bad parameter '${parameter}': ${err.message}`);
  }
}

/** Parses a query string; throws QueryError naming the first bad parameter. */
export function parseFlowQuery(params: URLSearchParams): FlowQuery {
  const raw: Record<string, string> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    if (values.length > 1) throw new QueryError(key, `parameter '${key}' is given ${values.length} times; give it once`);
    raw[key] = values[0];
  }
  const r = schema.safeParse(raw);
  if (r.success) {
    const { id, sort, limit, offset } = r.data;
    return { filter: filterOf(r.data as Record<string, string | undefined>), id, sort, limit, offset };
  }
  const issue = r.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    throw new QueryError(key, `unknown parameter '${key}' (known: ${Object.keys(schema.shape).join(', ')})`);
  }
  const key = String(issue.path[0]);
  throw new QueryError(key, `bad parameter '${key}': ${issue.message}`);
}

function matches(f: FlowRecord, q: FlowQuery): boolean {
  return (q.id === undefined || f.id === q.id) && matchesFlow(q.filter, f);
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

export interface FlowHit {
  partition: number;
  flow: FlowRecord;
}

/**
 * A query's matches in some partitions' tables: how many, and the first offset + limit of them
 * in page order. The rest can never reach the page, whichever partitions' matches join them, so
 * a table in another thread sends only these.
 */
export interface FlowHits {
  total: number;
  hits: FlowHit[];
}

/** Page order: the sort key, ties by partition then id (one table's order). */
function pageOrder(q: FlowQuery): (a: FlowHit, b: FlowHit) => number {
  const sort = q.sort ?? 'id';
  const desc = sort.startsWith('-');
  const value = SORT_VALUE[sort.replace(/^-/, '') as (typeof SORT_KEYS)[number]];
  return (a, b) => {
    const d = desc ? value(b.flow) - value(a.flow) : value(a.flow) - value(b.flow);
    return d || a.partition - b.partition || a.flow.id - b.flow.id;
  };
}

const pageEnd = (q: FlowQuery): number => (q.offset ?? 0) + (q.limit ?? 100);

export function matchingFlows(tables: Iterable<[number, TableView]>, q: FlowQuery): FlowHits {
  const hits: FlowHit[] = [];
  for (const [partition, view] of tables) for (const flow of view.list()) if (matches(flow, q)) hits.push({ partition, flow });
  hits.sort(pageOrder(q));
  return { total: hits.length, hits: hits.slice(0, pageEnd(q)) };
}

/** The matches of several sets of partitions (no partition in two) as one set's. */
export function mergeFlowHits(parts: readonly FlowHits[], q: FlowQuery): FlowHits {
  if (parts.length === 1) return parts[0];
  const hits = parts.flatMap((p) => p.hits).sort(pageOrder(q));
  return { total: parts.reduce((n, p) => n + p.total, 0), hits: hits.slice(0, pageEnd(q)) };
}

export function flowPage(h: FlowHits, q: FlowQuery): FlowPage {
  const offset = q.offset ?? 0;
  const limit = q.limit ?? 100;
  const flows = h.hits.slice(offset, offset + limit).map(({ partition, flow }) => ({ partition, ...flowJson(flow), bytes: flowBytes(flow), packets: flowPackets(flow) }));
  return { total: h.total, offset, limit, flows };
}
