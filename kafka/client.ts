/**
 * The only module that imports kafkajs. kafkajs is in maintenance mode, so everything ctflow
 * needs from Kafka goes through the narrow surface below (connection settings, topic admin, a
 * batch producer, a consumer group, a group-less reader) in ctflow's own types; replacing the
 * client means rewriting this file and nothing else (kafkajsProduceSeam.ts and the produce request
 * encoder it installs, produceRequest.ts, exist only for kafkajs and would go with it).
 * docs/kafka.md lists what kafkajs does and does not do against Kafka 4.x.
 */
import { readFileSync } from 'node:fs';
// First, before kafkajs: ctflow's produce request encoding goes into kafkajs, and one of its
// modules is replaced in node's module cache before kafkajs loads it (kafkajsProduceSeam.ts).
import { acceptsChunkMessages } from './kafkajsProduceSeam';
import { ChunkMessage, kafkaTimestamp } from './chunkMessage';
import { CompressionTypes, ConfigResourceTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Admin, Consumer, KafkaConfig, Message, Producer, SASLOptions } from 'kafkajs';

export interface KafkaTls {
  /** PEM files; a CA alone verifies the broker, cert+key add client authentication. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  rejectUnauthorized?: boolean;
}

export interface KafkaSasl {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  /** Taken from the environment by the config loader, never from a file in the repo. */
  password: string;
}

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  tls?: KafkaTls | boolean;
  sasl?: KafkaSasl;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Where the client's warnings and errors go (default: dropped). */
  log?: (level: 'error' | 'warn', message: string) => void;
}

/**
 * kafkajs's error types for a partition without a leader yet (after a broker restart). Not all it
 * calls retriable: an unknown topic is too, and should fail at once.
 */
const LEADERLESS: ReadonlySet<string> = new Set(['LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'REPLICA_NOT_AVAILABLE']);

/** A consumed message, in ctflow's terms. Offsets stay strings: Kafka's are 64-bit. */
export interface InputMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Message timestamp in ms. */
  timestampMs: number;
  headers: Record<string, string | undefined>;
}

export interface InputBatch {
  topic: string;
  partition: number;
  messages: InputMessage[];
  /** The partition's high watermark when the batch was fetched. */
  highWatermark: string;
  /** Tells the group this member is alive (call during long waits, such as a paced replay). */
  heartbeat(): Promise<void>;
  /** True once a seek of its partition is pending: the batch was fetched from a position given up. */
  isStale(): boolean;
}

export { ChunkMessage };

/** A message for an output topic. A ChunkMessage (chunkMessage.ts) is one too, its value a range of a shared chunk. */
export interface OutputMessage {
  topic: string;
  value: Buffer | string | null;
  key?: Buffer | string | null;
  partition?: number;
  timestampMs?: number;
  headers?: Record<string, string>;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  config?: Record<string, string>;
}

export class KafkaError extends Error {}

/**
 * Connections waiting for topics they just created (TopicAdmin.waitForLeaders), by settings. Until
 * a new partition's log is open its leader answers "not the leader" or "does not host" and kafkajs
 * retries, logging each answer as an error; that is the wait working, not a failure (a wait that
 * runs out says so itself).
 */
const settling = new WeakMap<KafkaSettings, number>();
const NOT_OPEN_YET = /not the leader for that topic-partition|no leader for this topic-partition|does not host this topic-partition/;

function kafkaConfig(s: KafkaSettings): KafkaConfig {
  if (s.brokers.length === 0) throw new KafkaError('no Kafka brokers given (--brokers or KAFKA_BROKERS)');
  const cfg: KafkaConfig = {
    brokers: s.brokers,
    clientId: s.clientId,
    connectionTimeout: s.connectionTimeoutMs ?? 5000,
    requestTimeout: s.requestTimeoutMs ?? 30000,
    // A broker that is down should fail the command in seconds, not after kafkajs's long default backoff.
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 3000 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      // kafkajs warns that an idempotent producer with limited retries "may invalidate EoS": not
      // for ctflow, which aborts a failed transaction and restores the partition (cli/stateStore.ts).
      if (entry.log.message.startsWith('Limiting retries for the idempotent producer')) return;
      // A transaction begun right after the previous one committed meets the coordinator still
      // writing its markers (CONCURRENT_TRANSACTIONS); kafkajs retries it, and logs each try as an error.
      if (entry.log.message.includes('another concurrent operation on the same transaction')) return;
      if ((settling.get(s) ?? 0) > 0 && typeof entry.log.error === 'string' && NOT_OPEN_YET.test(entry.log.error)) return;
      const level = entry.level === logLevel.ERROR ? 'error' : entry.level === logLevel.WARN ? 'warn' : undefined;
      // kafkajs puts the broker's answer beside the message ("Response ListOffsets(...)" alone
      // does not say what went wrong): the line carries it.
      const cause = typeof entry.log.error === 'string' && !entry.log.message.includes(entry.log.error) ? `: ${entry.log.error}` : '';
      if (level && s.log) s.log(level, `kafka ${entry.namespace}: ${entry.log.message}${cause}`);
    },
  };
  if (s.tls) {
    const t = s.tls === true ? {} : s.tls;
    const read = (f?: string) => (f ? readFileSync(f, 'utf8') : undefined);
    cfg.ssl = t.caFile || t.certFile || t.keyFile || t.rejectUnauthorized === false
      ? { ca: read(t.caFile), cert: read(t.certFile), key: read(t.keyFile), rejectUnauthorized: t.rejectUnauthorized ?? true }
      : true;
  }
  if (s.sasl) cfg.sasl = { mechanism: s.sasl.mechanism, username: s.sasl.username, password: s.sasl.password } as SASLOptions;
  return cfg;
}

