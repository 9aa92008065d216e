/**
 * A report share's verdicts and events as rows of numbers, to cross a thread (reportShare.ts). As
 * objects they did not pay: measured on 1M packets, one share's 500k verdicts and 300k events took
 * 6 s to serialize and 23 s to rebuild on the other side, more than the replay itself. Here each
 * verdict and event is a fixed number of float64 slots in one growing array (strings by their
 * index in the share's string list), the arrays cross as plain buffers, and the main thread
 * rebuilds each object just before the collector reads it; the final table travels the same way.
 * Only what the report collector reads is kept (sinks/report/collect.ts): not an event's ctstate,
 * nor an entry's helper, master or use.
 */
import type { CtState, Direction, EventType, FlowEvent, FlowRecord, DestroyReason, Tuple } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import { StringTable } from '../../sinks/report/collect';

const CTSTATES: CtState[] = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'];
const DIRS: Array<Direction | null> = [null, 'original', 'reply'];
const EVENT_TYPES: EventType[] = ['NEW', 'UPDATE', 'DESTROY'];

/** Slots per verdict: index, at, tsUs, frame, IP length, TCP flags, ctstate, dir, state, reason, flowId, extra. */
export const VERDICT_SLOTS = 12;
/** Slots per event: index, phase, type, tsUs, reason, packetIndex, protoinfo, then the entry (FLOW_SLOTS). */
const EVENT_HEAD = 7;
/** id, zone, family, proto, state, timeout, status, two tuples (TUPLE_SLOTS each), 4 counters, startUs, lastUs. */
const TUPLE_SLOTS = 8;
const FLOW_SLOTS = 7 + 2 * TUPLE_SLOTS + 6;
export const EVENT_SLOTS = EVENT_HEAD + FLOW_SLOTS;

/** A share's rows as they cross the thread. */
export interface ShareRows {
  verdicts: Float64Array;
  events: Float64Array;
  /** The share's table after the last packet (FLOW_SLOTS each), oldest first. */
  table: Float64Array;
  strings: string[];
  /** Verdicts' notes and window details (INVALID ones), by the verdict's `extra` slot. */
  extras: Array<{ note?: string; detail?: Record<string, number> }>;
}

/** The writing side (in the share). */
export class RowWriter {
  private readonly verdicts: number[] = [];
  private readonly events: number[] = [];
  private readonly table: number[] = [];
  /** Strings by index; -1 stands for undefined. */
  private readonly strings = new StringTable(-1);
  private readonly extras: ShareRows['extras'] = [];

  verdict(v: PacketVerdict, at: number, length: number, tcpFlags: number): void {
    let extra = -1;
    if (v.note !== undefined || v.detail !== undefined) {
      extra = this.extras.length;
      this.extras.push({ note: v.note, detail: v.detail });
    }
    const dir = v.dir === 'original' ? 1 : v.dir === 'reply' ? 2 : 0;
    const s = this.strings;
    this.verdicts.push(v.index, at, v.tsUs, v.frame, length, tcpFlags, CTSTATES.indexOf(v.ctstate), dir, s.of(v.state), s.of(v.reason), v.flowId ?? -1, extra);
  }

  event(e: FlowEvent, index: number, phase: number): void {
    this.events.push(index, phase, EVENT_TYPES.indexOf(e.type), e.tsUs, this.strings.of(e.reason), e.packetIndex ?? -1, e.protoinfo ? 1 : 0);
    this.flow(this.events, e.flow);
  }

  /** The table after the last packet, oldest first. */
  finalTable(flows: readonly FlowRecord[]): void {
    for (const f of flows) this.flow(this.table, f);
  }

  private flow(out: number[], f: FlowRecord): void {
    const c = f.counters;
    out.push(f.id, f.zone, f.family, f.proto, this.strings.of(f.state), f.timeout, f.status);
    this.tuple(out, f.orig);
    this.tuple(out, f.reply);
    out.push(c.orig.packets, c.orig.bytes, c.reply.packets, c.reply.bytes, f.startUs, f.lastUs);
  }

