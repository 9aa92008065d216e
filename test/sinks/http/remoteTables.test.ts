/**
 * The live API over tables held elsewhere (RemoteTable: a partition worker's), over real HTTP on
 * 127.0.0.1: answers merge this thread's tables with the ones asked for, and a source that cannot
 * answer (a worker gone, or too slow) makes /flows, /stats and /metrics a 503 that says why,
 * never a partial answer, while the probes go on answering.
 */
import { startApiServer } from '../../../sinks/http/server';
import type { ApiServer } from '../../../sinks/http/server';
import { prometheusRegistry } from '../../../sinks/metrics/prometheus';
import type { FlowRecord } from '../../../processors/flow';
import { emptyStats } from '../../../processors/flow';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import type { TableSource, TableView } from '../../../sinks/telemetry/observer';
import { answerTables, TableReadError } from '../../../sinks/telemetry/tableRequests';
import type { TableRequest } from '../../../sinks/telemetry/tableRequests';
import { PipelineTelemetry } from '../../../sinks/telemetry/telemetry';

const sysctl = makeSysctl();

function udp(id: number, bytes: number): FlowRecord {
  return {
    id,
    zone: 0,
    family: 4,
    proto: 17,
    timeout: 30,
    orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 1000 + id, dport: 53 },
    reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport: 1000 + id },
    status: 0,
    counters: { orig: { packets: 1, bytes }, reply: { packets: 0, bytes: 0 } },
    startUs: 0,
    lastUs: 0,
  };
}
const view = (flows: FlowRecord[]): TableView => ({ list: () => flows, stats: () => ({ ...emptyStats(), found: flows.length }), count: flows.length, sysctl });

/** A worker's tables, answered asynchronously (as if across a thread), or failing as a dead worker's. */
class FakeWorker implements TableSource {
  failWith?: string;
  asked: number[][] = [];
  constructor(private readonly tables: Map<number, TableView>) {}
  async ask<R extends TableRequest>(partitions: readonly number[], request: R) {
    this.asked.push([...partitions]);
    await new Promise((r) => setImmediate(r));
    if (this.failWith) throw new TableReadError(this.failWith);
    return structuredClone(answerTables(partitions.map((p): [number, TableView] => [p, this.tables.get(p)!]), request));
  }
}

let server: ApiServer;
const worker = new FakeWorker(new Map([[1, view([udp(0, 500), udp(1, 50)])], [3, view([udp(0, 5000)])]]));

beforeAll(async () => {
  const telemetry = new PipelineTelemetry();
  telemetry.table(0, view([udp(0, 100), udp(1, 1000)]));
  telemetry.table(1, { sysctl, source: worker });
  telemetry.table(3, { sysctl, source: worker });
  server = await startApiServer({ host: '127.0.0.1', port: 0 }, { telemetry, registry: prometheusRegistry(telemetry, { processMetrics: false }), readiness: () => ({ ready: true, status: 'ok' }) });
});
afterAll(() => server.close());

test('/flows and /stats merge this thread\'s tables with a worker\'s, asked once for all its partitions', async () => {
  worker.asked = [];
  const page = (await (await fetch(`${server.url}/flows?sort=-bytes&limit=3`)).json()) as { total: number; flows: Array<{ partition: number; bytes: number }> };
  expect(page.total).toBe(5);
  expect(page.flows.map((f) => [f.partition, f.bytes])).toEqual([
    [3, 5000],
    [0, 1000],
    [1, 500],
  ]);
  expect(worker.asked).toEqual([[1, 3]]);
  const stats = (await (await fetch(`${server.url}/stats`)).json()) as { entries: number; found: number; partitions: Array<{ partition: number }> };
  expect(stats.entries).toBe(5);
  expect(stats.found).toBe(5);
  expect(stats.partitions.map((p) => p.partition)).toEqual([0, 1, 3]);
});

test('a worker that cannot answer makes the table endpoints a 503 naming it; the probes still answer', async () => {
  worker.failWith = 'partition worker 1 (partitions 1,3) did not answer a table read within 15000 ms';
  try {
    for (const path of ['/flows', '/stats', '/metrics']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toMatch(/partition worker 1 .*did not answer/);
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  } finally {
    worker.failWith = undefined;
  }
  expect((await fetch(`${server.url}/flows`)).status).toBe(200);
});
