/**
 * The records of jsonRecords.ts written straight to JSON text: `xText(r)` is exactly
 * `JSON.stringify(xJson(r))`, same keys in the same order (test/sinks/jsonRecordText.test.ts
 * checks it on random records). The Kafka output topics write one of these per transition and
 * flow record; the objects jsonRecords.ts builds (spreads of the flow, its tuples and counters)
 * cost more than the engine that made them. A field added to a shape in jsonRecords.ts must be
 * added here too; the test fails until it is.
 */
import type { FlowAccountingRecord, FlowEvent, FlowRecord, InvalidPacket } from '../processors/flow';
import { STATUS } from '../processors/flow';
import type { PacketVerdict } from '../processors/pipeline';
import { protoName } from './conntrackText';
import { merged, num, str, value } from './jsonText';

const STATUS_NAMES = Object.entries(STATUS);
const STATUS_MASK = STATUS_NAMES.reduce((m, [, bit]) => m | bit, 0);
/** The status array by its bits: a handful of combinations occur, each written once. */
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

/** `"key":value` after a comma, or nothing where JSON.stringify would leave the key out. */
function opt(key: string, v: unknown): string {
  const t = value(v);
  return t === undefined ? '' : `,"${key}":${t}`;
}

/** flowJson's keys from `id` to `last` and its optional helper and master, with `state` as given. */
function flowFields(f: FlowRecord, state: string): string {
  return (
    `"id":${num(f.id)},"zone":${num(f.zone)},"l3":${l3(f.family)},"proto":${str(protoName(f.proto))},"protonum":${num(f.proto)}` +
    `,"state":${state},"timeout":${num(f.timeout)}` +
    `,"orig":${merged(f.orig, f.counters.orig)},"reply":${merged(f.reply, f.counters.reply)}` +
    `,"status":${statusText(f.status)},"start":${num(f.startUs / 1e6)},"last":${num(f.lastUs / 1e6)}` +
    (f.helper ? `,"helper":${str(f.helper)}` : '') +
    (f.masterId !== undefined ? opt('master', f.masterId) : '')
  );
}

/** JSON.stringify(eventJson(e)). */
export function eventText(e: FlowEvent): string {
  const f = e.flow;
  const state = !e.protoinfo && e.type !== 'DESTROY' ? 'null' : f.state === undefined || f.state === null ? 'null' : value(f.state)!;
  return (
    `{"ts":${num(e.tsUs / 1e6)},"type":${str(e.type)},${flowFields(f, state)}` +
    (e.reason ? `,"reason":${str(e.reason)}` : '') +
    (e.packetIndex !== undefined ? opt('packet', e.packetIndex) : '') +
    (e.ctstate !== undefined ? opt('ctstate', e.ctstate) : '') +
    '}'
  );
}

/** JSON.stringify(flowRecordJson(r)). */
export function flowRecordText(r: FlowAccountingRecord): string {
  const f = r.flow;
  const state = f.state === undefined || f.state === null ? 'null' : value(f.state)!;
  return (
    `{"ts":${num(r.tsUs / 1e6)},"record":${str(r.kind)},"id":${num(f.id)},"zone":${num(f.zone)},"l3":${l3(f.family)}` +
    `,"proto":${str(protoName(f.proto))},"protonum":${num(f.proto)},"state":${state},"status":${statusText(f.status)}` +
    `,"orig":${merged(f.orig, r.delta.orig)},"reply":${merged(f.reply, r.delta.reply)}` +
    `,"first":${num(r.firstUs / 1e6)},"last":${num(r.lastUs / 1e6)}` +
    (r.reason ? `,"reason":${str(r.reason)}` : '') +
    '}'
  );
}

/** JSON.stringify(invalidJson(r)). */
export function invalidText(r: InvalidPacket): string {
  return (
    `{"ts":${num(r.tsUs / 1e6)},"type":"INVALID","ctstate":"INVALID","zone":${num(r.zone)},"l3":${l3(r.family)}` +
    `,"proto":${str(protoName(r.proto))},"protonum":${num(r.proto)},"src":${str(r.src)},"dst":${str(r.dst)}` +
    `,"sport":${num(r.sport)},"dport":${num(r.dport)},"dir":${r.dir === null ? 'null' : str(r.dir)}` +
    `,"reason":${r.reason === undefined || r.reason === null ? 'null' : value(r.reason)}` +
    (r.flowId !== undefined ? opt('id', r.flowId) : '') +
    (r.state !== undefined ? opt('state', r.state) : '') +
    (r.detail !== undefined ? opt('detail', r.detail) : '') +
    (r.note !== undefined ? opt('note', r.note) : '') +
    '}'
  );
}

/** JSON.stringify(verdictJson(v)). */
export function verdictText(v: PacketVerdict): string {
  return (
    `{"i":${num(v.index)},"ctstate":${str(v.ctstate)},"dir":${v.dir === null ? 'null' : str(v.dir)}` +
    (v.state !== undefined ? opt('state', v.state) : '') +
    (v.reason !== undefined ? opt('reason', v.reason) : '') +
    (v.detail !== undefined ? opt('detail', v.detail) : '') +
    (v.note !== undefined ? opt('note', v.note) : '') +
    `,"ts":${num(v.tsUs / 1e6)},"frame":${num(v.frame)}` +
    (v.flowId !== undefined ? opt('flow', v.flowId) : '') +
    '}'
  );
}
