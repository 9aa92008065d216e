/**
 * The direct JSON writers of the output topics give byte for byte the UTF-8 of what
 * JSON.stringify gives for the objects of jsonRecords.ts: on random records (optional fields
 * present, absent or undefined, ICMP tuples, strings that need escaping or are not ASCII,
 * non-finite and negative numbers), with chunks small enough that records move to larger ones
 * as they grow, and on every record the engine makes from the scenario captures (real states,
 * helpers, expectations, NAT, INVALID packets).
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPackets } from '../../ingest/packetSource';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { PartitionProcessor } from '../../processors/stream/partitionProcessor';
import type { FlowAccountingRecord, FlowEvent, FlowRecord, InvalidPacket, Tuple } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import { eventJson, flowRecordJson, invalidJson, verdictJson } from '../../sinks/jsonRecords';
import { JsonBytes } from '../../sinks/jsonBytes';
import { writeEvent, writeFlowRecord, writeInvalid, writeVerdict } from '../../sinks/jsonRecordBytes';

const RUNS = { numRuns: 2000 };
/** Any string, lone surrogates and control characters included, or a name from the real vocabulary. */
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ maxLength: 40 }), fc.constantFrom('ESTABLISHED', 'timeout', '10.0.0.1', 'fe80::1', 'a"b\\c', '\u2028', 'é', '\x7f'));
const number = fc.oneof(fc.integer({ min: -(2 ** 31) - 2, max: 2 ** 32 }), fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e21, 5e-7, -(2 ** 31), 2 ** 31 - 1));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const counters = fc.record({ packets: number, bytes: number });
const tuple: fc.Arbitrary<Tuple> = fc.record(
  { src: text, dst: text, sport: number, dport: number, icmp: fc.record({ type: number, code: number, id: number }) },
  { requiredKeys: ['src', 'dst', 'sport', 'dport'] },
);
const flow: fc.Arbitrary<FlowRecord> = fc.record(
  {
    id: number,
    zone: number,
    family: fc.constantFrom(4 as const, 6 as const),
    proto: fc.constantFrom(1, 6, 17, 47, 58, 132, 136, 33, 99),
    state: maybe(text),
    timeout: number,
    orig: tuple,
    reply: tuple,
    status: fc.integer({ min: 0, max: 0xffff }),
    counters: fc.record({ orig: counters, reply: counters }),
    startUs: number,
    lastUs: number,
    helper: maybe(fc.constantFrom('', 'ftp', 'tftp')),
    masterId: maybe(number),
  },
  { requiredKeys: ['id', 'zone', 'family', 'proto', 'timeout', 'orig', 'reply', 'status', 'counters', 'startUs', 'lastUs'] },
);
const detail = maybe(fc.dictionary(text, number, { maxKeys: 3 }));

const same = (got: Buffer, want: unknown): void => expect(got.toString('utf8')).toBe(JSON.stringify(want));
/** A writer per chunk size: the default, and one so small that most records outgrow it. */
const writers = [new JsonBytes(), new JsonBytes(24)];
const writer = fc.constantFrom(...writers);

