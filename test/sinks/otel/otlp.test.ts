/**
 * OTLP export through the official OpenTelemetry exporter to a receiver in this test: an HTTP
 * server on 127.0.0.1 that takes what the exporter POSTs to /v1/metrics, decodes the OTLP/JSON
 * ExportMetricsServiceRequest, and finds ctflow's instruments with the engine's values.
 *
 * The exporter runs where users run it, in `ctflow replay CAPTURE --otlp URL` as a child
 * process (jest's module sandbox cannot host it: the exporter loads its transport with a
 * dynamic import(), which jest's VM refuses). The engine's totals to compare with are the
 * replay's own JSON summary and the same capture replayed in this process.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { RunResult } from '../../../cli/runCapture';
import type { ReplaySummary } from '../../prometheus/ctflowProcess';
import { otlpResource } from '../../../sinks/otel/exporter';
import { SAMPLE, sampleTelemetry } from '../telemetry/sampleTelemetry';

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface DataPoint {
  attributes?: KeyValue[];
  asInt?: number | string;
  asDouble?: number;
  count?: number | string;
  sum?: number;
  bucketCounts?: Array<number | string>;
  explicitBounds?: number[];
}
interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { dataPoints: DataPoint[]; isMonotonic?: boolean; aggregationTemporality?: number };
  gauge?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: DataPoint[] };
}
interface ExportRequest {
  resourceMetrics: Array<{ resource: { attributes: KeyValue[] }; scopeMetrics: Array<{ scope: { name: string }; metrics: OtlpMetric[] }> }>;
}

/** An OTLP/JSON value as plain JS (int64s may come as strings). */
const plain = (v: AnyValue): string | number | boolean | undefined => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue;
const attrs = (kvs: KeyValue[] = []): Record<string, unknown> => Object.fromEntries(kvs.map((kv) => [kv.key, plain(kv.value)]));
const value = (p: DataPoint): number => Number(p.asInt ?? p.asDouble);

const requests: ExportRequest[] = [];
const contentTypes: string[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/metrics') {
      contentTypes.push(String(req.headers['content-type']));
      requests.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});

let run: RunResult;
let summary: ReplaySummary;
let exported: ExportRequest;

let url: string;

