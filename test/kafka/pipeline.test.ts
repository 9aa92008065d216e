/**
 * The Kafka pipeline against a real broker (jest's global setup starts one unless KAFKA_BROKERS
 * names a cluster): a capture produced into a topic and replayed gives the transitions the
 * in-process engine gives; replays are repeatable; bad messages go to the dead-letter topic; a
 * consumer stopped mid-stream and restarted loses no flow record.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokers, cli, cliAsync, readTopic, runId, withoutId } from './helpers';
import { openCapture } from '../../ingest/capture/reader';
import { ipv4Packet, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import type { PcapRecord } from '../../ingest/capture/pcapWriter';
import { KafkaConnection } from '../../kafka/client';
import type { InputMessage } from '../../kafka/client';
import { StreamPipeline } from '../../cli/streamPipeline';
import type { PipelineObserver } from '../../sinks/telemetry/observer';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import { encodeFrameBatch } from '../../ingest/kafka/capturedTraffic';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const run = runId;
const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');

/** The sample capture plus late packets on many address pairs, so every partition's clock passes the short timeouts. */
function sampleWithLateTraffic(): string {
  const capture = openCapture(new Uint8Array(readFileSync(sample)));
  const records: PcapRecord[] = [];
  let last = 0;
  for (const f of capture) {
    records.push({ tsUs: f.tsUs, data: f.data.slice() });
    last = f.tsUs;
  }
  for (let i = 0; i < 64; i++) {
    const ip = ipv4Packet({ src: `10.250.${i}.1`, dst: `10.251.${i}.1`, proto: 17, payload: udpDatagram({ sport: 1000 + i, dport: 9 }) });
    records.push({ tsUs: last + 43_200e6 + i, data: ip }); // 12 h later: past every timeout but ESTABLISHED's
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-kafka-'));
  const path = join(dir, 'late.pcap');
  writeFileSync(path, writePcap(records, 101));
  return path;
}

const describeKafka = brokers ? describe : describe.skip;

describeKafka('Kafka pipeline (real broker)', () => {
  const topic = `ctflow-test-capture-${run}`;

  beforeAll(async () => {
    const r = await cliAsync('produce', sample, '--topic', topic, '--partitions', '4', '--brokers', brokers, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
  });

  test('a produced capture, replayed from its topic, gives the transitions ctflow events gives', async () => {
    const local = cli('events', sample);
    expect(local.code).toBe(0);
    const r = await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--events-out', '-', '--out-prefix', `${topic}.a.`, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(local.out.length);
    // Partitions are merged back by event time; within one timestamp the order may differ from the single engine's.
    expect(r.out.map(withoutId).sort()).toEqual(local.out.map(withoutId).sort());
    // The topic also carries one INVALID record per INVALID packet, with its reason, as classify reports them.
    const written = (await readTopic(`${topic}.a.transitions`)).map((m) => JSON.parse(m.value!.toString()));
    const invalid = cli('classify', sample).out.map((l) => JSON.parse(l)).filter((v) => v.ctstate === 'INVALID');
    expect(invalid.length).toBeGreaterThan(0);
    expect(written.filter((j) => j.type !== 'INVALID').length).toBe(local.out.length);
    expect(written.filter((j) => j.type === 'INVALID').map((j) => j.reason).sort()).toEqual(invalid.map((v) => v.reason).sort());
  });

  test('replaying the same topic twice writes the same messages to the same partitions', async () => {
    await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--out-prefix', `${topic}.b.`, '--quiet', '--verdicts');
    await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--out-prefix', `${topic}.c.`, '--quiet', '--verdicts');
    for (const kind of ['transitions', 'verdicts']) {
      const b = await readTopic(`${topic}.b.${kind}`);
      const c = await readTopic(`${topic}.c.${kind}`);
      expect(b.length).toBeGreaterThan(0);
      expect(c.map((m) => [m.partition, m.offset, m.key?.toString(), m.value?.toString()])).toEqual(b.map((m) => [m.partition, m.offset, m.key?.toString(), m.value?.toString()]));
    }
  });

  test('one frame per message gives the same transitions as frame batches', async () => {
    const single = `${topic}-single`;
    const p = await cliAsync('produce', sample, '--topic', single, '--single-frames', '--brokers', brokers, '--quiet');
    expect(p.code).toBe(0);
    const a = await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--events-out', '-', '--out-prefix', `${single}.x.`, '--quiet');
    const b = await cliAsync('replay', '--topic', single, '--brokers', brokers, '--events-out', '-', '--out-prefix', `${single}.y.`, '--quiet');
    expect(b.out.length).toBeGreaterThan(1000);
    expect(b.out.map(withoutId).sort()).toEqual(a.out.map(withoutId).sort());
  });

  test('a topic keyed some other way is repartitioned by flow first, and gives the same transitions', async () => {
    const scattered = `${topic}-scattered`;
    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
    await (await conn.admin()).ensureTopics([{ topic: scattered, partitions: 3, config: { 'message.timestamp.after.max.ms': '9223372036854775807' } }]);
    const producer = await conn.producer();
    // Frames dealt round-robin, one per message, so both directions of most flows sit on different partitions.
    const frames = [...openCapture(new Uint8Array(readFileSync(sample)))];
    const messages = frames.map((f, i) => ({ topic: scattered, partition: i % 3, value: Buffer.from(f.data), headers: { 'ctflow-linktype': String(f.linkType), 'ctflow-ts-us': String(f.tsUs) } }));
    for (let i = 0; i < messages.length; i += 500) await producer.send(messages.slice(i, i + 500));
    await conn.close();
    const local = cli('events', sample);
    const r = await cliAsync('replay', '--topic', scattered, '--repartition', '--brokers', brokers, '--events-out', '-', '--out-prefix', `${scattered}.`, '--quiet');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    // Packets are put back in packet-time order across the input partitions, so every transition is the same.
    expect(r.out.length).toBe(local.out.length);
    expect(r.out.map(withoutId).sort()).toEqual(local.out.map(withoutId).sort());
  });

  test('malformed messages land in the dead-letter topic with their reason; the rest is processed', async () => {
    const mixed = `${topic}-mixed`;
    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
    const admin = await conn.admin();
    await admin.ensureTopics([{ topic: mixed, partitions: 1 }]);
    const producer = await conn.producer();
    const good = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udpDatagram({ sport: 1, dport: 2 }) });
    const batch = encodeFrameBatch([
      { tsUs: 1e15, linkType: 101, interfaceId: 0, data: good, origLength: good.length },
      { tsUs: 1e15 + 1, linkType: 101, interfaceId: 0, data: good.subarray(0, 10), origLength: 10 },
    ]);
    await producer.send([
      { topic: mixed, value: Buffer.from('not a frame batch') },
      { topic: mixed, value: batch },
      { topic: mixed, value: batch.subarray(0, batch.length - 3) },
      { topic: mixed, value: Buffer.from(good), headers: { 'ctflow-linktype': '101' }, timestampMs: 1e12 + 5 },
    ]);
    await conn.close();
    const r = await cliAsync('replay', '--topic', mixed, '--brokers', brokers, '--events-out', '-', '--json', '--out-prefix', `${mixed}.`, '--quiet');
    expect(r.code).toBe(0);
    const dead = await readTopic(`${mixed}.dead-letter`);
    expect(dead.map((m) => [m.headers['ctflow-source-offset'], m.headers['ctflow-source-frame']])).toEqual([['0', undefined], ['1', '1'], ['2', undefined]]);
    expect(dead[0].headers['ctflow-error']).toMatch(/neither a frame batch/);
    expect(dead[0].value?.toString()).toBe('not a frame batch');
    expect(dead[1].headers['ctflow-error']).toMatch(/truncat|short/i);
    expect(dead[2].headers['ctflow-error']).toMatch(/frame batch truncated/);
    // The good frames of messages 1 and 3: a NEW and then an UPDATE? No: same direction twice, so NEW only.
    const events = r.out.map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(['NEW']);
  });

  test('a consumer stopped mid-stream and restarted loses no flow record', async () => {
    const capture = sampleWithLateTraffic();
    const live = `${topic}-live`;
    // Rate-limited, so the topic holds many small record batches and a small fetch size takes a few messages at a time.
    const produced = await cliAsync('produce', capture, '--topic', live, '--partitions', '2', '--batch-frames', '64', '--rate', '4000', '--brokers', brokers, '--quiet');
    expect(produced.err).toEqual([]);
    expect(produced.code).toBe(0);
    // Short timeouts, so flows end within the capture and the safe commit point moves on.
    const knobs = ['tcp_timeout_established', 'tcp_timeout_time_wait', 'tcp_timeout_fin_wait', 'tcp_timeout_close_wait', 'tcp_timeout_last_ack', 'tcp_timeout_close', 'tcp_timeout_syn_sent', 'tcp_timeout_syn_recv', 'tcp_timeout_unacknowledged', 'tcp_timeout_max_retrans', 'udp_timeout', 'udp_timeout_stream', 'icmp_timeout', 'icmpv6_timeout', 'generic_timeout']
      .map((k) => `nf_conntrack_${k}=1`);
    // The reference: one uninterrupted replay.
    await cliAsync('replay', '--topic', live, '--brokers', brokers, '--out-prefix', `${live}.ref.`, '--quiet', ...knobs.flatMap((k) => ['--sysctl', k]));
    const flowKey = (m: InputMessage) => {
      const j = JSON.parse(m.value!.toString());
      return `${j.zone} ${j.proto} ${JSON.stringify(j.orig)}->${JSON.stringify(j.reply)} ${j.first}`;
    };
    const reference = new Set((await readTopic(`${live}.ref.flows`)).map(flowKey));
    expect(reference.size).toBeGreaterThan(400);

    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
    const ends = await (await conn.admin()).offsets(live);
    await conn.close();
    const total = ends.reduce((n, e) => n + Number(e.high), 0);
    const group = `ctflow-test-group-${run}`;
    const outputs = { transitions: `${live}.run.transitions`, flows: `${live}.run.flows`, deadLetter: `${live}.run.dead-letter` };
    const options = { kind: 'captured-traffic' as const, inputTopic: live, outputs, sysctl: makeSysctl(knobs), activeTimeoutUs: 0, mode: 'live' as const, groupId: group, maxInFlightBatches: 2, commitIntervalMs: 0, fetchMaxBytes: 8192 };
    // Stopped once far enough in that early flows have ended (so the commit point has moved), not so
    // far that it reached the end: told by the pipeline's own batch callback, since a timer polling
    // the counters can fire too late on a loaded machine (the pipeline shares this event loop).
    let reachedStop!: () => void;
    let atReach = 0;
    const reached = new Promise<void>((r) => (reachedStop = r));
    const observer: PipelineObserver = {
      packet: () => undefined,
      events: () => undefined,
      deadLetter: () => undefined,
      table: () => undefined,
      batch: () => {
        if (first.counters.messages >= Math.floor(total * 0.35) && atReach === 0) {
          atReach = first.counters.messages;
          reachedStop();
        }
      },
    };
    const first: StreamPipeline = new StreamPipeline(new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' }), { ...options, observer });
    await first.run();
    await reached;
    await first.stop();
    expect(atReach).toBeLessThan(total);
    expect(first.counters.messages).toBeLessThan(total); // it really stopped mid-stream
    const check = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });
    const committed = await (await check.admin()).groupOffsets(group, live);
    await check.close();
    // Something was committed, and not beyond what the first run had read.
    expect([...committed.values()].some((o) => Number(o) > 0)).toBe(true);
    for (const [p, o] of committed) expect(Number(o)).toBeLessThanOrEqual(Number(first.positions().get(p) ?? 0));
    const second = new StreamPipeline(new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' }), options);
    await second.run();
    const caughtUp = () => ends.every((e) => second.positions().get(e.partition) === e.high);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !caughtUp()) await new Promise((r) => setTimeout(r, 100));
    expect(caughtUp()).toBe(true);
    await second.stop();
    expect(second.counters.messages).toBeGreaterThan(0);
    const got = new Set((await readTopic(outputs.flows)).map(flowKey));
    const missing = [...reference].filter((k) => !got.has(k));
    expect(missing).toEqual([]);
  });
});

if (!brokers) {
  test.skip('Kafka pipeline: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}
