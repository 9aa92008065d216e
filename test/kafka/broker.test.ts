/**
 * A smoke test of the kafkajs release in node_modules against a real broker: the local one that
 * test/kafka/globalSetup.js starts (Kafka 4.x by default), or whatever KAFKA_BROKERS names.
 * kafkajs's last release predates Kafka 4, which dropped many old protocol versions, so this is
 * where we learn which of the calls ctflow relies on still work; docs/kafka.md keeps the results.
 * Every topic and group name carries a per-run suffix, so runs against a shared cluster never meet.
 */
import { randomBytes } from 'node:crypto';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { consumeUntil } from './privateBroker';
import type { Admin, Consumer, EachMessagePayload, IHeaders, Producer } from 'kafkajs';

const brokers = process.env.KAFKA_BROKERS;
const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const name = (what: string): string => `ctflow-smoke-${what}-${runId}`;

let kafka: Kafka;
let admin: Admin;
const createdTopics: string[] = [];
const openClients: Array<{ disconnect(): Promise<void> }> = [];

beforeAll(async () => {
  if (!brokers) {
    throw new Error('KAFKA_BROKERS is not set: run through jest (its globalSetup starts a broker) or point it at a cluster');
  }
  kafka = new Kafka({
    clientId: `ctflow-smoke-${runId}`,
    brokers: brokers.split(','),
    // kafkajs logs retried errors at ERROR level; the assertions below say what matters.
    logLevel: logLevel.NOTHING,
  });
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  for (const c of openClients.splice(0)) await c.disconnect().catch(() => undefined);
  if (admin) {
    // Leave a shared cluster as we found it.
    if (createdTopics.length) await admin.deleteTopics({ topics: createdTopics }).catch(() => undefined);
    await admin.disconnect();
  }
});

async function createTopic(what: string, numPartitions: number): Promise<string> {
  const topic = name(what);
  const created = await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  expect(created).toBe(true);
  createdTopics.push(topic);
  return topic;
}

async function connected<T extends { connect(): Promise<void>; disconnect(): Promise<void> }>(client: T): Promise<T> {
  await client.connect();
  openClients.push(client);
  return client;
}

async function release(client: { disconnect(): Promise<void> }): Promise<void> {
  const i = openClients.indexOf(client);
  if (i >= 0) openClients.splice(i, 1);
  await client.disconnect();
}

/** A consumer with a short fetch long-poll: disconnect() waits for the fetch in flight (5 s by default). */
function consumerIn(groupId: string): Promise<Consumer> {
  return connected(kafka.consumer({ groupId, maxWaitTimeInMs: 250 }));
}


/** Header values come back as Buffers (or arrays of them for a repeated key); compare as text. */
function headerText(headers: IHeaders | undefined, key: string): string | string[] | undefined {
  const v = headers?.[key];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map((x) => x.toString()) : v.toString();
}

/** Next offset to read per partition = last seen + 1, i.e. what a consumer commits. */
function nextOffsets(seen: EachMessagePayload[]): Map<number, string> {
  const next = new Map<number, string>();
  for (const { partition, message } of seen) {
    const n = BigInt(message.offset) + 1n;
    const prev = next.get(partition);
    if (prev === undefined || n > BigInt(prev)) next.set(partition, n.toString());
  }
  return next;
}

test('admin creates a topic with 4 partitions, each with a leader', async () => {
  const topic = await createTopic('admin', 4);
  expect(await admin.listTopics()).toContain(topic);
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = md.topics[0].partitions;
  expect(partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2, 3]);
  for (const p of partitions) {
    expect(p.partitionErrorCode).toBe(0);
    expect(p.leader).toBeGreaterThanOrEqual(0);
  }
  // Creating it again is reported as "already there", not as an error.
  expect(await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })).toBe(false);
});

