/**
 * `ctflow report --topic` against a real broker: a capture produced into a topic of several
 * partitions gives the report of the capture itself (partitions merged back by packet time into
 * one engine); a --from/--to window gives the report of that slice of the capture; bad messages
 * and bad frames are listed with their topic, partition and offset; a broker that cannot be reached
 * is a clear error.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, connect, runId } from './helpers';
import { buildReportModel, topicReportModel } from '../../cli/report';
import type { ReportOptions } from '../../cli/report';
import { loadCapture } from '../../cli/runCapture';
import { openCapture } from '../../ingest/capture/reader';
import { writePcap } from '../../ingest/capture/pcapWriter';
import { encodeFrameBatch } from '../../ingest/kafka/capturedTraffic';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import type { ReportModel } from '../../sinks/report/collect';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const dir = mkdtempSync(join(tmpdir(), 'ctflow-report-topic-'));
const silent = { out: () => undefined, err: () => undefined };

/** The report's numbers and columns, without the name of what was read (a file name or a topic). */
function numbers(m: ReportModel): unknown {
  const { name: _name, ...capture } = m.meta.capture;
  return { meta: { ...m.meta, capture }, columns: m.columns };
}

function topicModel(topic: string, extra: Partial<ReportOptions> = {}): Promise<ReportModel> {
  const o = { topic, brokers, whatif: [], sysctl: [], shards: '1', ...extra } as ReportOptions & { topic: string };
  return topicReportModel(o, silent).then((r) => r.model);
}

/** The HTML's embedded summary (the JSON part of the report). */
function embeddedMeta(file: string): Record<string, any> {
  return JSON.parse(/<script type="application\/json" id="ctflow-meta">(.*?)<\/script>/s.exec(readFileSync(file, 'utf8'))![1]);
}

const describeKafka = brokers ? describe : describe.skip;