/** Turns kafkajs's errors into one line that names the broker list and the cause. */
function explain(s: KafkaSettings, what: string, err: unknown): KafkaError {
  const e = err as Error & { cause?: Error };
  const cause = e.cause?.message ?? e.message;
  return new KafkaError(`${what} (brokers ${s.brokers.join(',')}): ${cause}`);
}

function toInput(topic: string, partition: number, m: { offset: string; key: Buffer | null; value: Buffer | null; timestamp: string; headers?: Record<string, unknown> }): InputMessage {
  const headers: Record<string, string | undefined> = {};
  // for-in, not Object.entries: this runs once per consumed message, and most carry no headers.
  const h = m.headers;
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, timestampMs: Number(m.timestamp), headers };
}

export class TopicAdmin {
  constructor(private readonly admin: Admin, private readonly s: KafkaSettings) {}

  /** Creates the topics that do not exist; existing ones are left as they are. */
  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    const existing = new Set(await this.admin.listTopics());
    const missing = specs.filter((t) => !existing.has(t.topic));
    if (missing.length === 0) return;
    try {
      await this.admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.partitions,
          replicationFactor: -1,
          configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Another client may have created one of them meanwhile: only a topic still missing is a failure.
      const now = new Set(await this.admin.listTopics());
      if (missing.some((t) => !now.has(t.topic))) throw explain(this.s, `cannot create topics ${missing.map((t) => t.topic).join(', ')}`, err);
    }
    await this.waitForLeaders(missing.map((t) => t.topic));
  }

  /**
   * Waits until every partition of the topics has a leader that answers. kafkajs's own wait fails
   * at times with "does not host this topic-partition" while a new topic's metadata is still
   * spreading, so poll.
   */
  private async waitForLeaders(topics: string[]): Promise<void> {
    settling.set(this.s, (settling.get(this.s) ?? 0) + 1);
    try {
      await this.pollLeaders(topics);
    } finally {
      settling.set(this.s, settling.get(this.s)! - 1);
    }
  }

  private async pollLeaders(topics: string[]): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const md = await this.admin.fetchTopicMetadata({ topics });
        if (md.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
          // A leader named in the metadata may not have its log open yet: the first produce then
          // fails for that partition, and kafkajs retries the whole request, writing the other
          // partitions' messages twice (seen on fresh topics). Listing offsets needs every
          // partition's leader to answer, so once it works, producing does too.
          for (const topic of topics) await this.admin.fetchTopicOffsets(topic);
          return;
        }
      } catch (err) {
        if (Date.now() > deadline) throw explain(this.s, `topics ${topics.join(', ')} have no leader`, err);
      }
      if (Date.now() > deadline) throw new KafkaError(`topics ${topics.join(', ')} have no leader after 30 s (brokers ${this.s.brokers.join(',')})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async topicExists(topic: string): Promise<boolean> {
    return (await this.admin.listTopics()).includes(topic);
  }

  async partitionCount(topic: string): Promise<number> {
    try {
      const md = await this.admin.fetchTopicMetadata({ topics: [topic] });
      return md.topics[0].partitions.length;
    } catch (err) {
      throw explain(this.s, `cannot read topic '${topic}'`, err);
    }
  }

  /**
   * [low, high) offsets of each partition: what a reader from the beginning will see. Right after
   * a broker restart a partition's leader may not be elected yet (NOT_LEADER_OR_FOLLOWER,
   * LEADER_NOT_AVAILABLE), which kafkajs's admin passes on: retried here for up to 30 s.
   */
  async offsets(topic: string): Promise<Array<{ partition: number; low: string; high: string }>> {
    const r = await this.whileRetriable(`cannot read the offsets of topic '${topic}'`, () => this.admin.fetchTopicOffsets(topic), LEADERLESS);
    return r.map((p) => ({ partition: p.partition, low: p.low, high: p.high })).sort((a, b) => a.partition - b.partition);
  }

  /** The first offset of each partition at or after a time (Kafka's ListOffsets by timestamp). */
  async offsetsAt(topic: string, timestampMs: number): Promise<Map<number, string>> {
    const r = await this.admin.fetchTopicOffsetsByTimestamp(topic, timestampMs);
    return new Map(r.map((p) => [p.partition, p.offset]));
  }

  /**
   * The group's committed offsets. kafkajs's admin does not retry while the group's coordinator is
   * loading or moving (right after a broker restart): retried here for up to 30 s.
   */
  async groupOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    // kafkajs marks GROUP_LOAD_IN_PROGRESS, GROUP_COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR_FOR_GROUP retriable.
    const r = await this.whileRetriable(`cannot read the offsets of group '${groupId}'`, () => this.admin.fetchOffsets({ groupId, topics: [topic] }));
    return new Map(r[0].partitions.map((p) => [p.partition, p.offset]));
  }

  /** Runs `op` again every 200 ms while it fails with an error kafkajs marks retriable (of `types`, when given), for up to 30 s. */
  private async whileRetriable<T>(what: string, op: () => Promise<T>, types?: ReadonlySet<string>): Promise<T> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await op();
      } catch (err) {
        const e = err as { retriable?: boolean; type?: string };
        const again = e.retriable === true && (types === undefined || types.has(e.type ?? ''));
        if (!again || Date.now() > deadline) throw explain(this.s, what, err);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Settings of a topic as the broker applies them (its own value, else the broker's default),
   * by name; a name the broker does not report is absent. The state checkpoint reads the
   * changelog's delete.retention.ms with it (cli/stateStore.ts).
   */
  async topicConfig(topic: string, names: string[]): Promise<Map<string, string>> {
    try {
      const r = await this.admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }], includeSynonyms: false });
      return new Map((r.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
    } catch (err) {
      throw explain(this.s, `cannot read the settings of topic '${topic}'`, err);
    }
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups([groupId]).catch(() => undefined);
  }

  async deleteTopics(topics: string[]): Promise<void> {
    await this.admin.deleteTopics({ topics }).catch(() => undefined);
  }
}

/** Bytes of messages per produce request, well under Kafka's default 1 MiB batch limit. */
const SEND_PART_BYTES = 512 * 1024;

export class OutputProducer {
  constructor(private readonly producer: Producer, private readonly s: KafkaSettings) {}

  /** Sends and resolves once every message is acknowledged by all in-sync replicas (acks=-1); large sends go out in parts, in order. */
  async send(messages: OutputMessage[], compress = false): Promise<void> {
    for (const part of sendParts(messages)) {
      try {
        await this.producer.sendBatch(batchOf(part, compress));
      } catch (err) {
        throw explain(this.s, `cannot write to ${[...new Set(part.map((m) => m.topic))].join(', ')}`, err);
      }
    }
  }
}

/**
 * Splits a send into parts under Kafka's batch limit, in order: Kafka refuses a record batch above
 * the topic's max.message.bytes (1 MiB by default), and one partition's messages of a request form
 * one batch.
 */
function* sendParts(messages: OutputMessage[]): Generator<OutputMessage[]> {
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const size = 64 + (m instanceof ChunkMessage ? m.valueLength : (m.value?.length ?? 0)) + (m.key?.length ?? 0);
    if (i > from && bytes + size > SEND_PART_BYTES) {
      yield messages.slice(from, i);
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (from < messages.length) yield from === 0 ? messages : messages.slice(from);
}

/** One produce request in kafkajs's terms: messages grouped by topic, acks from all in-sync replicas. */
function batchOf(messages: OutputMessage[], compress: boolean) {
  const chunkMessages = acceptsChunkMessages();
  const byTopic = new Map<string, OutputMessage[]>();
  for (const m of messages) {
    let list = byTopic.get(m.topic);
    if (!list) byTopic.set(m.topic, (list = []));
    list.push(m);
  }
  return {
    acks: -1,
    compression: compress ? CompressionTypes.GZIP : CompressionTypes.None,
    topicMessages: [...byTopic].map(([topic, list]) => ({
      topic,
      // A ChunkMessage goes as it is, once ctflow's encoder is in kafkajs (kafkajsProduceSeam.ts):
      // it copies the value from the chunk, and no second object per record waits for the
      // acknowledgement. kafkajs's own encoder would lose its getters (value, timestamp).
      messages: list.map((m) => chunkMessages && m instanceof ChunkMessage ? (m as unknown as Message) : ({
        key: m.key ?? null,
        value: m.value,
        partition: m.partition,
        // kafkajs's types say string; its code (pinned 2.2.4) takes a number alike (kafkaTimestamp).
        timestamp: (m.timestampMs === undefined ? undefined : kafkaTimestamp(m.timestampMs)) as string | undefined,
        headers: m.headers,
      })),
    })),
  };
}

export interface TransactionOffsets {
  groupId: string;
  topic: string;
  partition: number;
  offset: string;
}

/**
 * A transactional producer (Kafka's exactly-once). Its transactional id names what it writes for,
 * here one input partition (Kafka Streams' first exactly-once design): starting a producer with the
 * same id fences the previous one, whose open transaction the broker aborts, so a process that
 * lost a partition (or was SIGKILLed and restarted) can never commit for it again.
 */
export class TransactionalProducer {
  private fenced = false;

  constructor(private readonly producer: Producer, private readonly s: KafkaSettings, readonly transactionalId: string, private readonly onDisconnect: () => void) {}

  /** Registers the id with the transaction coordinator (fencing older holders) before anything is read. */
  async fence(): Promise<void> {
    if (this.fenced) return;
    try {
      const tx = await this.producer.transaction();
      await tx.abort(); // nothing was added: kafkajs ends it without a request
    } catch (err) {
      throw explain(this.s, `cannot start transactions as '${this.transactionalId}'`, err);
    }
    this.fenced = true;
  }

  /**
   * Writes the messages and commits the input offset in one transaction: both become visible to
   * read_committed readers together, or neither does. On failure the transaction is aborted (if
   * the broker can still be told) and the error is thrown; the caller rebuilds from the last commit.
   */
  async commit(messages: OutputMessage[], offsets: TransactionOffsets | undefined, compress = false): Promise<void> {
    await this.fence();
    const tx = await this.producer.transaction().catch((err: unknown) => {
      throw explain(this.s, `cannot begin a transaction as '${this.transactionalId}'`, err);
    });
    try {
      for (const part of sendParts(messages)) await tx.sendBatch(batchOf(part, compress));
      if (offsets) {
        await tx.sendOffsets({ consumerGroupId: offsets.groupId, topics: [{ topic: offsets.topic, partitions: [{ partition: offsets.partition, offset: offsets.offset }] }] });
      }
      await tx.commit();
    } catch (err) {
      if (tx.isActive()) await tx.abort().catch(() => undefined);
      throw explain(this.s, `transaction of '${this.transactionalId}' failed`, err);
    }
  }

  async disconnect(): Promise<void> {
    this.onDisconnect();
    await this.producer.disconnect().catch(() => undefined);
  }
}

export interface GroupRun {
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts. */
  fromBeginning: boolean;
  /** Called for each fetched batch; the next batch of that partition waits for its promise. */
  onBatch(batch: InputBatch): Promise<void>;
  partitionsConsumedConcurrently?: number;
}

/** A consumer group member. ctflow commits offsets itself, only after the outputs are acknowledged. */
export class GroupConsumer {
  constructor(private readonly consumer: Consumer, private readonly s: KafkaSettings, private readonly onDisconnect: () => void = () => undefined) {}

  async run(r: GroupRun): Promise<void> {
    try {
      await this.consumer.subscribe({ topics: r.topics, fromBeginning: r.fromBeginning });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: r.partitionsConsumedConcurrently ?? 1,
        eachBatch: async ({ batch, isStale, heartbeat, resolveOffset }) => {
          if (isStale() || batch.messages.length === 0) return;
          const messages = batch.messages.map((m) => toInput(batch.topic, batch.partition, m));
          await r.onBatch({ topic: batch.topic, partition: batch.partition, messages, highWatermark: batch.highWatermark, heartbeat, isStale });
          // Moves kafkajs's fetch position on; what is committed is decided by ctflow, not here.
          resolveOffset(batch.lastOffset());
          await heartbeat();
        },
      });
    } catch (err) {
      throw explain(this.s, `cannot consume ${r.topics.join(', ')} as group '${r.groupId}'`, err);
    }
  }

  /** Commits "next offset to read" per partition. */
  async commit(topic: string, offsets: Map<number, string>): Promise<void> {
    if (offsets.size === 0) return;
    await this.consumer.commitOffsets([...offsets].map(([partition, offset]) => ({ topic, partition, offset })));
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  pause(topic: string, partitions?: number[]): void {
    this.consumer.pause([{ topic, partitions }]);
  }

  resume(topic: string, partitions?: number[]): void {
    this.consumer.resume([{ topic, partitions }]);
  }

  onCrash(listener: (err: Error) => void): void {
    this.consumer.on(this.consumer.events.CRASH, (e) => listener(e.payload.error));
  }

  /**
   * Called after each fetched batch, also one that held only transaction markers or aborted
   * messages (never handed to onBatch): with `lastOffset`, the reader knows it has passed them.
   */
  onBatchEnd(listener: (topic: string, partition: number, lastOffset: string) => void): void {
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (e) => listener(e.payload.topic, e.payload.partition, String(e.payload.lastOffset)));
  }

  /** Called (with the assigned partitions) after each rebalance. */
  onAssign(listener: (assignment: Record<string, number[]>) => void): void {
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => listener(e.payload.memberAssignment));
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  async disconnect(): Promise<void> {
    this.onDisconnect();
    await this.consumer.disconnect();
  }
}

/** One Kafka cluster connection: hands out the admin, producers and consumers. */
export class KafkaConnection {
  private readonly kafka: Kafka;
  private readonly toClose: Array<{ disconnect(): Promise<void> }> = [];

  constructor(readonly settings: KafkaSettings) {
    this.kafka = new Kafka(kafkaConfig(settings));
  }

  async admin(): Promise<TopicAdmin> {
    const a = this.kafka.admin();
    try {
      await a.connect();
    } catch (err) {
      throw explain(this.settings, 'cannot connect to Kafka', err);
    }
    this.toClose.push(a);
    return new TopicAdmin(a, this.settings);
  }

  /**
   * Idempotent by default: when one partition of a produce request fails, kafkajs retries the whole
   * request, and without producer ids and sequence numbers the broker would append the other
   * partitions' messages a second time (seen on fresh topics). ctflow sends one request at a time.
   */
  async producer(opts: { idempotent?: boolean } = {}): Promise<OutputProducer> {
    const idempotent = opts.idempotent ?? true;
    // ctflow names the partition of every message itself; the partitioner only matters for keyed sends without one.
    const p = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent, allowAutoTopicCreation: false, maxInFlightRequests: idempotent ? 1 : undefined });
    try {
      await p.connect();
    } catch (err) {
      throw explain(this.settings, 'cannot connect a producer', err);
    }
    this.toClose.push(p);
    return new OutputProducer(p, this.settings);
  }

  /** A producer for exactly-once writes under `transactionalId` (see TransactionalProducer). */
  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const p = this.kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await p.connect();
    } catch (err) {
      throw explain(this.settings, `cannot connect transactional producer '${transactionalId}'`, err);
    }
    this.toClose.push(p);
    return new TransactionalProducer(p, this.settings, transactionalId, () => this.forget(p));
  }

  /**
   * `minBytes` and `maxWaitMs` are Kafka's fetch.min.bytes and fetch.max.wait.ms: the broker holds
   * a fetch until that many bytes are there or that long has passed.
   */
  async consumer(groupId: string, opts: { maxBytesPerPartition?: number; sessionTimeoutMs?: number; minBytes?: number; maxWaitMs?: number } = {}): Promise<GroupConsumer> {
    const sessionTimeout = opts.sessionTimeoutMs ?? 30000;
    const c = this.kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1 << 20,
      // kafkajs also sleeps this long when every assigned partition is paused, and resume() does
      // not wake it; its 5 s default turned each backpressure pause into a 5 s stall.
      maxWaitTimeInMs: opts.maxWaitMs ?? 100,
      minBytes: opts.minBytes ?? 1,
      sessionTimeout,
      // A third of the session or less, as Kafka advises, so one lost heartbeat is not an eviction.
      heartbeatInterval: Math.min(3000, Math.floor(sessionTimeout / 3)),
    });
    try {
      await c.connect();
    } catch (err) {
      throw explain(this.settings, `cannot connect consumer group '${groupId}'`, err);
    }
    this.toClose.push(c);
    return new GroupConsumer(c, this.settings, () => this.forget(c));
  }

  /** A client disconnected by its owner (throwaway readers, producers of partitions taken over again) is not kept for close(). */
  private forget(client: { disconnect(): Promise<void> }): void {
    const at = this.toClose.indexOf(client);
    if (at >= 0) this.toClose.splice(at, 1);
  }

  async close(): Promise<void> {
    for (const c of this.toClose.reverse()) await c.disconnect().catch(() => undefined);
    this.toClose.length = 0;
  }
}

/** "host:port,host:port" into a list, with a message that names a bad entry. */
export function parseBrokers(text: string | undefined): string[] {
  if (!text || !text.trim()) return [];
  return text.split(',').map((b) => {
    const t = b.trim();
    if (!/^[^\s:]+:\d{1,5}$/.test(t) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(t)) throw new KafkaError(`broker '${t}' is not host:port`);
    return t;
  });
}
