/**
 * The live API over real HTTP: the sample capture's final table, plus a hand-made partition
 * holding NATed flows, served on 127.0.0.1 with a bearer token.
 */
import { startApiServer } from '../../../sinks/http/server';
import type { ApiServer, Readiness } from '../../../sinks/http/server';
import { prometheusRegistry } from '../../../sinks/metrics/prometheus';
import type { FlowRecord } from '../../../processors/flow';
import { STATUS } from '../../../processors/flow';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { emptyStats } from '../../../processors/flow';
import type { ConntrackEngine } from '../../../processors/conntrack/engine';
import type { TableView } from '../../../sinks/telemetry/observer';
import { sampleTelemetry } from '../telemetry/sampleTelemetry';

const TOKEN = 's3cret-token';
let server: ApiServer;
let engine: ConntrackEngine;
let readiness: Readiness = { ready: false, status: 'replaying sample.pcap' };

function natFlow(id: number, kind: 'snat' | 'dnat'): FlowRecord {
  const orig = { src: '10.0.0.5', dst: '203.0.113.9', sport: 40000 + id, dport: 443 };
  const reply = kind === 'snat' ? { src: '203.0.113.9', dst: '198.51.100.1', sport: 443, dport: 40000 + id } : { src: '10.9.9.9', dst: '10.0.0.5', sport: 8443, dport: 40000 + id };
  return {
    id,
    zone: 7,
    family: 4,
    proto: 6,
    state: 'ESTABLISHED',
    timeout: 300,
    orig,
    reply,
    status: STATUS.SEEN_REPLY | STATUS.ASSURED | STATUS.CONFIRMED | (kind === 'snat' ? STATUS.SRC_NAT : STATUS.DST_NAT),
    counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 1, bytes: 60 } },
    startUs: 0,
    lastUs: 0,
  };
}

const natTable: TableView = {
  list: () => [natFlow(1, 'snat'), natFlow(2, 'dnat')],
  stats: () => ({ ...emptyStats(), insert: 2 }),
  count: 2,
  sysctl: makeSysctl(),
};

beforeAll(async () => {
  const { telemetry, run } = await sampleTelemetry();
  engine = run.engine;
  telemetry.table(9, natTable);
  server = await startApiServer({ host: '127.0.0.1', port: 0 }, { telemetry, registry: prometheusRegistry(telemetry, { processMetrics: false }), token: TOKEN, readiness: () => readiness });
});

afterAll(() => server.close());

const get = (path: string, token: string | null = TOKEN, method = 'GET') => fetch(`${server.url}${path}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
const flows = async (query: string) => {
  const res = await get(`/flows?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { total: number; offset: number; limit: number; next: number | null; flows: Array<Record<string, any>> };
};

test('listens on 127.0.0.1 as asked', () => {
  expect(server.host).toBe('127.0.0.1');
  expect(server.port).toBeGreaterThan(0);
});

describe('auth', () => {
  test.each(['/flows', '/stats', '/metrics'])('%s wants the bearer token', async (path) => {
    const none = await get(path, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await get(path, 'wrong-token')).status).toBe(401);
    expect((await get(path, `${TOKEN}x`)).status).toBe(401);
    expect((await get(path)).status).toBe(200);
  });

  test('the probes answer without it', async () => {
    expect((await get('/healthz', null)).status).toBe(200);
    readiness = { ready: false, status: 'replaying sample.pcap' };
    const notYet = await get('/readyz', null);
    expect(notYet.status).toBe(503);
    expect(await notYet.json()).toEqual(readiness);
    readiness = { ready: true, status: 'serving the final state' };
    expect((await get('/readyz', null)).status).toBe(200);
  });
});

