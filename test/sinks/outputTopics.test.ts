/**
 * The output topics' message keys: the flow's hash as 8 hex digits, as `ctflow produce` keys its
 * input. The encoder keeps key texts in a cache by hash; the keys must be the hash's digits
 * whatever the cache held before (many more flows than it has places, flows met again later).
 */
import fc from 'fast-check';
import { flowHash } from '../../processors/conntrack/tuple';
import type { FlowAccountingRecord, FlowEvent, FlowRecord, InvalidPacket } from '../../processors/flow';
import type { OutputMessage } from '../../kafka/client';
import { OutputEncoder } from '../../sinks/kafka/outputTopics';

const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 6 }));
const flowOf = (zone: number, src: string, dst: string): FlowRecord => ({
  id: 1, zone, family: 4, proto: 6, timeout: 0, status: 0, startUs: 0, lastUs: 0,
  orig: { src, dst, sport: 1, dport: 2 }, reply: { src: dst, dst: src, sport: 2, dport: 1 },
  counters: { orig: { packets: 0, bytes: 0 }, reply: { packets: 0, bytes: 0 } },
});
const hex = (zone: number, a: string, b: string): string => flowHash(zone, a, b).toString(16).padStart(8, '0');

test('transition, INVALID and flow record keys are the flow hash in hex', () => {
  const flows = fc.array(fc.tuple(fc.integer({ min: 0, max: 65535 }), address, address), { minLength: 1, maxLength: 3000 });
  // One encoder across all runs: later runs meet texts cached by earlier ones.
  const enc = new OutputEncoder({ transitions: 't', flows: 'f', deadLetter: 'd' }, { transitions: 1, flows: 1, verdicts: 1, deadLetter: 1 });
  fc.assert(
    fc.property(flows, (list) => {
      const out: OutputMessage[] = [];
      const events: FlowEvent[] = list.map(([zone, src, dst]) => ({ type: 'NEW', tsUs: 0, flow: flowOf(zone, src, dst), protoinfo: true }));
      const records: FlowAccountingRecord[] = list.map(([zone, src, dst]) => ({ kind: 'end', flow: flowOf(zone, src, dst), firstUs: 0, lastUs: 0, tsUs: 0, delta: { orig: { packets: 0, bytes: 0 }, reply: { packets: 0, bytes: 0 } } }));
      const invalid: InvalidPacket[] = list.map(([zone, src, dst]) => ({ tsUs: 0, zone, family: 4, proto: 6, src, dst, sport: 1, dport: 2, dir: null }));
      enc.transitions(events, 0, out);
      enc.invalid(invalid, 0, out);
      enc.flowRecords(records, 0, out);
      const want = list.map(([zone, src, dst]) => hex(zone, src, dst));
      expect(out.map((m) => m.key)).toEqual([...want, ...want, ...want]);
    }),
    { numRuns: 200 },
  );
});
