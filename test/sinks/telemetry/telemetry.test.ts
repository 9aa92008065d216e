/** PipelineTelemetry's bookkeeping on hand-made observations, with its clock in the test's hands. */
import fc from 'fast-check';
import type { FlowEvent, FlowRecord } from '../../../processors/flow';
import { emptyStats, STATUS } from '../../../processors/flow';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { PipelineTelemetry } from '../../../sinks/telemetry/telemetry';
import type { TableView } from '../../../sinks/telemetry/observer';
import { TopFlows } from '../../../sinks/telemetry/topFlows';

function flow(id: number, proto: number, state: string | undefined, status = 0, bytes = 0): FlowRecord {
  return {
    id,
    zone: 1,
    family: 4,
    proto,
    state,
    timeout: 30,
    orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 1000 + id, dport: 53 },
    reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport: 1000 + id },
    status,
    counters: { orig: { packets: 1, bytes }, reply: { packets: 0, bytes: 0 } },
    startUs: 0,
    lastUs: 0,
  };
}
const ev = (type: FlowEvent['type'], f: FlowRecord, reason?: FlowEvent['reason']): FlowEvent => ({ type, tsUs: 0, flow: f, protoinfo: true, reason });
const transitions = (t: PipelineTelemetry) => [...t.transitions()].map((x) => `${x.proto} ${x.from}>${x.to} ${x.count}`).sort();

test('transitions follow each flow from NONE to DESTROYED; UDP by its status', () => {
  const t = new PipelineTelemetry();
  t.events(0, [ev('NEW', flow(1, 6, 'SYN_SENT')), ev('NEW', flow(2, 17, undefined))]);
  t.events(0, [ev('UPDATE', flow(1, 6, 'ESTABLISHED')), ev('UPDATE', flow(2, 17, undefined, STATUS.SEEN_REPLY))]);
  t.events(0, [ev('UPDATE', flow(2, 17, undefined, STATUS.SEEN_REPLY | STATUS.ASSURED)), ev('DESTROY', flow(1, 6, 'CLOSE'), 'rst')]);
  expect(transitions(t)).toEqual(['17 NONE>UNREPLIED 1', '17 REPLIED>ASSURED 1', '17 UNREPLIED>REPLIED 1', '6 CLOSE>DESTROYED 1', '6 ESTABLISHED>CLOSE 1', '6 NONE>SYN_SENT 1', '6 SYN_SENT>ESTABLISHED 1'].sort());
  expect([...t.createdCounts()].map((c) => [c.proto, c.count])).toEqual([
    [6, 1],
    [17, 1],
  ]);
  expect([...t.destroyedCounts()]).toEqual([{ zone: 1, proto: 6, reason: 'rst', count: 1 }]);
});

test('flows first seen mid-life are not counted as transitions, and a new table forgets old flows', () => {
  const t = new PipelineTelemetry();
  t.events(3, [ev('UPDATE', flow(9, 6, 'ESTABLISHED'))]);
  expect(transitions(t)).toEqual([]);
  t.events(3, [ev('UPDATE', flow(9, 6, 'FIN_WAIT'))]);
  expect(transitions(t)).toEqual(['6 ESTABLISHED>FIN_WAIT 1']);
  // Same flow id on partition 4 is another flow.
  t.events(4, [ev('UPDATE', flow(9, 6, 'CLOSE'))]);
  expect(transitions(t)).toEqual(['6 ESTABLISHED>FIN_WAIT 1']);
  t.table(3, undefined);
  t.events(3, [ev('UPDATE', flow(9, 6, 'TIME_WAIT'))]);
  expect(transitions(t)).toEqual(['6 ESTABLISHED>FIN_WAIT 1']);
});

test('packets fold into zone/proto/ctstate totals and INVALID reasons', () => {
  const t = new PipelineTelemetry();
  t.packet({ zone: 2, proto: 6, bytes: 60, ctstate: 'NEW', dir: 'original' });
  t.packet({ zone: 2, proto: 6, bytes: 40, ctstate: 'NEW', dir: 'original' });
  t.packet({ zone: 2, proto: 6, bytes: 40, ctstate: 'INVALID', dir: null, reason: 'tcp_invalid_flags' });
  t.packet({ zone: 2, proto: 1, bytes: 28, ctstate: 'INVALID', dir: null });
  expect([...t.trafficCounts()]).toEqual([
    { zone: 2, proto: 6, ctstate: 'NEW', packets: 2, bytes: 100 },
    { zone: 2, proto: 6, ctstate: 'INVALID', packets: 1, bytes: 40 },
    { zone: 2, proto: 1, ctstate: 'INVALID', packets: 1, bytes: 28 },
  ]);
  expect([...t.invalidCounts()].map((c) => c.reason)).toEqual(['tcp_invalid_flags', 'unknown']);
});

test('consumer lag from offsets, event-time lag from the clock', () => {
  let now = 1_000_000;
  const t = new PipelineTelemetry({ now: () => now });
  t.batch({ partition: 5, messages: 10, packets: 12, processingSeconds: 0.01, nextOffset: '110', highWatermark: '150', packetClockUs: 990_000_000 });
  expect(t.partitions()).toEqual([{ partition: 5, messages: 10, packets: 12, deadLetters: 0, consumerLag: 40, packetClockUs: 990_000_000 }]);
  expect(t.eventTimeLagSeconds(t.partitions()[0])).toBe(10);
  now += 5000;
  expect(t.eventTimeLagSeconds(t.partitions()[0])).toBe(15);
  t.deadLetter(5, 'bad frame');
  expect(t.partitions()[0].deadLetters).toBe(1);
});

test('the table snapshot is reused until it is older than refreshMs; readers during a walk share it', async () => {
  let now = 0;
  let walks = 0;
  const flows = [flow(1, 6, 'ESTABLISHED', 0, 500), flow(2, 17, undefined, STATUS.SEEN_REPLY, 900)];
  const view: TableView = {
    list: () => {
      walks++;
      return flows;
    },
    stats: () => emptyStats(),
    count: 2,
    sysctl: makeSysctl(),
  };
  const t = new PipelineTelemetry({ refreshMs: 1000, now: () => now, topFlows: 1 });
  t.table(0, view);
  expect((await t.snapshot()).groups.map((g) => [g.proto, g.state, g.count])).toEqual([
    [6, 'ESTABLISHED', 1],
    [17, 'REPLIED', 1],
  ]);
  expect((await t.snapshot()).top.map((r) => r.flow.id)).toEqual([2]);
  now = 999;
  await t.snapshot();
  expect(walks).toBe(1);
  now = 1000;
  const [a, b] = await Promise.all([t.snapshot(), t.snapshot()]);
  expect(walks).toBe(2);
  expect(b).toBe(a);
  await t.refresh();
  expect(walks).toBe(3);
});

test('TopFlows keeps the n biggest, biggest first, older flows winning ties', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(50), { maxLength: 200 }), fc.integer({ min: 0, max: 30 }), (sizes, n) => {
      const top = new TopFlows(n);
      sizes.forEach((b, id) => top.offer(0, flow(id, 6, 'ESTABLISHED', 0, b)));
      const want = sizes
        .map((b, id) => ({ b, id }))
        .sort((x, y) => y.b - x.b || x.id - y.id)
        .slice(0, n)
        .map((x) => x.id);
      expect(top.take().map((r) => r.flow.id)).toEqual(want);
    }),
  );
});