describe('/flows', () => {
  /** Both partitions' entries in the API's default order: by id, then partition. */
  const all = () =>
    [...engine.list().map((f) => ({ partition: 0, f })), ...natTable.list().map((f) => ({ partition: 9, f }))].sort((a, b) => a.f.id - b.f.id || a.partition - b.partition);
  const table = () => all().map((x) => x.f);
  const sampleOnly = () => engine.list();

  test('without filters: every entry of every partition, oldest first, 100 to a page', async () => {
    const page = await flows('');
    expect(page.total).toBe(engine.count + 2);
    expect(page.limit).toBe(100);
    expect(page.next).toBe(100);
    expect(page.flows.map((f) => [f.partition, f.id])).toEqual(all().slice(0, 100).map((x) => [x.partition, x.f.id]));
    expect(page.flows[0]).toMatchObject({ partition: 0, l3: 'ipv4', proto: expect.any(String), orig: expect.any(Object), reply: expect.any(Object) });
  });

  test.each([
    ['proto=udp', (f: FlowRecord) => f.proto === 17],
    ['proto=6&state=time_wait', (f: FlowRecord) => f.proto === 6 && f.state === 'TIME_WAIT'],
    ['proto=tcp&dport=443', (f: FlowRecord) => f.proto === 6 && f.orig.dport === 443],
    ['status=UNREPLIED', (f: FlowRecord) => (f.status & STATUS.SEEN_REPLY) === 0],
    ['status=ASSURED,SEEN_REPLY', (f: FlowRecord) => (f.status & STATUS.ASSURED) !== 0],
    ['state=REPLIED&proto=udp', (f: FlowRecord) => f.proto === 17 && (f.status & STATUS.SEEN_REPLY) !== 0 && (f.status & STATUS.ASSURED) === 0],
    ['src=192.0.2.14', (f: FlowRecord) => f.orig.src === '192.0.2.14'],
    ['dst=198.51.100.0/30', (f: FlowRecord) => /^198\.51\.100\.[0-3]$/.test(f.orig.dst)],
    ['reply-src=198.51.100.5&reply-sport=443', (f: FlowRecord) => f.reply.src === '198.51.100.5' && f.reply.sport === 443],
    ['family=ipv6', (f: FlowRecord) => f.family === 6],
    ['zone=0', (f: FlowRecord) => f.zone === 0],
    ['src=192.0.2.8&mask-src=255.255.255.248', (f: FlowRecord) => /^192\.0\.2\.(8|9|1[0-5])$/.test(f.orig.src)],
    ['proto=icmp&icmp-type=8', (f: FlowRecord) => f.proto === 1 && f.orig.icmp?.type === 8],
    ['status=UNSET&proto=udp', (f: FlowRecord) => f.proto === 17],
  ])('%s selects what conntrack -L would', async (query, keep) => {
    const want = table().filter(keep);
    expect(want.length).toBeGreaterThan(0); // every case selects something, and not everything
    expect(want.length).toBeLessThan(table().length);
    const page = await flows(`${query}&limit=1000`);
    expect(page.total).toBe(want.length);
    expect(page.flows.map((f) => f.id)).toEqual(want.map((f) => f.id));
  });

  test('filters that match nothing in the sample do match nothing', async () => {
    expect((await flows('zone=3')).total).toBe(0);
    expect((await flows('src=3fff::/20')).total).toBe(0);
  });

  test('NAT filters find the NATed entries, with their partition', async () => {
    expect((await flows('nat=src')).flows.map((f) => [f.partition, f.id])).toEqual([[9, 1]]);
    expect((await flows('nat=dst')).flows.map((f) => [f.partition, f.id])).toEqual([[9, 2]]);
    expect((await flows('nat=any')).total).toBe(2);
    expect((await flows('nat=none')).total).toBe(sampleOnly().length);
    expect((await flows('zone=7&status=DST_NAT')).flows.map((f) => f.id)).toEqual([2]);
  });

  test('nat-addr narrows a NAT filter to entries NATed to (src) or from (dst) that address, as --src-nat IP does', async () => {
    expect((await flows('nat=src&nat-addr=198.51.100.1')).flows.map((f) => [f.partition, f.id])).toEqual([[9, 1]]);
    expect((await flows('nat=src&nat-addr=198.51.100.2')).total).toBe(0);
    expect((await flows('nat=dst&nat-addr=10.9.9.9:8443')).flows.map((f) => f.id)).toEqual([2]);
    expect((await flows('nat=dst&nat-addr=10.9.9.9:443')).total).toBe(0);
    expect((await flows('nat=any&nat-addr=10.9.9.9')).flows.map((f) => f.id)).toEqual([2]);
    expect((await flows('nat=any&nat-addr=198.51.100.1&dport=443')).flows.map((f) => f.id)).toEqual([1]);
  });

  test('pages of a sort put together give the whole sorted table', async () => {
    const pages: Array<Record<string, any>> = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const page = await flows(`sort=-bytes&limit=97&offset=${offset}`);
      pages.push(...page.flows);
      offset = page.next;
    }
    expect(pages).toHaveLength(table().length);
    const bytes = pages.map((f) => f.bytes as number);
    expect(bytes).toEqual([...bytes].sort((a, b) => b - a));
    expect(new Set(pages.map((f) => `${f.partition}/${f.id}`)).size).toBe(pages.length);
    expect(bytes[0]).toBe(Math.max(...table().map((f) => f.counters.orig.bytes + f.counters.reply.bytes)));
  });

  test('an offset past the end is an empty page', async () => {
    const page = await flows('offset=100000');
    expect(page.flows).toEqual([]);
    expect(page.next).toBeNull();
  });

  test.each([
    ['sport=abc', 'sport'],
    ['dport=70000', 'dport'],
    ['limit=0', 'limit'],
    ['limit=5000', 'limit'],
    ['offset=-1', 'offset'],
    ['proto=foo', 'proto'],
    ['src=192.0.2.999', 'src'],
    ['dst=10.0.0.0/33', 'dst'],
    ['family=ipv5', 'family'],
    ['status=ASSURED,BOGUS', 'status'],
    ['nat=both', 'nat'],
    ['sort=colour', 'sort'],
    ['zone=x', 'zone'],
    ['colour=red', 'colour'],
    ['proto=tcp&proto=udp', 'proto'],
    ['nat-addr=10.0.0.1', 'nat-addr'],
    ['nat=none&nat-addr=10.0.0.1', 'nat-addr'],
    ['nat=src&nat-addr=bogus', 'nat-addr'],
    ['mask-src=255.255.0.0', 'mask-src'],
    ['icmp-type=300', 'icmp-type'],
    ['proto=udp&state=ESTABLISHED', 'state'],
    ['family=ipv6&src=10.0.0.1', 'src'],
  ])('%s is a 400 that names %s', async (query, parameter) => {
    const res = await get(`/flows?${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; parameter: string };
    expect(body.parameter).toBe(parameter);
    expect(body.error).toContain(`'${parameter}'`);
  });
});

test('/stats is conntrack -S summed over the partitions, and each partition', async () => {
  const body = (await (await get('/stats')).json()) as Record<string, any>;
  const s = engine.stats();
  expect(body.entries).toBe(engine.count + 2);
  expect(body.found).toBe(s.found);
  expect(body.insert).toBe(s.insert + 2);
  expect(body.partitions.map((p: { partition: number; entries: number }) => [p.partition, p.entries])).toEqual([
    [0, engine.count],
    [9, 2],
  ]);
  expect(body.packets.INVALID).toBe(s.invalid);
});

test('/metrics is the Prometheus text format', async () => {
  const res = await get('/metrics');
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(await res.text()).toMatch(/^ctflow_nf_conntrack_entries_limit\{partition="9"\} 262144$/m);
});

test('unknown paths are 404 and other methods 405', async () => {
  expect((await get('/nope')).status).toBe(404);
  const post = await get('/flows', TOKEN, 'POST');
  expect(post.status).toBe(405);
  expect(post.headers.get('allow')).toBe('GET, HEAD');
});
