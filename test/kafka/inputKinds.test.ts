/**
 * The other input kinds and the live mode's own behaviour, against the real broker: packet
 * events (JSON), flow events from hosts (conntrack -E text), an idle partition's clock following
 * wall time, backpressure, and `ctflow run` draining on SIGTERM.
 */
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mainAsync } from '../../main';
import { brokers, cliAsync, connect, readTopic, runId } from './helpers';
import type { OutputMessage } from '../../kafka/client';
import { StreamPipeline } from '../../cli/streamPipeline';
import { makeSysctl } from '../../processors/conntrack/sysctl';

const run = runId;

async function publish(topic: string, partitions: number, messages: Omit<OutputMessage, 'topic'>[]): Promise<void> {
  const conn = connect();
  try {
    await (await conn.admin()).ensureTopics([{ topic, partitions }]);
    await (await conn.producer()).send(messages.map((m) => ({ ...m, topic })));
  } finally {
    await conn.close();
  }
}

const tcp = (ts: number, from: 'c' | 's', flags: string, seq: number, ack: number) => ({
  ts,
  src: from === 'c' ? '10.1.0.1' : '10.1.0.2',
  dst: from === 'c' ? '10.1.0.2' : '10.1.0.1',
  proto: 'tcp',
  length: 40,
  sport: from === 'c' ? 40000 : 80,
  dport: from === 'c' ? 80 : 40000,
  tcp: { flags, seq, ack, window: 65535 },
});

/** A live pipeline over a packet-events topic, its outputs named after it. */
const liveOptions = (topic: string) => ({
  kind: 'packet-events' as const,
  inputTopic: topic,
  outputs: { transitions: `${topic}.transitions`, flows: `${topic}.flows`, deadLetter: `${topic}.dead-letter` },
  sysctl: makeSysctl(),
  activeTimeoutUs: 0,
  mode: 'live' as const,
  groupId: `${topic}-group`,
});

const describeKafka = brokers ? describe : describe.skip;