  private tuple(out: number[], t: Tuple): void {
    const i = t.icmp;
    out.push(this.strings.of(t.src), this.strings.of(t.dst), t.sport, t.dport, i ? 1 : 0, i ? i.type : 0, i ? i.code : 0, i ? i.id : 0);
  }

  rows(): ShareRows {
    return { verdicts: Float64Array.from(this.verdicts), events: Float64Array.from(this.events), table: Float64Array.from(this.table), strings: this.strings.list, extras: this.extras };
  }
}

const str = (strings: string[], k: number): string | undefined => (k < 0 ? undefined : strings[k]);

/** Verdict `k` of a share's rows, rebuilt. */
export function verdictAt(r: ShareRows, k: number): PacketVerdict {
  const a = r.verdicts;
  const o = k * VERDICT_SLOTS;
  const v: PacketVerdict = { index: a[o], ctstate: CTSTATES[a[o + 6]], dir: DIRS[a[o + 7]], frame: a[o + 3], tsUs: a[o + 2] };
  const state = str(r.strings, a[o + 8]);
  const reason = str(r.strings, a[o + 9]);
  if (state !== undefined) v.state = state;
  if (reason !== undefined) v.reason = reason;
  if (a[o + 10] >= 0) v.flowId = a[o + 10];
  if (a[o + 11] >= 0) {
    const x = r.extras[a[o + 11]];
    if (x.note !== undefined) v.note = x.note;
    if (x.detail !== undefined) v.detail = x.detail;
  }
  return v;
}

/** Verdict `k`'s slot `slot` (1: at, 4: IP length, 5: TCP flags). */
export const verdictSlot = (r: ShareRows, k: number, slot: number): number => r.verdicts[k * VERDICT_SLOTS + slot];

/** Event `k`'s slot `slot` (0: packet index, 1: phase, 3: tsUs, EVENT_HEAD: entry id). */
export const eventSlot = (r: ShareRows, k: number, slot: number): number => r.events[k * EVENT_SLOTS + slot];
export const EVENT_ID_SLOT = EVENT_HEAD;

/** Event `k` of a share's rows, rebuilt. */
export function eventAt(r: ShareRows, k: number): FlowEvent {
  const a = r.events;
  const o = k * EVENT_SLOTS;
  const e: FlowEvent = { type: EVENT_TYPES[a[o + 2]], tsUs: a[o + 3], flow: flowAt(a, o + EVENT_HEAD, r.strings), protoinfo: a[o + 6] === 1 };
  const reason = str(r.strings, a[o + 4]);
  if (reason !== undefined) e.reason = reason as DestroyReason;
  if (a[o + 5] >= 0) e.packetIndex = a[o + 5];
  return e;
}

/** The share's final table, rebuilt. */
export function tableOf(r: ShareRows): FlowRecord[] {
  return Array.from({ length: r.table.length / FLOW_SLOTS }, (_, k) => flowAt(r.table, k * FLOW_SLOTS, r.strings));
}

function flowAt(a: Float64Array, o: number, strings: string[]): FlowRecord {
  const tuple = (p: number): Tuple => {
    const t: Tuple = { src: strings[a[p]], dst: strings[a[p + 1]], sport: a[p + 2], dport: a[p + 3] };
    if (a[p + 4] === 1) t.icmp = { type: a[p + 5], code: a[p + 6], id: a[p + 7] };
    return t;
  };
  const c = o + 7 + 2 * TUPLE_SLOTS;
  const flow: FlowRecord = {
    id: a[o],
    zone: a[o + 1],
    family: a[o + 2] as 4 | 6,
    proto: a[o + 3],
    timeout: a[o + 5],
    orig: tuple(o + 7),
    reply: tuple(o + 7 + TUPLE_SLOTS),
    status: a[o + 6],
    counters: { orig: { packets: a[c], bytes: a[c + 1] }, reply: { packets: a[c + 2], bytes: a[c + 3] } },
    startUs: a[c + 4],
    lastUs: a[c + 5],
  };
  const state = str(strings, a[o + 4]);
  if (state !== undefined) flow.state = state;
  return flow;
}
