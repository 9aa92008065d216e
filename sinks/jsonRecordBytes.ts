/**
 * The records of jsonRecords.ts written straight to UTF-8 JSON (jsonBytes.ts): `writeX(w, r)`
 * gives the bytes of `JSON.stringify(xJson(r))`, same keys in the same order
 * (test/sinks/jsonRecordBytes.test.ts checks it on random records and on the engine's). The
 * output topics write one of these per transition and flow record. A field added to a shape in
 * jsonRecords.ts must be added here too; the test fails until it is.
 */
import type { Counters, FlowAccountingRecord, FlowEvent, FlowRecord, InvalidPacket, Tuple } from '../processors/flow';
import { STATUS } from '../processors/flow';
import type { PacketVerdict } from '../processors/pipeline';
import { protoName } from './conntrackText';
import type { JsonBytes } from './jsonBytes';

const STATUS_NAMES = Object.entries(STATUS);
const STATUS_MASK = STATUS_NAMES.reduce((m, [, bit]) => m | bit, 0);
/** The status array's text by its bits: a handful of combinations occur, each made once. */
const statusCache = new Map<number, string>();

function statusText(status: number): string {
  const bits = status & STATUS_MASK;
  let s = statusCache.get(bits);
  if (s === undefined) {
    s = JSON.stringify(STATUS_NAMES.filter(([, bit]) => bits & bit).map(([name]) => name));
    statusCache.set(bits, s);
  }
  return s;
}

const l3 = (family: number): string => (family === 4 ? '"ipv4"' : '"ipv6"');

/**
 * `,"l3":…,"proto":…,"protonum":N` for a protocol number 0-255, made once per family and number:
 * three members every record carries, one piece of text instead of six writes.
 */
const l3ProtoTexts: Array<Array<string | undefined>> = [new Array(256).fill(undefined), new Array(256).fill(undefined)];

function writeL3Proto(w: JsonBytes, family: number, proto: number): void {
  if (!(proto >= 0 && proto < 256 && Number.isInteger(proto))) {
    w.raw(',"l3":').raw(l3(family)).raw(',"proto":').str(protoName(proto)).raw(',"protonum":').num(proto);
    return;
  }
  const texts = l3ProtoTexts[family === 4 ? 0 : 1];
  let text = texts[proto];
  if (text === undefined) {
    text = `,"l3":${l3(family)},"proto":${JSON.stringify(protoName(proto))},"protonum":${proto}`;
    texts[proto] = text;
  }
  w.raw(text);
}

/** `x ?? null`. */
function orNull(w: JsonBytes, x: string | undefined): void {
  if (x === undefined || x === null) w.raw('null');
  else w.value(x);
}

/** The keys of the engine's tuples (conn.ts) and counters, in their order. */
const TUPLE_KEYS = ['src', 'dst', 'sport', 'dport'];
const COUNTER_KEYS = ['packets', 'bytes'];

/** Whether for-in gives exactly `keys`, in that order (plain objects, as merged() assumes: for-in visits their own keys). */
function keysAre(o: object, keys: readonly string[]): boolean {
  let n = 0;
  for (const k in o) if (k !== keys[n++]) return false;
  return n === keys.length;
}

/**
 * `{ ...t, ...c }` (what merged() writes) for a tuple and counters of the engine's shape, written
 * field by field; merged() asks every key of both objects what to do with it, and this is two of
 * them per record. Any other shape (an ICMP tuple, a parsed record with keys of its own, a value
 * of another type) goes through merged().
 */
function tupleWith(w: JsonBytes, t: Tuple, c: Counters): void {
  if (
    typeof t.src === 'string' && typeof t.dst === 'string' && typeof t.sport === 'number' && typeof t.dport === 'number' &&
    typeof c.packets === 'number' && typeof c.bytes === 'number' && keysAre(t, TUPLE_KEYS) && keysAre(c, COUNTER_KEYS)
  ) {
    w.raw('{"src":').str(t.src).raw(',"dst":').str(t.dst).raw(',"sport":').num(t.sport).raw(',"dport":').num(t.dport);
    w.raw(',"packets":').num(c.packets).raw(',"bytes":').num(c.bytes).raw('}');
  } else {
    w.merged(t, c);
  }
}

/** flowJson's keys from `id` to `last` and its optional helper and master; `state` null when `noState`. */
function flowFields(w: JsonBytes, f: FlowRecord, noState: boolean): void {
  w.raw('"id":').num(f.id).raw(',"zone":').num(f.zone);
  writeL3Proto(w, f.family, f.proto);
  w.raw(',"state":');
  orNull(w, noState ? undefined : f.state);
  w.raw(',"timeout":').num(f.timeout).raw(',"orig":');
  tupleWith(w, f.orig, f.counters.orig);
  w.raw(',"reply":');
  tupleWith(w, f.reply, f.counters.reply);
  w.raw(',"status":').raw(statusText(f.status)).raw(',"start":').micros(f.startUs).raw(',"last":').micros(f.lastUs);
  if (f.helper) w.raw(',"helper":').value(f.helper);
  if (f.masterId !== undefined) w.fieldAs(',"master":', 'master', f.masterId);
}

/** JSON.stringify(eventJson(e)). */
export function writeEvent(w: JsonBytes, e: FlowEvent): Buffer {
  putEvent(w, e);
  return w.end();
}