describeKafka('report --topic (real broker)', () => {
  const topic = `ctflow-test-report-${runId}`;
  const fileModel = buildReportModel(loadCapture(sample), 'sample.pcap', makeSysctl(), 1);

  beforeAll(async () => {
    // Small batches, so each partition has several messages and a window starts inside one.
    const r = await cliAsync('produce', sample, '--topic', topic, '--partitions', '3', '--batch-frames', '256', '--brokers', brokers, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
  });

  afterAll(async () => {
    // The report writes no topic; the test's input topics go, as the broker may be someone's cluster.
    const conn = connect();
    try {
      await (await conn.admin()).deleteTopics([topic, `${topic}-bad`, `${topic}-single`]);
    } finally {
      await conn.close();
    }
  });

  test('the report of a topic of three partitions is the report of the capture it was produced from', async () => {
    const model = await topicModel(topic);
    expect(model.meta.capture.packets).toBe(fileModel.meta.capture.packets);
    expect(model.meta.flowCount).toBeGreaterThan(0);
    expect(numbers(model)).toEqual(numbers(fileModel));
    expect(model.meta.capture.name).toBe(`Kafka topic ${topic}`);
  });

  test('single-frame messages and a zone header give the report of the capture with that zone', async () => {
    const single = `${topic}-single`;
    const r = await cliAsync('produce', sample, '--topic', single, '--partitions', '2', '--single-frames', '--zone', '5', '--brokers', brokers, '--quiet');
    expect(r.code).toBe(0);
    const model = await topicModel(single);
    // The capture's own report with every packet in zone 5 (--zone-default), and not in zone 0.
    const zoned = buildReportModel(loadCapture(sample), 'sample.pcap', makeSysctl(), 1, {}, { zoneOf: () => 5 });
    expect(new Set(Array.from(model.columns.fZone))).toEqual(new Set([5]));
    expect(numbers(model)).toEqual(numbers(zoned));
    // The zone options map it elsewhere, as replay --topic's do.
    const mapped = await topicModel(single, { zoneFrom: 'header', zoneMap: ['header:5=9'] });
    expect(new Set(Array.from(mapped.columns.fZone))).toEqual(new Set([9]));
    expect(mapped.meta.capture.packets).toBe(model.meta.capture.packets);
  });

  test('the command line writes the same summary into the HTML as for the capture', async () => {
    const fromTopic = join(dir, 'topic.html');
    const fromFile = join(dir, 'file.html');
    const r = await cliAsync('report', '--topic', topic, '-o', fromTopic, '--brokers', brokers);
    expect(r.code).toBe(0);
    expect(r.err[0]).toMatch(new RegExp(`^ctflow: wrote .*topic\\.html \\(\\d+\\.\\d MB\\): ${fileModel.meta.capture.packets} packets, ${fileModel.meta.flowCount} flows, 0 bad frames`));
    expect((await cliAsync('report', sample, '-o', fromFile)).code).toBe(0);
    const a = embeddedMeta(fromTopic);
    const b = embeddedMeta(fromFile);
    expect(a.capture.name).not.toBe(b.capture.name);
    delete a.capture.name;
    delete b.capture.name;
    expect(a).toEqual(b);
  });

  test('a --from/--to window gives the report of that time slice of the capture', async () => {
    const frames = [...openCapture(loadCapture(sample))];
    // Whole milliseconds a third and two thirds into the capture, as the options take them.
    const fromMs = Math.floor(frames[Math.floor(frames.length / 3)].tsUs / 1000);
    const toMs = Math.floor(frames[Math.floor((2 * frames.length) / 3)].tsUs / 1000);
    const slice = frames.filter((f) => f.tsUs >= fromMs * 1000 && f.tsUs < toMs * 1000);
    const sliceModel = buildReportModel(writePcap(slice.map((f) => ({ tsUs: f.tsUs, data: f.data })), frames[0].linkType), 'slice.pcap', makeSysctl(), 1);
    expect(sliceModel.meta.capture.packets).toBeGreaterThan(0);
    expect(sliceModel.meta.capture.packets).toBeLessThan(fileModel.meta.capture.packets);
    const model = await topicModel(topic, { from: new Date(fromMs).toISOString(), to: String(toMs / 1000) });
    expect(numbers(model)).toEqual(numbers(sliceModel));
  });

  test('an undecodable message and a bad frame are listed with their partition and offset; the rest is reported', async () => {
    const bad = `${topic}-bad`;
    expect((await cliAsync('produce', sample, '--topic', bad, '--partitions', '2', '--brokers', brokers, '--quiet')).code).toBe(0);
    const afterUs = fileModel.meta.capture.lastUs + 1_000_000;
    const conn = connect();
    try {
      const producer = await conn.producer();
      await producer.send([
        { topic: bad, partition: 1, value: Buffer.from('not a frame batch'), timestampMs: afterUs / 1000 },
        // Raw IP (link type 101) with three bytes: too short for an IP header.
        { topic: bad, partition: 0, value: encodeFrameBatch([{ tsUs: afterUs + 1000, linkType: 101, interfaceId: 0, data: Uint8Array.of(0x45, 0, 0), origLength: 3 }]), timestampMs: afterUs / 1000 + 1 },
      ]);
    } finally {
      await conn.close();
    }
    const ends = await (async () => {
      const c = connect();
      try {
        return await (await c.admin()).offsets(bad);
      } finally {
        await c.close();
      }
    })();
    const lastOffset = (p: number) => String(BigInt(ends.find((e) => e.partition === p)!.high) - 1n);
    const model = await topicModel(bad);
    const frames = fileModel.meta.capture.frames;
    expect(model.meta.capture.badFrames).toEqual([
      { frame: -1, reason: expect.stringMatching(/neither a frame batch .* nor a single frame/), message: { topic: bad, partition: 1, offset: lastOffset(1) } },
      { frame: frames, reason: expect.any(String), message: { topic: bad, partition: 0, offset: lastOffset(0), frameInMessage: 0 } },
    ]);
    expect(model.meta.capture.frames).toBe(frames + 1);
    expect(model.meta.capture.packets).toBe(fileModel.meta.capture.packets);
    expect(model.meta.stats).toEqual(fileModel.meta.stats);
    // On stderr too, where kafka tools can find them.
    const r = await cliAsync('report', '--topic', bad, '-o', join(dir, 'bad.html'), '--brokers', brokers);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`ctflow: message ${bad} partition 1 offset ${lastOffset(1)}: ${model.meta.capture.badFrames[0].reason}`);
  });

  test('with --workers 2 and 3 the report of every topic above is the one-thread report: batches, single frames with zones, a window, bad messages', async () => {
    const frames = [...openCapture(loadCapture(sample))];
    const window = { from: String(Math.floor(frames[100].tsUs / 1000) / 1000), to: String(Math.floor(frames[frames.length - 100].tsUs / 1000) / 1000) };
    const cases: Array<[string, Partial<ReportOptions>]> = [[topic, {}], [`${topic}-single`, { zoneMap: ['header:5=9'] }], [topic, window], [`${topic}-bad`, {}]];
    for (const [name, extra] of cases) {
      const one = await topicModel(name, extra);
      expect(one.meta.flowCount).toBeGreaterThan(0);
      for (const workers of ['2', '3']) expect({ name, extra, model: await topicModel(name, { ...extra, workers }) }).toEqual({ name, extra, model: one });
    }
    // The command line writes the same file.
    const html = (workers: string) => join(dir, `workers-${workers}.html`);
    for (const workers of ['1', '2']) expect((await cliAsync('report', '--topic', `${topic}-bad`, '-o', html(workers), '--brokers', brokers, '--workers', workers, '--quiet')).code).toBe(0);
    expect(readFileSync(html('2')).equals(readFileSync(html('1')))).toBe(true);
  }, 120_000);

  test.each([
    [['--brokers', '127.0.0.1:1'], /cannot connect to Kafka \(brokers 127\.0\.0\.1:1\)/],
    [['--brokers', brokers, '--topic', `ctflow-test-no-such-${runId}`], /topic 'ctflow-test-no-such-.*' does not exist/],
    [['--brokers', brokers, '--from', 'yesterday'], /--from: 'yesterday' is neither an ISO 8601 time nor seconds since the epoch/],
    [['--brokers', brokers, '--whatif', 'nf_conntrack_tcp_loose=0'], /--whatif is not available for a topic/],
  ])('report --topic %j fails with a message naming the problem', async (args, message) => {
    const argv = ['report', '--topic', topic, '-o', join(dir, 'x.html'), ...args];
    const r = await cliAsync(...argv);
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toMatch(message);
  });
});
