/**
 * halt() / resume() of scripts/kafka/broker.js: a broker taken down and brought back as an operator
 * restarts one, with the same data dir, ports and cluster id. The ground the durability tests stand
 * on ("a broker restart mid-stream is survived and nothing is lost"): here the broker itself must
 * keep topics, messages (at the same offsets), committed group offsets and transaction state, and
 * kafkajs clients connected before the halt must carry on after it.
 *
 * This file starts its OWN broker (never the shared one of jest's global setup, which other test
 * files are using): it runs whenever java and mvn are there, whatever KAFKA_BROKERS says.
 * The timings it measures are printed (console.log) and written down in docs/kafka.md.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { consumeUntil, freePort, missingBrokerTool } from './privateBroker';
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, Producer } from 'kafkajs';

interface BrokerHandle {
  brokers: string;
  pid: number;
  dataDir: string;
  logFile: string;
  version: string;
  port: number;
  controllerPort: number;
  clusterId: string;
  watchPid: number | null;
  watchdogPid: number;
  startupMs: number;
  halted?: boolean;
  graceful?: boolean;
  haltMs?: number;
  resumeMs?: number;
}
interface BrokerModule {
  start(opts: { writeState: boolean; port?: number; watchPid?: number | null }): Promise<BrokerHandle>;
  halt(handle: BrokerHandle): Promise<BrokerHandle>;
  resume(handle: BrokerHandle, opts?: { portWaitMs?: number }): Promise<BrokerHandle>;
  stop(handle: BrokerHandle): Promise<{ stopped: boolean; graceful?: boolean; reason?: string }>;
}
// broker.js is plain CommonJS with no types (jest's global setup loads it as is).
const broker = require(join(__dirname, '..', '..', 'scripts', 'kafka', 'broker.js')) as BrokerModule;
// Alive and not a zombie: the watchdog and the guard are children of this worker until they exit.
const { pidAlive: alive } = require(join(__dirname, '..', '..', 'scripts', 'kafka', 'processAlive.js')) as { pidAlive(pid: number): boolean };

const missing = missingBrokerTool();
const describeIfTools = missing ? describe.skip : describe;

const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const name = (what: string): string => `ctflow-restart-${what}-${runId}`;
const DOWN_MS = 5000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));



/** Every message of `topic` as "partition:offset=value", read by a throwaway group. */
async function readAll(kafka: Kafka, topic: string, count: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: name(`reader-${randomBytes(2).toString('hex')}`), maxWaitTimeInMs: 250 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = await consumeUntil(consumer, (s) => s.length >= count);
    return seen.map((s) => `${s.partition}:${s.message.offset}=${s.message.value?.toString()}`).sort();
  } finally {
    await consumer.disconnect();
  }
}