test('a consumer group reads keyed messages back with their keys, timestamps and headers, and its commit shows in fetchOffsets', async () => {
  const topic = await createTopic('keyed', 4);
  const groupId = name('group');
  // Explicit timestamps an hour in the past, 1 s apart: clearly not the broker's append time.
  const base = Date.now() - 3_600_000;
  const sent = Array.from({ length: 24 }, (_, i) => ({
    key: `flow-${i % 8}`,
    value: JSON.stringify({ seq: i }),
    timestamp: String(base + i * 1000),
    headers: { 'ctflow-seq': String(i), 'ctflow-bytes': Buffer.from([0, 0xff, i]), 'ctflow-repeat': ['a', 'b'] } as IHeaders,
  }));

  const producer = await connected(kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner }));
  const meta = await producer.send({ topic, acks: -1, messages: sent });
  expect(meta.every((m) => m.errorCode === 0)).toBe(true);
  await release(producer);
  // Eight keys over four partitions: the default (murmur2) partitioner spreads them.
  expect(new Set(meta.map((m) => m.partition)).size).toBeGreaterThan(1);

  const consumer = await consumerIn(groupId);
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = await consumeUntil(consumer, (s) => s.length >= sent.length);
  expect(seen).toHaveLength(sent.length);

  const partitionOfKey = new Map<string, number>();
  const lastSeqOfPartition = new Map<number, number>();
  for (const { partition, message } of seen) {
    const seq = Number(headerText(message.headers, 'ctflow-seq'));
    const original = sent[seq];
    expect(message.key?.toString()).toBe(original.key);
    expect(message.value?.toString()).toBe(original.value);
    expect(message.timestamp).toBe(original.timestamp);
    expect(message.headers?.['ctflow-bytes']).toEqual(Buffer.from([0, 0xff, seq]));
    expect(headerText(message.headers, 'ctflow-repeat')).toEqual(['a', 'b']);
    // One key, one partition; and within a partition, the order it was sent in.
    expect(partitionOfKey.get(original.key) ?? partition).toBe(partition);
    partitionOfKey.set(original.key, partition);
    expect(seq).toBeGreaterThan(lastSeqOfPartition.get(partition) ?? -1);
    lastSeqOfPartition.set(partition, seq);
  }
  expect(new Set(seen.map((s) => Number(headerText(s.message.headers, 'ctflow-seq')))).size).toBe(sent.length);

  const next = nextOffsets(seen);
  await consumer.commitOffsets([...next].map(([partition, offset]) => ({ topic, partition, offset })));
  await release(consumer);

  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  const high = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  for (const { partition, offset } of committed[0].partitions) {
    // Partitions that got messages are committed up to their end; the others were never committed.
    expect(offset).toBe(next.get(partition) ?? '-1');
    if (next.has(partition)) expect(offset).toBe(high.get(partition));
  }
  expect(committed[0].partitions).toHaveLength(4);
});

test('the idempotent producer is accepted and appends each batch exactly once', async () => {
  const topic = await createTopic('idempotent', 1);
  const producer = await connected(kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }));
  const batch = (from: number) => Array.from({ length: 5 }, (_, i) => ({ key: 'k', value: String(from + i) }));
  const first = await producer.send({ topic, acks: -1, messages: batch(0) });
  const second = await producer.send({ topic, acks: -1, messages: batch(5) });
  await release(producer);
  expect(first[0].baseOffset).toBe('0');
  expect(second[0].baseOffset).toBe('5');
  expect((await admin.fetchTopicOffsets(topic))[0].high).toBe('10');
});