test('pieces: values and merged objects as JSON.stringify writes them', () => {
  const one = (w: JsonBytes, f: (w: JsonBytes) => void): Buffer => {
    w.begin();
    f(w);
    return w.end();
  };
  fc.assert(fc.property(writer, fc.jsonValue(), (w, v) => same(one(w, (x) => x.value(v)), v)), RUNS);
  fc.assert(fc.property(writer, fc.oneof(number, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), (w, n) => same(one(w, (x) => x.num(n)), n)), RUNS);
  fc.assert(fc.property(writer, fc.object(), fc.object(), (w, a, b) => same(one(w, (x) => x.merged(a, b)), { ...a, ...b })), RUNS);
  // Times in µs as seconds: whole µs around today, over the whole range micros() writes itself
  // (below 2^32 s) and past it, and any number at all.
  const micros = fc.oneof(
    fc.integer({ min: 1_700_000_000_000_000, max: 1_800_000_000_000_000 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(0, 1, 10, 999_999, 1_000_000, 4294967296e6 - 1, 4294967296e6, 4294967296e6 + 1, 2 ** 53, -1),
    number,
  );
  fc.assert(fc.property(writer, micros, (w, us) => same(one(w, (x) => x.micros(us)), us / 1e6)), RUNS);
  fc.assert(fc.property(writer, fc.anything(), (w, v) => same(one(w, (x) => x.raw('{"a":1').field('b', v).raw('}')), { a: 1, b: v })), RUNS);
  expect(() => new JsonBytes().begin().field('x', 1n)).toThrow(TypeError);
  // Views of one chunk stay intact as later records are written after them.
  const w = new JsonBytes(64);
  const views = Array.from({ length: 50 }, (_, i) => one(w, (x) => x.num(i).raw(',').str('x'.repeat(i))));
  views.forEach((v, i) => expect(v.toString()).toBe(`${i},"${'x'.repeat(i)}"`));
});

test('transitions', () => {
  const event: fc.Arbitrary<FlowEvent> = fc.record(
    {
      type: fc.constantFrom('NEW' as const, 'UPDATE' as const, 'DESTROY' as const),
      tsUs: number,
      flow,
      protoinfo: fc.boolean(),
      reason: maybe(fc.constantFrom('' as never, 'timeout' as const, 'rst' as const, 'reopen' as const)),
      packetIndex: maybe(number),
      ctstate: maybe(fc.constantFrom('NEW' as const, 'ESTABLISHED' as const, 'RELATED' as const, 'INVALID' as const)),
    },
    { requiredKeys: ['type', 'tsUs', 'flow', 'protoinfo'] },
  );
  fc.assert(fc.property(writer, event, (w, e) => same(writeEvent(w, e), eventJson(e))), RUNS);
});

test('flow records', () => {
  const record: fc.Arbitrary<FlowAccountingRecord> = fc.record(
    {
      kind: fc.constantFrom('active' as const, 'end' as const),
      flow,
      reason: maybe(fc.constantFrom('timeout' as const, 'close' as const, '' as never)),
      firstUs: number,
      lastUs: number,
      delta: fc.record({ orig: counters, reply: counters }),
      tsUs: number,
    },
    { requiredKeys: ['kind', 'flow', 'firstUs', 'lastUs', 'delta', 'tsUs'] },
  );
  fc.assert(fc.property(writer, record, (w, r) => same(writeFlowRecord(w, r), flowRecordJson(r))), RUNS);
});

test('tuples and counters of any shape (keys missing, reordered, extra, of other types) as the spread writes them', () => {
  // The writers take the engine's shape (src, dst, sport, dport; packets, bytes) field by field
  // and anything else through merged(): both must give what JSON.stringify gives.
  const key = fc.constantFrom('src', 'dst', 'sport', 'dport', 'icmp', 'packets', 'bytes', 'state', '0', '7');
  const value = fc.oneof(text, number, fc.jsonValue(), fc.constant(undefined));
  const entries = fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 7 });
  // The engine's keys with their values, then perhaps more keys (a repeated key keeps its place
  // and takes the later value), perhaps in reverse order; or any keys at all.
  const shaped = <T extends object>(engine: fc.Arbitrary<T>) =>
    fc.oneof(
      fc.tuple(engine, fc.array(fc.tuple(key, value), { maxLength: 2 }), fc.boolean()).map(([o, extra, reverse]) => {
        const all: Array<[string, unknown]> = [...Object.entries(o), ...extra];
        return Object.fromEntries(reverse ? all.reverse() : all);
      }),
      entries.map((e) => Object.fromEntries(e)),
    );
  const tupleLike = shaped(fc.record({ src: text, dst: text, sport: number, dport: number }));
  const countersLike = shaped(fc.record({ packets: number, bytes: number }));
  const record = fc.record({ f: flow, orig: tupleLike, reply: tupleLike, co: countersLike, cr: countersLike, tsUs: number });
  fc.assert(
    fc.property(writer, record, (w, { f, orig, reply, co, cr, tsUs }) => {
      const flowOf = { ...f, orig, reply, counters: { orig: co, reply: cr } } as unknown as FlowRecord;
      const e: FlowEvent = { type: 'UPDATE', tsUs, flow: flowOf, protoinfo: true };
      same(writeEvent(w, e), eventJson(e));
      const r: FlowAccountingRecord = { kind: 'active', flow: flowOf, firstUs: tsUs, lastUs: tsUs, delta: { orig: co, reply: cr } as never, tsUs };
      same(writeFlowRecord(w, r), flowRecordJson(r));
    }),
    RUNS,
  );
});

test('INVALID packets and verdicts', () => {
  const dir = fc.constantFrom('original' as const, 'reply' as const, null);
  const invalid: fc.Arbitrary<InvalidPacket> = fc.record(
    { tsUs: number, zone: number, family: fc.constantFrom(4 as const, 6 as const), proto: number, src: text, dst: text, sport: number, dport: number, flowId: maybe(number), state: maybe(text), dir, reason: maybe(text), detail, note: maybe(text) },
    { requiredKeys: ['tsUs', 'zone', 'family', 'proto', 'src', 'dst', 'sport', 'dport', 'dir'] },
  );
  fc.assert(fc.property(writer, invalid, (w, r) => same(writeInvalid(w, r), invalidJson(r))), RUNS);
  const verdict: fc.Arbitrary<PacketVerdict> = fc.record(
    // Any text as well as the ctstates: the writer keeps the texts of a few (ASCII) ctstates per direction.
    { index: number, ctstate: fc.oneof(fc.constantFrom('NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'), text) as fc.Arbitrary<PacketVerdict['ctstate']>, dir, state: maybe(text), reason: maybe(text), note: maybe(text), detail, flowId: maybe(number), frame: number, tsUs: number },
    { requiredKeys: ['index', 'ctstate', 'dir', 'frame', 'tsUs'] },
  );
  fc.assert(fc.property(writer, verdict, (w, v) => same(writeVerdict(w, v), verdictJson(v))), RUNS);
});

test('every record the engine makes from the scenario captures', () => {
  const dir = join(__dirname, '..', 'fixtures', 'scenarios');
  let n = 0;
  for (const name of readdirSync(dir)) {
    const proc = new PartitionProcessor({ sysctl: makeSysctl(), activeTimeoutUs: 1e6, verdicts: true });
    for (const { index: _index, ...p } of readPackets(new Uint8Array(readFileSync(join(dir, name, 'packets.pcap'))))) proc.push(p);
    proc.end();
    proc.advanceTo(Number.MAX_SAFE_INTEGER / 2);
    const o = proc.drain();
    const w = writers[0];
    for (const e of o.events) same(writeEvent(w, e), eventJson(e));
    for (const r of o.records) same(writeFlowRecord(w, r), flowRecordJson(r));
    for (const r of o.invalid) same(writeInvalid(w, r), invalidJson(r));
    for (const v of o.verdicts) same(writeVerdict(w, v), verdictJson(v));
    n += o.events.length + o.records.length + o.invalid.length + o.verdicts.length;
  }
  expect(n).toBeGreaterThan(1000);
});