/** `ctflow replay SAMPLE --otlp URL --json ...extra` as a child process: its summary, and the last export it sent. */
async function replayExporting(...extra: string[]): Promise<{ summary: ReplaySummary; exported: ExportRequest }> {
  const before = requests.length;
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'prometheus', 'runTs.js'), 'replay', SAMPLE, '--otlp', url, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Operators' resource attributes are honoured on top of ctflow's own.
    env: { ...process.env, OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=test-instance,deployment.environment.name=ci' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`ctflow replay --otlp exited ${code}:\n${err}`);
  if (requests.length === before) throw new Error('ctflow replay --otlp sent nothing');
  return { summary: JSON.parse(out) as ReplaySummary, exported: requests[requests.length - 1] };
}

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/metrics`;
  ({ summary, exported } = await replayExporting());
  ({ run } = await sampleTelemetry());
}, 60_000);

afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

function metric(name: string, from = exported): OtlpMetric {
  const all = from.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
  const m = all.find((x) => x.name === name);
  if (!m) throw new Error(`no ${name} among ${all.map((x) => x.name).join(', ')}`);
  return m;
}
const points = (m: OtlpMetric): DataPoint[] => (m.sum ?? m.gauge ?? m.histogram)!.dataPoints;
const total = (name: string): number => points(metric(name)).reduce((n, p) => n + value(p), 0);

test('the official exporter sent OTLP/JSON to the receiver', () => {
  expect(requests.length).toBeGreaterThan(0);
  expect(contentTypes[0]).toMatch(/^application\/json/);
});

test("the resource names the service, its version and instance, with the operator's attributes", () => {
  const resource = attrs(exported.resourceMetrics[0].resource.attributes);
  expect(resource).toMatchObject({ 'service.name': 'ctflow', 'service.version': expect.stringMatching(/^\d+\.\d+\.\d+/), 'service.instance.id': 'test-instance', 'deployment.environment.name': 'ci' });
  expect(exported.resourceMetrics[0].scopeMetrics[0].scope.name).toBe('ctflow');
  // A capture replay says so, and names no zone: nothing configured one for this process.
  expect(resource['ctflow.mode']).toBe('replay');
  expect(resource).not.toHaveProperty('ctflow.zone');
});

test('the zone a deployment serves (telemetry.zone) and its mode are resource attributes', () => {
  const r = otlpResource({ version: '1.2.3', instanceId: 'gw-1', zone: 7, mode: 'live' });
  expect(r.attributes).toMatchObject({ 'service.name': 'ctflow', 'service.instance.id': 'gw-1', 'ctflow.zone': 7, 'ctflow.mode': 'live' });
  expect(otlpResource({})).not.toHaveProperty(['attributes', 'ctflow.zone']);
  expect(otlpResource({}).attributes['ctflow.mode']).toBe('live');
});

test('packets, bytes and flows are monotonic sums with the engine totals', () => {
  const packets = metric('ctflow.packets');
  expect(packets.sum?.isMonotonic).toBe(true);
  expect(packets.unit).toBe('{packet}');
  expect(total('ctflow.packets')).toBe(summary.packets);
  expect(metric('ctflow.bytes').unit).toBe('By');
  expect(total('ctflow.flows.created')).toBe(summary.events.NEW);
  expect(total('ctflow.flows.destroyed')).toBe(summary.events.DESTROY);
  const tcpNew = points(packets).find((p) => attrs(p.attributes)['network.transport'] === 'tcp' && attrs(p.attributes)['ctflow.ctstate'] === 'NEW');
  expect(attrs(tcpNew!.attributes)).toEqual({ 'ctflow.zone': 0, 'network.transport': 'tcp', 'ctflow.ctstate': 'NEW' });
});

test('INVALID packets carry their reason', () => {
  const byReason = Object.fromEntries(points(metric('ctflow.invalid_packets')).map((p) => [attrs(p.attributes)['ctflow.reason'], value(p)]));
  expect(byReason).toEqual(summary.invalidReasons);
});

test('the table gauges and conntrack -S counters match the engine', () => {
  expect(metric('ctflow.conntrack.entries').gauge).toBeDefined();
  expect(total('ctflow.conntrack.entries')).toBe(summary.entriesAtEnd);
  expect(total('ctflow.conntrack.stat.found')).toBe(summary.stats.found);
  expect(attrs(points(metric('ctflow.conntrack.entries.limit'))[0].attributes)).toEqual({ 'messaging.destination.partition.id': '0' });
});

test('the top flows use the semantic conventions for their tuples', () => {
  const top = points(metric('ctflow.top_flow.bytes'));
  expect(top).toHaveLength(20);
  const biggest = [...top].sort((a, b) => value(b) - value(a))[0];
  expect(attrs(biggest.attributes)).toMatchObject({
    'network.transport': 'tcp',
    'network.type': 'ipv4',
    'source.address': expect.any(String),
    'source.port': expect.any(Number),
    'destination.address': expect.any(String),
    'destination.port': expect.any(Number),
  });
  const list = run.engine.list();
  expect(value(biggest)).toBe(Math.max(...list.map((f) => f.counters.orig.bytes + f.counters.reply.bytes)));
});

test('batch histograms and lag gauges describe the replay', () => {
  // The replay's batches of 4096 packets: two for the sample's 5802.
  const size = points(metric('ctflow.batch.size'))[0];
  expect(Number(size.count)).toBe(2);
  expect(size.sum).toBe(summary.frames);
  expect(size.explicitBounds).toContain(1024);
  expect(points(metric('ctflow.consumer.lag')).map((p) => [attrs(p.attributes), value(p)])).toEqual([[{ 'messaging.destination.partition.id': '0' }, 0]]);
  expect(metric('ctflow.event_time.lag').unit).toBe('s');
});

test('with --workers 2 the replay exports the same data points as with one thread (batch timing and wall-clock lag aside)', async () => {
  const shares = await replayExporting('--workers', '2');
  const names = (e: ExportRequest) => e.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.name))).sort();
  expect(names(shares.exported)).toEqual(names(exported));
  const stable = names(exported).filter((n) => !/^ctflow\.(batch\.|event_time\.lag)/.test(n));
  expect(stable).toContain('ctflow.top_flow.bytes');
  // Each metric's points as attributes and value, in a fixed order (series appear in the order their first packet came).
  const pointsOf = (e: ExportRequest, name: string) => points(metric(name, e)).map((p) => `${JSON.stringify(attrs(p.attributes))} ${value(p)}`).sort();
  for (const name of stable) expect({ name, points: pointsOf(shares.exported, name) }).toEqual({ name, points: pointsOf(exported, name) });
  expect(shares.summary.packets).toBe(summary.packets);
}, 60_000);