test('a transaction commits its messages and its sendOffsets; an aborted one stays invisible to read_committed consumers', async () => {
  const topic = await createTopic('tx', 1);
  const sourceGroup = name('tx-source');
  // Resolves the group's coordinator before the first transaction: kafkajs does not retry
  // TxnOffsetCommit on NOT_COORDINATOR_FOR_GROUP, which a coordinator still loading returns
  // (docs/kafka.md).
  expect((await admin.fetchOffsets({ groupId: sourceGroup, topics: [topic] }))[0].partitions[0].offset).toBe('-1');

  const producer = await connected(
    kafka.producer({ transactionalId: name('txid'), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }),
  );
  const committedTx = await producer.transaction();
  await committedTx.send({ topic, messages: ['c0', 'c1', 'c2'].map((key) => ({ key, value: 'committed' })) });
  await committedTx.sendOffsets({ consumerGroupId: sourceGroup, topics: [{ topic, partitions: [{ partition: 0, offset: '3' }] }] });
  await committedTx.commit();

  const abortedTx = await producer.transaction();
  await abortedTx.send({ topic, messages: ['a0', 'a1'].map((key) => ({ key, value: 'aborted' })) });
  await abortedTx.abort();
  await release(producer);

  // A plain message after both: once the consumer sees it, it has passed everything before.
  const plain = await connected(kafka.producer({ allowAutoTopicCreation: false }));
  await plain.send({ topic, messages: [{ key: 'end', value: 'plain' }] });
  await release(plain);

  // The offsets were committed as part of the transaction.
  expect((await admin.fetchOffsets({ groupId: sourceGroup, topics: [topic] }))[0].partitions[0].offset).toBe('3');
  // 3 committed + commit marker + 2 aborted + abort marker + 1 plain: both outcomes reached the log.
  expect((await admin.fetchTopicOffsets(topic))[0].high).toBe('8');

  const consumer = await consumerIn(name('tx-reader')); // read_committed, kafkajs's default
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = await consumeUntil(consumer, (s) => s.some((p) => p.message.key?.toString() === 'end'));
  await release(consumer);
  expect(seen.map((p) => p.message.key?.toString())).toEqual(['c0', 'c1', 'c2', 'end']);
});

test('the other calls the pipeline makes: gzip sendBatch, offsets by timestamp, seek, deleteGroups, deleteTopics', async () => {
  const topic = await createTopic('pipeline', 2);
  const groupId = name('pipeline-group');
  const base = Date.now() - 600_000;
  const producer: Producer = await connected(kafka.producer({ allowAutoTopicCreation: false }));
  await producer.sendBatch({
    compression: CompressionTypes.GZIP,
    topicMessages: [
      {
        topic,
        messages: Array.from({ length: 8 }, (_, i) => ({ partition: i % 2, value: `m${i}`, timestamp: String(base + i * 1000) })),
      },
    ],
  });
  await release(producer);

  // Partition 0 holds m0 m2 m4 m6 at offsets 0..3; the first at or after base+3 s is m4 (offset 2).
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, base + 3000);
  expect(byTime.find((p) => p.partition === 0)?.offset).toBe('2');
  expect(byTime.find((p) => p.partition === 1)?.offset).toBe('1');

  // Start at the end, then seek: only what the seeks point at is delivered.
  const consumer = await consumerIn(groupId);
  await consumer.subscribe({ topic, fromBeginning: false });
  const seenP = consumeUntil(consumer, (s) => s.length >= 6);
  consumer.seek({ topic, partition: 0, offset: '2' });
  consumer.seek({ topic, partition: 1, offset: '0' });
  const seen = await seenP;
  expect(seen.filter((s) => s.partition === 0).map((s) => s.message.value?.toString())).toEqual(['m4', 'm6']);
  expect(seen.filter((s) => s.partition === 1).map((s) => s.message.value?.toString())).toEqual(['m1', 'm3', 'm5', 'm7']);
  await consumer.commitOffsets([{ topic, partition: 0, offset: '4' }]);
  await release(consumer);

  expect((await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.find((p) => p.partition === 0)?.offset).toBe('4');
  expect(await admin.deleteGroups([groupId])).toEqual([expect.objectContaining({ groupId, errorCode: 0 })]);
  expect((await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.every((p) => p.offset === '-1')).toBe(true);

  await admin.deleteTopics({ topics: [topic] });
  createdTopics.splice(createdTopics.indexOf(topic), 1);
  expect(await admin.listTopics()).not.toContain(topic);
});