describeIfTools(`a broker halted and resumed keeps its data, ports and cluster id${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let handle: BrokerHandle;
  let kafka: Kafka;
  let admin: Admin;
  const topic = name('data');
  const group = name('group');
  const sent: string[] = [];
  const open: Array<{ disconnect(): Promise<void> }> = [];

  beforeAll(async () => {
    handle = await broker.start({ writeState: false, port: await freePort() });
    kafka = new Kafka({ clientId: name('client'), brokers: [handle.brokers], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    open.push(admin);
  });

  afterAll(async () => {
    for (const c of open.splice(0)) await c.disconnect().catch(() => undefined);
    if (handle) await broker.stop(handle);
  });

  /** A kafkajs admin that fails at once instead of retrying, to see whether the broker answers. */
  async function answers(brokers: string): Promise<boolean> {
    const probe = new Kafka({ clientId: name('probe'), brokers: [brokers], logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } }).admin();
    try {
      await probe.connect();
      await probe.describeCluster();
      return true;
    } catch {
      return false;
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
  }

  test('topic, messages at their offsets, committed group offsets and the cluster id survive; a transaction commits after', async () => {
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })).toBe(true);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    // 10 messages into partition 0, 6 into partition 1, in two sends each.
    for (const [partition, count] of [
      [0, 10],
      [1, 6],
    ]) {
      for (const half of [0, 1]) {
        const messages = Array.from({ length: count / 2 }, (_, i) => ({ partition, value: `p${partition}-m${half * (count / 2) + i}` }));
        await producer.send({ topic, acks: -1, messages });
      }
    }
    await producer.disconnect();
    sent.push(...(await readAll(kafka, topic, 16)));
    expect(sent).toHaveLength(16);
    expect(sent).toContain('0:9=p0-m9');
    expect(sent).toContain('1:5=p1-m5');

    // A group that has read partition 0 to its end and partition 1 halfway.
    const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 250 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumeUntil(consumer, (s) => s.length >= 16);
    await consumer.commitOffsets([
      { topic, partition: 0, offset: '10' },
      { topic, partition: 1, offset: '3' },
    ]);
    await consumer.disconnect();
    const committedBefore = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions;
    const offsetsBefore = await admin.fetchTopicOffsets(topic);
    const clusterBefore = await admin.describeCluster();
    expect(clusterBefore.clusterId).toBe(handle.clusterId);

    const halted = await broker.halt(handle);
    handle = halted;
    expect(halted).toMatchObject({ halted: true, pid: 0, graceful: true, port: clusterBefore.brokers[0].port });
    expect(existsSync(join(halted.dataDir, 'kraft', 'meta.properties'))).toBe(true);
    // While halted, a guard watches jest's worker (the owner) in place of the broker's watchdog.
    expect(halted.watchPid).toBe(process.pid);
    expect(alive(halted.watchdogPid)).toBe(true);
    expect(await answers(halted.brokers)).toBe(false);
    await sleep(DOWN_MS);
    expect(await answers(halted.brokers)).toBe(false);

    const resumed = await broker.resume(halted);
    handle = resumed;
    console.log(`broker halt ${halted.haltMs} ms, down ${DOWN_MS} ms, resume ${resumed.resumeMs} ms (first start ${halted.startupMs} ms)`);
    expect(resumed.halted).toBeUndefined();
    expect(resumed.brokers).toBe(halted.brokers);
    expect(resumed.port).toBe(halted.port);
    expect(resumed.controllerPort).toBe(halted.controllerPort);
    expect(resumed.dataDir).toBe(halted.dataDir);
    expect(resumed.pid).toBeGreaterThan(0);
    expect(alive(resumed.pid)).toBe(true);
    expect(alive(resumed.watchdogPid)).toBe(true);
    expect(alive(halted.watchdogPid)).toBe(false); // the guard left

    // The admin connected before the halt is used again as it is: kafkajs reconnects.
    const clusterAfter = await admin.describeCluster();
    expect(clusterAfter.clusterId).toBe(clusterBefore.clusterId);
    expect(clusterAfter.brokers).toEqual(clusterBefore.brokers);
    expect(await admin.listTopics()).toContain(topic);
    expect(await admin.fetchTopicOffsets(topic)).toEqual(offsetsBefore);
    expect((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions).toEqual(committedBefore);
    expect(committedBefore).toEqual(
      expect.arrayContaining([expect.objectContaining({ partition: 0, offset: '10' }), expect.objectContaining({ partition: 1, offset: '3' })]),
    );
    expect(await readAll(kafka, topic, 16)).toEqual(sent);

    // The group carries on where it committed: only partition 1's last three messages are left.
    const again = kafka.consumer({ groupId: group, maxWaitTimeInMs: 250 });
    await again.connect();
    open.push(again);
    await again.subscribe({ topic, fromBeginning: true });
    const rest = await consumeUntil(again, (s) => s.length >= 3);
    await sleep(500); // anything beyond the three would show up here
    expect(rest.map((s) => `${s.partition}:${s.message.offset}`)).toEqual(['1:3', '1:4', '1:5']);
    await again.disconnect();

    // Transactions after the restart: the transaction coordinator reloaded its state.
    const source = name('tx-source');
    // Resolves the group coordinator first: kafkajs does not retry TxnOffsetCommit on
    // NOT_COORDINATOR_FOR_GROUP (docs/kafka.md).
    expect((await admin.fetchOffsets({ groupId: source, topics: [topic] }))[0].partitions[0].offset).toBe('-1');
    const txProducer = kafka.producer({ transactionalId: name('txid'), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await txProducer.connect();
    open.push(txProducer);
    const tx = await txProducer.transaction();
    await tx.send({ topic, messages: [{ partition: 0, value: 'tx-after-restart' }] });
    await tx.sendOffsets({ consumerGroupId: source, topics: [{ topic, partitions: [{ partition: 0, offset: '11' }] }] });
    await tx.commit();
    await txProducer.disconnect();
    // One message plus the commit marker. kafkajs's admin lists offsets read_committed, so "high"
    // is the last stable offset: 10 until the broker has written the marker, just after commit().
    const until = Date.now() + 10_000;
    let high = '';
    while ((high = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 0)?.high ?? '') !== '12' && Date.now() < until) await sleep(100);
    expect(high).toBe('12');
    expect((await admin.fetchOffsets({ groupId: source, topics: [topic] }))[0].partitions.find((p) => p.partition === 0)?.offset).toBe('11');
  });

  test('a producer and a consumer connected before the halt carry on after the resume, by themselves', async () => {
    const live = name('live');
    expect(await admin.createTopics({ topics: [{ topic: live, numPartitions: 2 }], waitForLeaders: true })).toBe(true);
    const producer: Producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    open.push(producer);
    // A member that crashed while the broker was down rejoins as a new member, and the group waits
    // for the old one's session to time out first: kafkajs's default of 30 s made this test wait
    // 30 s after every resume (docs/kafka.md). 8 s is above the broker's 6 s minimum.
    const sessionTimeout = 8000;
    const consumer = kafka.consumer({ groupId: name('live-group'), maxWaitTimeInMs: 250, sessionTimeout });
    await consumer.connect();
    open.push(consumer);
    await consumer.subscribe({ topic: live, fromBeginning: true });
    const received = new Map<string, number>();
    const crashes: string[] = [];
    let haltedAt = 0;
    let readyAt = 0;
    const since = (): string => (readyAt ? `${Date.now() - readyAt} ms after ready` : haltedAt ? `${Date.now() - haltedAt} ms after the halt` : 'before the halt');
    consumer.on(consumer.events.CRASH, (e) => crashes.push(`${since()}: ${e.payload.error.name}: ${e.payload.error.message} (restart: ${e.payload.restart})`));
    const joins: string[] = [];
    consumer.on(consumer.events.GROUP_JOIN, () => joins.push(since()));
    void consumer.run({
      eachMessage: async ({ message }) => {
        received.set(message.value?.toString() ?? '', Date.now());
      },
    });
    const waitFor = async (value: string, timeoutMs: number): Promise<number> => {
      const until = Date.now() + timeoutMs;
      while (!received.has(value)) {
        if (Date.now() > until) throw new Error(`the consumer did not get "${value}" within ${timeoutMs} ms (crashes: ${crashes.join('; ') || 'none'})`);
        await sleep(50);
      }
      return received.get(value) ?? 0;
    };
    await producer.send({ topic: live, acks: -1, messages: [{ partition: 0, value: 'before' }] });
    await waitFor('before', 30_000);

    const halted = await broker.halt(handle);
    handle = halted;
    haltedAt = Date.now();
    // A send issued while the broker is down: kafkajs retries it (5 retries, 300 ms doubling).
    let duringOutcome = 'pending';
    let duringSettled = 0;
    const during = producer.send({ topic: live, acks: -1, messages: [{ partition: 1, value: 'during' }] }).then(
      () => {
        duringOutcome = 'delivered';
        duringSettled = Date.now();
      },
      (err: Error) => {
        duringOutcome = `failed: ${err.name}: ${err.message}`;
        duringSettled = Date.now();
      },
    );
    await sleep(DOWN_MS);
    const resumed = await broker.resume(halted);
    handle = resumed;
    readyAt = Date.now();

    const t0 = Date.now();
    await producer.send({ topic: live, acks: -1, messages: [{ partition: 0, value: 'after' }] });
    const sendMs = Date.now() - t0;
    const consumedAfterMs = (await waitFor('after', 60_000)) - readyAt;
    await during;
    console.log(
      `kafkajs across a restart (down ${readyAt - haltedAt} ms incl. ${resumed.resumeMs} ms resume): ` +
        `first send after resume ${sendMs} ms; consumer got it ${consumedAfterMs} ms after the broker was ready; ` +
        `send issued while down: ${duringOutcome}${duringSettled ? ` ${duringSettled - readyAt} ms after ready` : ''}; consumer crashes: ${crashes.join('; ') || 'none'}; group joins: ${joins.join(', ')}`,
    );
    expect(sendMs).toBeLessThan(30_000);
    expect(consumedAfterMs).toBeLessThan(sessionTimeout + 15_000);
    if (duringOutcome === 'delivered') await waitFor('during', 30_000);
    await consumer.disconnect();
    await producer.disconnect();
  });

  test('resume() on a port someone else took fails with PORT_TAKEN naming the holder, and the data stays for a later resume', async () => {
    const halted = await broker.halt(handle);
    handle = halted;
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen({ host: '127.0.0.1', port: halted.port }, r));
    try {
      await expect(broker.resume(halted, { portWaitMs: 500 })).rejects.toMatchObject({
        code: 'PORT_TAKEN',
        message: expect.stringMatching(new RegExp(`broker port 127\\.0\\.0\\.1:${halted.port} \\(held by pid ${process.pid} `)),
      });
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    expect(existsSync(join(halted.dataDir, 'kraft', 'meta.properties'))).toBe(true);
    expect(alive(halted.watchdogPid)).toBe(true);
    handle = await broker.resume(halted);
    expect(await admin.fetchTopicOffsets(topic)).toEqual(
      expect.arrayContaining([expect.objectContaining({ partition: 0, high: '12' }), expect.objectContaining({ partition: 1, high: '6' })]),
    );
  });

  test('stop() on the resumed handle stops the broker and deletes its data', async () => {
    for (const c of open.splice(0)) await c.disconnect().catch(() => undefined);
    const last = handle;
    const r = await broker.stop(last);
    handle = undefined as unknown as BrokerHandle;
    expect(r).toMatchObject({ stopped: true, graceful: true });
    expect(existsSync(last.dataDir)).toBe(false);
    expect(alive(last.pid)).toBe(false);
    await sleep(200);
    expect(alive(last.watchdogPid)).toBe(false);
  });
});

describeIfTools(`a halted or resumed broker does not outlive its owner${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const started: BrokerHandle[] = [];
  afterAll(async () => {
    for (const h of started) await broker.stop(h).catch(() => undefined);
  });

  /** A stand-in for jest's pid: a process this test can kill. */
  const owner = () => spawn('sleep', ['600'], { stdio: 'ignore' });

  async function gone(what: () => boolean, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    while (!what()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not gone within ${timeoutMs} ms`);
      await sleep(100);
    }
    return Date.now() - t0;
  }

  test("the halt's guard deletes the data when the owner dies while the broker is down", async () => {
    const o = owner();
    const h = await broker.start({ writeState: false, port: await freePort(), watchPid: o.pid });
    started.push(h);
    const halted = await broker.halt(h);
    expect(alive(halted.watchdogPid)).toBe(true);
    o.kill('SIGKILL');
    await gone(() => !existsSync(halted.dataDir), 5000);
    await gone(() => !alive(halted.watchdogPid), 2000);
  });

  test("the resumed broker's new watchdog watches the same owner: java stops and the data goes when it dies", async () => {
    const o = owner();
    const h = await broker.start({ writeState: false, port: await freePort(), watchPid: o.pid });
    started.push(h);
    const resumed = await broker.resume(await broker.halt(h));
    started.push(resumed);
    expect(resumed.watchPid).toBe(o.pid);
    o.kill('SIGKILL');
    await gone(() => !alive(resumed.pid), 20_000);
    await gone(() => !existsSync(resumed.dataDir), 5000);
    await gone(() => !alive(resumed.watchdogPid), 2000);
  });
});
