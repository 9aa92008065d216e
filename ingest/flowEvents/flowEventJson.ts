/**
 * The JSON form of a flow event: one object per event, the shape `ctflow events --json` prints
 * (sinks/jsonRecords.ts eventJson), so ctflow's own output can be fed back in. A line of
 * `ctflow list --json` (no `type`, no `ts`) reads as a listing entry. docs/flow-events.md
 * documents the fields.
 *
 * Keys this schema does not name are ignored rather than refused: the same objects are written by
 * ctflow releases that may add fields, and nothing here derives a verdict from them.
 */
import { z } from 'zod';
import { STATUS } from '../../processors/flow';
import type { Tuple } from '../../processors/flow';
import type { FlowSnapshot, HostFlowEvent } from '../../processors/fleet/hostFlowEvent';
import { FlowEventFormatError, PROTO_BY_NAME, checkTuple, impliedStatus, withSource } from './common';
import type { FlowEventOptions } from './common';

const u8 = z.number().int().min(0).max(255);
const u16 = z.number().int().min(0).max(0xffff);
const u32 = z.number().int().min(0).max(0xffffffff);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Seconds since the epoch, with a fraction for microseconds (as eventJson writes `ts`, `start`, `last`). */
const seconds = z.number().min(0);

const tupleSchema = z.object({
  src: z.string(),
  dst: z.string(),
  sport: u16.optional(),
  dport: u16.optional(),
  icmp: z.object({ type: u8, code: u8, id: u16 }).optional(),
  packets: count.optional(),
  bytes: count.optional(),
});

const statusNames = Object.keys(STATUS) as [keyof typeof STATUS, ...Array<keyof typeof STATUS>];

export const flowEventJsonSchema = z.object({
  /** When the event happened (seconds); absent in a listing. */
  ts: seconds.optional(),
  /** Absent in a listing line, which is read as an UPDATE. */
  type: z.enum(['NEW', 'UPDATE', 'DESTROY']).optional(),
  id: u32.optional(),
  /** The conntrack zone on the reporting host. */
  zone: u16.optional(),
  l3: z.enum(['ipv4', 'ipv6']),
  /** Protocol name as conntrack prints it (`unknown` for others); `protonum` wins when both are given. */
  proto: z.string().optional(),
  protonum: u8.optional(),
  /** null: the event did not carry the protocol state (ctnetlink sends it only when it changed). */
  state: z.string().min(1).nullable().optional(),
  timeout: u32.optional(),
  orig: tupleSchema,
  reply: tupleSchema,
  /** STATUS bit names; SEEN_REPLY absent means [UNREPLIED]. */
  status: z.array(z.enum(statusNames)).optional(),
  start: seconds.optional(),
  last: seconds.optional(),
  /** DESTROY only: why the entry ended (ctflow's own events say; the kernel's do not). */
  reason: z.enum(['timeout', 'rst', 'close', 'early_drop', 'flush', 'reopen']).optional(),
  /** Extension: the host that reported the event. */
  host: z.string().min(1).optional(),
  helper: z.string().min(1).optional(),
  mark: u32.optional(),
});

export type FlowEventJson = z.infer<typeof flowEventJsonSchema>;

const us = (s: number): number => Math.round(s * 1e6);

function tupleOf(t: z.infer<typeof tupleSchema>): Tuple {
  const out: Tuple = { src: t.src, dst: t.dst, sport: t.sport ?? 0, dport: t.dport ?? 0 };
  if (t.icmp) out.icmp = { ...t.icmp };
  return out;
}

/** A parsed object as a HostFlowEvent (after the schema, the cross-field checks). */
export function hostEventFromJson(j: FlowEventJson, opts?: FlowEventOptions): HostFlowEvent {
  const named = j.proto === undefined ? undefined : PROTO_BY_NAME[j.proto];
  const proto = j.protonum ?? named;
  if (proto === undefined) throw new FlowEventFormatError(j.proto === undefined ? 'protonum: required' : `proto: '${j.proto}' is not a protocol name conntrack prints; give protonum`);
  if (named !== undefined && named !== proto) throw new FlowEventFormatError(`proto '${j.proto}' is number ${named}, not ${proto}`);
  const family = j.l3 === 'ipv4' ? 4 : 6;
  const orig = checkTuple(tupleOf(j.orig), family, 'orig');
  const reply = checkTuple(tupleOf(j.reply), family, 'reply');
  // NAT bits are read from the tuples, as for the other forms, whether or not `status` names them.
  let status = STATUS.CONFIRMED | (impliedStatus([], proto, orig, reply) & (STATUS.SRC_NAT | STATUS.DST_NAT));
  for (const name of j.status ?? []) status |= STATUS[name];
  const snap: FlowSnapshot = { zone: j.zone ?? 0, family, proto, orig, reply, status };
  if (j.id !== undefined) snap.id = j.id;
  if (j.state) snap.state = j.state;
  if (j.timeout !== undefined) snap.timeout = j.timeout;
  if (j.orig.packets !== undefined || j.reply.packets !== undefined) {
    snap.counters = {
      orig: { packets: j.orig.packets ?? 0, bytes: j.orig.bytes ?? 0 },
      reply: { packets: j.reply.packets ?? 0, bytes: j.reply.bytes ?? 0 },
    };
  }
  if (j.start !== undefined && j.start > 0) snap.startUs = us(j.start);
  if (j.last !== undefined && j.last > 0) snap.lastUs = us(j.last);
  if (j.helper !== undefined) snap.helper = j.helper;
  if (j.mark !== undefined) snap.mark = j.mark;
  const e: HostFlowEvent = { type: j.type ?? 'UPDATE', flow: snap };
  if (j.type === undefined) e.listed = true;
  if (j.ts !== undefined) e.tsUs = us(j.ts);
  if (j.host !== undefined) e.host = j.host;
  return withSource(e, opts);
}

/** One JSON object (text) as a HostFlowEvent; throws FlowEventFormatError naming the bad field. */
export function parseFlowEventJson(text: string, opts?: FlowEventOptions): HostFlowEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FlowEventFormatError(`not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FlowEventFormatError('not a JSON object');
  const r = flowEventJsonSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : 'object';
    throw new FlowEventFormatError(`${where}: ${issue.message}`);
  }
  return hostEventFromJson(r.data, opts);
}