describeKafka('Kafka input kinds and live mode (real broker)', () => {
  test('packet events (JSON) go through the engine like captured frames; a bad one is a dead letter', async () => {
    const topic = `ctflow-test-pev-${run}`;
    const events = [tcp(1e9, 'c', 'S', 100, 0), tcp(1e9 + 0.001, 's', 'SA', 500, 101), tcp(1e9 + 0.002, 'c', '.', 101, 501)];
    await publish(topic, 1, [...events.map((e) => ({ value: JSON.stringify(e) })), { value: JSON.stringify({ ...events[0], proto: 'tcp', tcp: undefined }) }]);
    const r = await cliAsync('replay', '--topic', topic, '--kind', 'packet-events', '--brokers', brokers, '--events-out', '-', '--json', '--out-prefix', `${topic}.`, '--quiet');
    expect(r.err).toEqual([]);
    const out = r.out.map((l) => JSON.parse(l));
    expect(out.map((e) => [e.type, e.state])).toEqual([['NEW', 'SYN_SENT'], ['UPDATE', 'SYN_RECV'], ['UPDATE', 'ESTABLISHED']]);
    const dead = await readTopic(`${topic}.dead-letter`);
    expect(dead).toHaveLength(1);
    expect(dead[0].headers['ctflow-error']).toMatch(/tcp object/);
  });

  test('flow events from two hosts build one fleet table, each host in its own zone, with a record per DESTROY', async () => {
    const topic = `ctflow-test-fev-${run}`;
    const lines = readFileSync(join(__dirname, '..', 'fixtures', 'flowEvents', 'events.txt'), 'utf8').trim().split('\n');
    const destroys = lines.filter((l) => l.includes('[DESTROY]')).length;
    expect(destroys).toBeGreaterThan(0);
    await publish(topic, 2, [
      ...lines.map((l) => ({ key: 'host-a', value: l })),
      ...lines.map((l) => ({ key: 'host-b', value: l })),
      { key: 'host-a', value: '[NEW] this is not conntrack output' },
    ]);
    const r = await cliAsync('replay', '--topic', topic, '--kind', 'flow-events', '--brokers', brokers, '--events-out', '-', '--json', '--out-prefix', `${topic}.`, '--quiet');
    expect(r.code).toBe(0);
    const out = r.out.map((l) => JSON.parse(l));
    const zones = new Set(out.map((e) => e.zone));
    expect(zones.size).toBe(2);
    expect(zones.has(0)).toBe(false);
    const records = await readTopic(`${topic}.flows`);
    expect(records).toHaveLength(2 * destroys);
    expect(records.every((m) => JSON.parse(m.value!.toString()).record === 'end')).toBe(true);
    const dead = await readTopic(`${topic}.dead-letter`);
    expect(dead.map((m) => m.value!.toString())).toEqual(['[NEW] this is not conntrack output']);
  });

  test('live mode: an idle partition follows wall time, so its timeouts fire without new packets', async () => {
    const topic = `ctflow-test-idle-${run}`;
    const now = Date.now() / 1000;
    await publish(topic, 1, [{ value: JSON.stringify({ ts: now, src: '10.2.0.1', dst: '10.2.0.2', proto: 'udp', length: 40, sport: 5, dport: 6 }) }]);
    const outputs = { transitions: `${topic}.transitions`, flows: `${topic}.flows`, deadLetter: `${topic}.dead-letter` };
    const seen: string[] = [];
    const p = new StreamPipeline(connect(), {
      kind: 'packet-events',
      inputTopic: topic,
      outputs,
      sysctl: makeSysctl(['nf_conntrack_udp_timeout=1']),
      activeTimeoutUs: 0,
      mode: 'live',
      groupId: `ctflow-test-idle-${run}`,
      idleMs: 200,
      onEvents: (events) => events.forEach((e) => seen.push(e.type)),
    });
    await p.run();
    const deadline = Date.now() + 15_000;
    while (!seen.includes('DESTROY') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await p.stop();
    expect(seen).toEqual(['NEW', 'DESTROY']);
  });

  test('backpressure: past the in-flight bound the consumer pauses, and everything is still processed', async () => {
    const topic = `ctflow-test-bp-${run}`;
    const messages = Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: JSON.stringify({ tsUs: 1e15 + i, src: `10.3.${i >> 8}.${i & 255}`, dst: '10.3.255.1', proto: 'udp', length: 40, sport: 7, dport: 9 }) }));
    await publish(topic, 4, messages);
    const p = new StreamPipeline(connect(), {
      kind: 'packet-events',
      inputTopic: topic,
      outputs: { transitions: `${topic}.transitions`, flows: `${topic}.flows`, deadLetter: `${topic}.dead-letter` },
      sysctl: makeSysctl(),
      activeTimeoutUs: 0,
      mode: 'replay',
      groupId: '',
      maxInFlightBatches: 1,
    });
    await p.run();
    expect(p.counters.packets).toBe(400);
    expect(p.counters.pauses).toBeGreaterThan(0);
  });

  test('backpressure by bytes: past the in-flight byte bound the consumer pauses though few batches are out', async () => {
    const topic = `ctflow-test-bp-bytes-${run}`;
    // ~150 bytes a message, 100 a partition: a fetched batch holds up to ~15 KB, past the 4 KiB bound by itself.
    const messages = Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: JSON.stringify({ tsUs: 1e15 + i, src: `10.4.${i >> 8}.${i & 255}`, dst: '10.4.255.1', proto: 'udp', length: 40, sport: 7, dport: 9 }) }));
    await publish(topic, 4, messages);
    const options = {
      kind: 'packet-events' as const,
      inputTopic: topic,
      outputs: { transitions: `${topic}.transitions`, flows: `${topic}.flows`, deadLetter: `${topic}.dead-letter` },
      sysctl: makeSysctl(),
      activeTimeoutUs: 0,
      mode: 'replay' as const,
      groupId: '',
      maxInFlightBatches: 1000,
    };
    const bounded = new StreamPipeline(connect(), { ...options, maxInFlightBytes: 4096, fetchMaxBytes: 1 << 20 });
    await bounded.run();
    expect(bounded.counters.packets).toBe(400);
    // The same batches under a byte bound they never reach: no pause, so the pauses above came from the bytes.
    const unbounded = new StreamPipeline(connect(), { ...options, maxInFlightBytes: 1 << 30, fetchMaxBytes: 1 << 20 });
    await unbounded.run();
    expect(unbounded.counters.packets).toBe(400);
    expect(unbounded.counters.pauses).toBe(0);
    expect(bounded.counters.pauses).toBeGreaterThan(0);
  });

  test('a pipeline that cannot start closes its Kafka clients (an idle one would keep the process alive for 10 minutes)', async () => {
    const conn = connect();
    const close = jest.spyOn(conn, 'close');
    const topic = `ctflow-test-no-such-input-${run}`;
    const p = new StreamPipeline(conn, liveOptions(topic));
    await expect(p.run()).rejects.toThrow(/input topic '.*' does not exist/);
    expect(close).toHaveBeenCalled();
  });

  test('fetchMinBytes and fetchMaxWaitMs reach the broker: a trickle of input comes in fewer, larger batches', async () => {
    /** Live pipeline over a 1-partition topic fed one packet event every 100 ms; returns its batch count. */
    const trickle = async (name: string, fetch: { fetchMinBytes?: number; fetchMaxWaitMs?: number }): Promise<number> => {
      const topic = `ctflow-test-fetch-${name}-${run}`;
      await publish(topic, 1, []);
      const p = new StreamPipeline(connect(), { ...liveOptions(topic), ...fetch });
      await p.run();
      const conn = connect();
      try {
        const producer = await conn.producer();
        for (let i = 0; i < 30; i++) {
          const e = { tsUs: 1e15 + i * 1e5, src: '10.6.0.1', dst: '10.6.0.2', proto: 'udp', length: 40, sport: 1000 + i, dport: 53 };
          await producer.send([{ topic, partition: 0, value: JSON.stringify(e) }]);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await conn.close();
      }
      for (const deadline = Date.now() + 20_000; p.counters.packets < 30 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      await p.stop();
      expect(p.counters.packets).toBe(30);
      return p.counters.batches;
    };
    // Held until 1 MiB or 1 s: about one batch a second of the 3 s trickle.
    const held = await trickle('held', { fetchMinBytes: 1 << 20, fetchMaxWaitMs: 1000 });
    const prompt = await trickle('prompt', {});
    expect(held).toBeLessThanOrEqual(8);
    expect(prompt).toBeGreaterThan(2 * held);
  }, 120_000);

  test('ctflow run consumes until SIGTERM, then drains, commits and returns', async () => {
    const topic = `ctflow-test-run-${run}`;
    await publish(topic, 1, [tcp(1e9, 'c', 'S', 1, 0), tcp(1e9 + 0.001, 's', 'SA', 9, 2)].map((e) => ({ value: JSON.stringify(e) })));
    const dir = mkdtempSync(join(tmpdir(), 'ctflow-run-'));
    const config = join(dir, 'ctflow.yaml');
    writeFileSync(config, `input:\n  topic: ${topic}\n  kind: packet-events\n  group: g-${run}\noutputs:\n  transitions: ${topic}.transitions\n  flows: ${topic}.flows\n  deadLetter: ${topic}.dead-letter\ntelemetry:\n  newSeriesHoldSeconds: 1\n`);
    const out: string[] = [];
    const err: string[] = [];
    const done = mainAsync(['run', '--config', config, '--brokers', brokers, '--events-out', '-', '--json', '--http', '127.0.0.1:0'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    const deadline = Date.now() + 20_000;
    while (out.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The live API and /metrics are served while it runs, with the pipeline's own figures.
    const url = /serving (http:\/\/\S+)/.exec(err.join('\n'))?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    // New counter series show 0 for newSeriesHoldSeconds first, so rate() counts their first growth.
    const first = await (await fetch(`${url}/metrics`)).text();
    expect(first).toMatch(/^ctflow_packets_total\{zone="0",proto="tcp",ctstate="NEW"\} 0$/m);
    await new Promise((r) => setTimeout(r, 1100));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^ctflow_packets_total\{zone="0",proto="tcp",ctstate="NEW"\} 1$/m);
    expect(metrics).toMatch(/^ctflow_packets_total\{zone="0",proto="tcp",ctstate="ESTABLISHED"\} 1$/m);
    expect(metrics).toMatch(/^ctflow_consumer_lag_messages\{partition="0"\} 0$/m);
    const flows = (await (await fetch(`${url}/flows`)).json()) as { flows: Array<{ state: string }> };
    expect(flows.flows.map((f) => f.state)).toEqual(['SYN_RECV']);
    process.emit('SIGTERM');
    expect(await done).toBe(0);
    expect(out.map((l) => JSON.parse(l).state)).toEqual(['SYN_SENT', 'SYN_RECV']);
    expect(err.some((l) => /SIGTERM: draining/.test(l))).toBe(true);
    expect(err.some((l) => /offsets committed/.test(l))).toBe(true);
    const conn = connect();
    const committed = await (await conn.admin()).groupOffsets(`g-${run}`, topic);
    await conn.close();
    // The flow is still open (SYN_RECV), so the commit stays at its first message.
    expect(committed.get(0)).toBe('0');
  });
});

if (!brokers) {
  test.skip('Kafka input kinds: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}
