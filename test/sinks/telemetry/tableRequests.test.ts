/**
 * Table reads answered over disjoint sets of partitions (as partition workers answer for theirs)
 * and merged give what one pass over all the tables gives: /flows pages for any filter, sort and
 * page, /stats' per-partition counters, and the table metrics' groups and top flows, in order.
 */
import fc from 'fast-check';
import type { FlowRecord } from '../../../processors/flow';
import { emptyStats, STATUS } from '../../../processors/flow';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { flowPage, parseFlowQuery } from '../../../sinks/http/flowQuery';
import type { TableView } from '../../../sinks/telemetry/observer';
import { answerTables, mergeAnswers } from '../../../sinks/telemetry/tableRequests';
import type { TableRequest } from '../../../sinks/telemetry/tableRequests';

const sysctl = makeSysctl();
const PROTOS = [6, 17, 1];
const TCP_STATES = ['SYN_SENT', 'ESTABLISHED', 'TIME_WAIT'];

/** Flows with few distinct values, so sorts tie and filters select some but not all. */
const flowArb = fc
  .record({ proto: fc.constantFrom(...PROTOS), state: fc.constantFrom(...TCP_STATES), zone: fc.nat(2), host: fc.nat(3), port: fc.nat(3), bytes: fc.nat(5), packets: fc.nat(3), timeout: fc.nat(4), replied: fc.boolean() })
  .map(
    (r): Omit<FlowRecord, 'id'> => ({
      zone: r.zone,
      family: 4,
      proto: r.proto,
      state: r.proto === 6 ? r.state : undefined,
      timeout: r.timeout,
      orig: { src: `10.0.0.${r.host}`, dst: '192.0.2.1', sport: 1000 + r.port, dport: 53 },
      reply: { src: '192.0.2.1', dst: `10.0.0.${r.host}`, sport: 53, dport: 1000 + r.port },
      status: r.replied ? STATUS.SEEN_REPLY : 0,
      counters: { orig: { packets: r.packets, bytes: r.bytes * 100 }, reply: { packets: 1, bytes: 40 } },
      startUs: r.timeout * 7,
      lastUs: r.bytes * 3,
    }),
  );

/** Up to 6 partitions' tables, ids counting up in each as an engine's do. */
const tablesArb = fc.array(fc.array(flowArb, { maxLength: 12 }), { minLength: 1, maxLength: 6 }).map((parts) =>
  parts.map((flows, partition): [number, TableView] => {
    const list = flows.map((f, i) => ({ ...f, id: partition * 3 + i }));
    return [partition, { list: () => list, stats: () => ({ ...emptyStats(), found: partition, insert: list.length }), count: list.length, sysctl }];
  }),
);

const queryArb = fc
  .record(
    {
      proto: fc.constantFrom('tcp', 'udp', 'icmp'),
      zone: fc.constantFrom('0', '1', '2'),
      src: fc.constantFrom('10.0.0.1', '10.0.0.0/30'),
      status: fc.constantFrom('SEEN_REPLY', 'UNREPLIED'),
      sort: fc.constantFrom('id', '-id', 'bytes', '-bytes', 'packets', '-packets', 'timeout', '-timeout', 'start', '-last'),
      limit: fc.integer({ min: 1, max: 8 }).map(String),
      offset: fc.nat(10).map(String),
    },
    { requiredKeys: [] },
  )
  .map((q) => new URLSearchParams(q));

/** The tables answered in `sets` groups (partition k in group owner[k]) and merged. */
function inParts<R extends TableRequest>(tables: Array<[number, TableView]>, owner: number[], sets: number, request: R) {
  const groups = Array.from({ length: sets }, (_, g) => tables.filter((_t, k) => owner[k % owner.length] % sets === g));
  return mergeAnswers(request, groups.map((g) => structuredClone(answerTables(g, request))));
}

const splitArb = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.array(fc.nat(3), { minLength: 1, maxLength: 6 }));

test('/flows pages merged from parts are the page of all the tables, for any filter, sort and page', () => {
  fc.assert(
    fc.property(tablesArb, queryArb, splitArb, (tables, params, [sets, owner]) => {
      const query = parseFlowQuery(params);
      const request = { kind: 'flows' as const, query };
      const whole = flowPage(answerTables(tables, request), query);
      expect(flowPage(inParts(tables, owner, sets, request), query)).toEqual(whole);
    }),
    { numRuns: 300 },
  );
});

test('stats and the table snapshot (groups in order, top flows) merged from parts are those of all the tables', () => {
  fc.assert(
    fc.property(tablesArb, splitArb, fc.integer({ min: 0, max: 6 }), (tables, [sets, owner], topN) => {
      for (const request of [{ kind: 'stats' as const }, { kind: 'snapshot' as const, topN }]) {
        expect(inParts(tables, owner, sets, request)).toEqual(answerTables(tables, request));
      }
    }),
    { numRuns: 300 },
  );
});

test('the merge is not a no-op: a page from one part alone misses the other part\'s flows', () => {
  const [tables] = fc.sample(tablesArb.filter((t) => t.length >= 2 && t[0][1].count > 0 && t[1][1].count > 0), { seed: 3, numRuns: 1 });
  const query = parseFlowQuery(new URLSearchParams({ sort: '-bytes', limit: '1000' }));
  const request = { kind: 'flows' as const, query };
  const all = answerTables(tables, request);
  expect(answerTables(tables.slice(0, 1), request).total).toBeLessThan(all.total);
  expect(inParts(tables, [0, 1], 2, request).total).toBe(all.total);
});