/** writeEvent without the view: the record is left at w.chunk [w.recordStart, w.recordEnd). */
export function putEvent(w: JsonBytes, e: FlowEvent): void {
  w.begin().raw('{"ts":').micros(e.tsUs).raw(',"type":').str(e.type).raw(',');
  flowFields(w, e.flow, !e.protoinfo && e.type !== 'DESTROY');
  if (e.reason) w.raw(',"reason":').value(e.reason);
  if (e.packetIndex !== undefined) w.fieldAs(',"packet":', 'packet', e.packetIndex);
  if (e.ctstate !== undefined) w.fieldAs(',"ctstate":', 'ctstate', e.ctstate);
  w.raw('}');
}

/** JSON.stringify(flowRecordJson(r)). */
export function writeFlowRecord(w: JsonBytes, r: FlowAccountingRecord): Buffer {
  putFlowRecord(w, r);
  return w.end();
}

/** writeFlowRecord without the view: the record is left at w.chunk [w.recordStart, w.recordEnd). */
export function putFlowRecord(w: JsonBytes, r: FlowAccountingRecord): void {
  const f = r.flow;
  w.begin().raw('{"ts":').micros(r.tsUs).raw(',"record":').str(r.kind).raw(',"id":').num(f.id).raw(',"zone":').num(f.zone);
  writeL3Proto(w, f.family, f.proto);
  w.raw(',"state":');
  orNull(w, f.state);
  w.raw(',"status":').raw(statusText(f.status)).raw(',"orig":');
  tupleWith(w, f.orig, r.delta.orig);
  w.raw(',"reply":');
  tupleWith(w, f.reply, r.delta.reply);
  w.raw(',"first":').micros(r.firstUs).raw(',"last":').micros(r.lastUs);
  if (r.reason) w.raw(',"reason":').value(r.reason);
  w.raw('}');
}

/** JSON.stringify(invalidJson(r)). */
export function writeInvalid(w: JsonBytes, r: InvalidPacket): Buffer {
  putInvalid(w, r);
  return w.end();
}

/** writeInvalid without the view: the record is left at w.chunk [w.recordStart, w.recordEnd). */
export function putInvalid(w: JsonBytes, r: InvalidPacket): void {
  w.begin().raw('{"ts":').micros(r.tsUs).raw(',"type":"INVALID","ctstate":"INVALID","zone":').num(r.zone);
  writeL3Proto(w, r.family, r.proto);
  w.raw(',"src":').str(r.src).raw(',"dst":').str(r.dst);
  w.raw(',"sport":').num(r.sport).raw(',"dport":').num(r.dport).raw(',"dir":');
  if (r.dir === null) w.raw('null');
  else w.str(r.dir);
  w.raw(',"reason":');
  orNull(w, r.reason);
  if (r.flowId !== undefined) w.fieldAs(',"id":', 'id', r.flowId);
  if (r.state !== undefined) w.fieldAs(',"state":', 'state', r.state);
  if (r.detail !== undefined) w.fieldAs(',"detail":', 'detail', r.detail);
  if (r.note !== undefined) w.fieldAs(',"note":', 'note', r.note);
  w.raw('}');
}

/** A verdict's `,"ctstate":…,"dir":…` by its direction and ctstate: a dozen texts. */
const ctstateOriginal = new Map<string, string>();
const ctstateReply = new Map<string, string>();
const ctstateNoDir = new Map<string, string>();
const PLAIN_ASCII = /^[\x20-\x7e]*$/;

/** JSON.stringify(verdictJson(v)). */
export function writeVerdict(w: JsonBytes, v: PacketVerdict): Buffer {
  putVerdict(w, v);
  return w.end();
}

/** writeVerdict without the view: the record is left at w.chunk [w.recordStart, w.recordEnd). */
export function putVerdict(w: JsonBytes, v: PacketVerdict): void {
  w.begin().raw('{"i":').num(v.index);
  const byState = v.dir === 'original' ? ctstateOriginal : v.dir === 'reply' ? ctstateReply : v.dir === null ? ctstateNoDir : undefined;
  let text = byState?.get(v.ctstate);
  if (text === undefined) {
    text = `,"ctstate":${JSON.stringify(v.ctstate)},"dir":${JSON.stringify(v.dir)}`;
    // Kept only for the few ctstates there are, and only as text raw() writes as it is (ASCII).
    if (byState && byState.size < 16 && PLAIN_ASCII.test(text)) byState.set(v.ctstate, text);
    else text = undefined;
  }
  if (text !== undefined) w.raw(text);
  else {
    w.raw(',"ctstate":').str(v.ctstate).raw(',"dir":');
    if (v.dir === null) w.raw('null');
    else w.str(v.dir);
  }
  if (v.state !== undefined) w.fieldAs(',"state":', 'state', v.state);
  if (v.reason !== undefined) w.fieldAs(',"reason":', 'reason', v.reason);
  if (v.detail !== undefined) w.fieldAs(',"detail":', 'detail', v.detail);
  if (v.note !== undefined) w.fieldAs(',"note":', 'note', v.note);
  w.raw(',"ts":').micros(v.tsUs).raw(',"frame":').num(v.frame);
  if (v.flowId !== undefined) w.fieldAs(',"flow":', 'flow', v.flowId);
  w.raw('}');
}
