/**
 * The JSON shapes ctflow writes: per-packet verdicts (`ctflow classify`, the verdicts topic),
 * transitions (`ctflow events --json`, the transitions topic) and flow accounting records (the
 * flows topic). One definition, so a topic and the CLI print the same objects; docs/topics.md
 * documents them.
 */
import type { FlowAccountingRecord, FlowEvent, InvalidPacket } from '../processors/flow';
import { flowJson, protoName } from './conntrackText';
import type { PacketVerdict } from '../processors/pipeline';

/** One JSON line per IP packet (index i counts IP packets from 0, like the oracle). */
export function verdictJson(v: PacketVerdict): Record<string, unknown> {
  const line: Record<string, unknown> = { i: v.index, ctstate: v.ctstate, dir: v.dir };
  if (v.state !== undefined) line.state = v.state;
  if (v.reason !== undefined) line.reason = v.reason;
  if (v.detail !== undefined) line.detail = v.detail;
  if (v.note !== undefined) line.note = v.note;
  line.ts = v.tsUs / 1e6;
  line.frame = v.frame;
  if (v.flowId !== undefined) line.flow = v.flowId;
  return line;
}

export function eventJson(e: FlowEvent): Record<string, unknown> {
  const j: Record<string, unknown> = { ts: e.tsUs / 1e6, type: e.type, ...flowJson(e.flow) };
  if (!e.protoinfo && e.type !== 'DESTROY') j.state = null;
  if (e.reason) j.reason = e.reason;
  if (e.packetIndex !== undefined) j.packet = e.packetIndex;
  if (e.ctstate !== undefined) j.ctstate = e.ctstate;
  return j;
}

/** An INVALID packet on the transitions topic: type INVALID, the packet's tuple and the reason. */
export function invalidJson(r: InvalidPacket): Record<string, unknown> {
  const j: Record<string, unknown> = {
    ts: r.tsUs / 1e6,
    type: 'INVALID',
    ctstate: 'INVALID',
    zone: r.zone,
    l3: r.family === 4 ? 'ipv4' : 'ipv6',
    proto: protoName(r.proto),
    protonum: r.proto,
    src: r.src,
    dst: r.dst,
    sport: r.sport,
    dport: r.dport,
    dir: r.dir,
    reason: r.reason ?? null,
  };
  if (r.flowId !== undefined) j.id = r.flowId;
  if (r.state !== undefined) j.state = r.state;
  if (r.detail !== undefined) j.detail = r.detail;
  if (r.note !== undefined) j.note = r.note;
  return j;
}

/** A flow accounting record: the flow's identity and state, plus the counters since its previous record. */
export function flowRecordJson(r: FlowAccountingRecord): Record<string, unknown> {
  const f = flowJson(r.flow);
  const j: Record<string, unknown> = {
    ts: r.tsUs / 1e6,
    record: r.kind,
    id: f.id,
    zone: f.zone,
    l3: f.l3,
    proto: f.proto,
    protonum: f.protonum,
    state: f.state,
    status: f.status,
    orig: { ...r.flow.orig, ...r.delta.orig },
    reply: { ...r.flow.reply, ...r.delta.reply },
    first: r.firstUs / 1e6,
    last: r.lastUs / 1e6,
  };
  if (r.reason) j.reason = r.reason;
  return j;
}
