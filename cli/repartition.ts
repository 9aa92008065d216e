/**
 * Repartitioning, as Kafka Streams does it for a topic keyed some other way: a first stage reads
 * the input, computes each packet's flow key (zone + unordered address pair; ICMP errors by the
 * quoted pair) and writes it to an internal topic on partition `hash % partitions`, where the
 * engine stage reads it. Unlike a plain re-key, packets are released in packet-time order across
 * the input partitions (TimeOrderedRouter), because a flow whose directions sat on different
 * partitions would otherwise reach the engine direction by direction. Frames are re-batched per
 * target partition; packet events are forwarded unchanged. Input offsets are committed only once
 * everything read from them is written and acknowledged. Input that cannot be keyed goes to the
 * dead-letter topic from here, so its headers name the original topic and offset.
 *
 * The key's zone is the packet's resolved zone (the same `zoneOf` the engine stage uses), and a
 * `ctflow-zone` header travels on with its frames, so the engine stage finds the same zone.
 */
import type { GroupConsumer, InputBatch, InputMessage, KafkaConnection, OutputMessage, OutputProducer } from '../kafka/client';
import { decodeFrame } from '../ingest/decode/index';
import { decodeCapturedTraffic, encodeFrameBatch, encodeSingleFrame, FRAME_HEADERS, messageZone, TopicFormatError, ZONE_HEADER } from '../ingest/kafka/capturedTraffic';
import type { ZoneOf } from '../processors/zones';
import { TimeOrderedRouter } from '../processors/stream/timeOrderedRouter';
import type { RoutedItem } from '../processors/stream/timeOrderedRouter';
import type { TopicFrame } from '../ingest/kafka/capturedTraffic';
import { decodePacketEvent } from '../ingest/kafka/packetEvents';
import { flowKeyHash } from '../ingest/kafka/partitionKey';
import type { InputKind } from '../ingest/kafka/inputMessages';
import { OutputEncoder } from '../sinks/kafka/outputTopics';

export interface RepartitionOptions {
  kind: InputKind;
  inputTopic: string;
  internalTopic: string;
  deadLetterTopic: string;
  groupId: string;
  /** Read up to the offsets present at start, then stop (replay); otherwise run until stopped. */
  bounded: boolean;
  /** Each packet's zone, for its key; without it, the zone the message carries, else 0. */
  zoneOf?: ZoneOf;
}

/** What travels to the internal topic for one packet: a frame (re-batched there) or a message as it was. */
type Payload = { frame: TopicFrame; single: boolean; headerZone?: number } | { message: Omit<OutputMessage, 'topic' | 'partition'> };

const carriedZone: ZoneOf = (_p, carried) => carried ?? 0;

/** One message's packets with their target partitions; throws TopicFormatError when it cannot be read. */
export function routeItems(kind: InputKind, m: InputMessage, partitions: number, zoneOf: ZoneOf = carriedZone): RoutedItem<Payload>[] {
  if (m.value === null) throw new TopicFormatError('message has no value (a tombstone) on an input topic');
  const headerZone = messageZone(m.headers);
  if (kind === 'packet-events') {
    const e = decodePacketEvent(m.value, m.timestampMs);
    const hash = flowKeyHash(e.ip, zoneOf({ interfaceId: 0 }, e.zone ?? headerZone));
    const message = { key: hash.toString(16).padStart(8, '0'), value: m.value, timestampMs: m.timestampMs, headers: plain(m.headers) };
    return [{ tsUs: e.tsUs, target: hash % partitions, payload: { message } }];
  }
  const single = m.headers[FRAME_HEADERS.linkType] !== undefined;
  return decodeCapturedTraffic(m.value, m.headers, m.timestampMs).map((frame) => {
    const d = decodeFrame({ frame: 0, tsUs: frame.tsUs, linkType: frame.linkType, interfaceId: frame.interfaceId, data: frame.data });
    // Frames without IP, or too broken to key, travel on partition 0; the engine stage reports them.
    const target = d.kind === 'ip' ? flowKeyHash(d.packet.ip, zoneOf(d.packet, headerZone)) % partitions : 0;
    const payload: Payload = headerZone === undefined ? { frame, single } : { frame, single, headerZone };
    return { tsUs: frame.tsUs, target, payload };
  });
}

/**
 * Released items in order into messages: consecutive frames for one partition share a batch,
 * unless their messages named different zones (the zone header is per message: a new batch
 * starts, so the partition's frames keep their order).
 */
export function toMessages(items: RoutedItem<Payload>[], topic: string, maxFrames = 1024): OutputMessage[] {
  const out: OutputMessage[] = [];
  const open = new Map<number, { zone?: number; frames: TopicFrame[] }>();
  const zoneHeaders = (zone: number | undefined) => (zone === undefined ? {} : { headers: { [ZONE_HEADER]: String(zone) } });
  const close = (target: number) => {
    const b = open.get(target);
    if (!b) return;
    out.push({ topic, partition: target, value: encodeFrameBatch(b.frames), timestampMs: Math.floor(b.frames[0].tsUs / 1000), ...zoneHeaders(b.zone) });
    open.delete(target);
  };
  for (const it of items) {
    const p = it.payload;
    if ('message' in p) out.push({ topic, partition: it.target, ...p.message });
    else if (p.single) {
      const m = encodeSingleFrame(p.frame);
      if (p.headerZone !== undefined) m.headers[ZONE_HEADER] = String(p.headerZone);
      out.push({ topic, partition: it.target, value: m.value, headers: m.headers, timestampMs: Math.floor(p.frame.tsUs / 1000) });
    } else {
      let b = open.get(it.target);
      if (b && b.zone !== p.headerZone) {
        close(it.target);
        b = undefined;
      }
      if (!b) open.set(it.target, (b = { zone: p.headerZone, frames: [] }));
      b.frames.push(p.frame);
      if (b.frames.length >= maxFrames) close(it.target);
    }
  }
  for (const t of [...open.keys()]) close(t);
  return out;
}

function plain(h: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

export class RepartitionStage {
  routed = 0;
  deadLetters = 0;
  private consumer?: GroupConsumer;
  private producer?: OutputProducer;
  private readonly router = new TimeOrderedRouter<Payload>();
  private readonly ends = new Map<number, bigint>();
  private readonly lastInputMs = new Map<number, number>();
  private finished?: () => void;
  private partitions = 1;
  private dead?: OutputEncoder;
  /** Route and idle-release steps run one after another, so writes keep packet-time order. */
  private chain: Promise<void> = Promise.resolve();
  private ticker?: NodeJS.Timeout;

  constructor(private readonly conn: KafkaConnection, private readonly o: RepartitionOptions) {}

  /** Creates the internal topic (as many partitions as the input) and starts routing. Bounded: resolves when done. */
  async run(): Promise<void> {
    const admin = await this.conn.admin();
    if (!(await admin.topicExists(this.o.inputTopic))) throw new Error(`input topic '${this.o.inputTopic}' does not exist`);
    const inputPartitions = await admin.partitionCount(this.o.inputTopic);
    await admin.ensureTopics([
      { topic: this.o.internalTopic, partitions: inputPartitions, config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' } },
      { topic: this.o.deadLetterTopic, partitions: inputPartitions },
    ]);
    this.partitions = await admin.partitionCount(this.o.internalTopic);
    this.dead = new OutputEncoder({ transitions: '', flows: '', deadLetter: this.o.deadLetterTopic }, { transitions: 1, flows: 1, verdicts: 1, deadLetter: await admin.partitionCount(this.o.deadLetterTopic) });
    let done: Promise<void> | undefined;
    if (this.o.bounded) {
      for (const p of await admin.offsets(this.o.inputTopic)) {
        if (BigInt(p.high) <= BigInt(p.low)) continue;
        this.ends.set(p.partition, BigInt(p.high));
        this.router.expect(p.partition);
      }
      done = new Promise((resolve) => {
        this.finished = resolve;
        if (this.ends.size === 0) resolve();
      });
    } else {
      // Live: a partition with nothing new for a while stops holding the others back.
      this.ticker = setInterval(() => this.enqueue(() => this.releaseIdle()), 1000);
    }
    this.producer = await this.conn.producer();
    this.consumer = await this.conn.consumer(this.o.groupId);
    await this.consumer.run({ groupId: this.o.groupId, topics: [this.o.inputTopic], fromBeginning: true, onBatch: (b) => this.enqueue(() => this.route(b)) });
    if (done) {
      await done;
      await this.consumer.stop();
    }
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step);
    return this.chain;
  }

  private async route(b: InputBatch): Promise<void> {
    const out: OutputMessage[] = [];
    const end = this.ends.get(b.partition);
    for (const m of b.messages) {
      const offset = BigInt(m.offset);
      if (end !== undefined && offset >= end) break;
      let items: RoutedItem<Payload>[] = [];
      try {
        items = routeItems(this.o.kind, m, this.partitions, this.o.zoneOf);
        this.routed++;
      } catch (err) {
        if (!(err instanceof TopicFormatError)) throw err;
        this.deadLetters++;
        this.dead!.deadLetter(m, err.message, out);
      }
      this.router.add(b.partition, offset, items);
      if (end !== undefined && offset + 1n >= end) {
        this.router.release(b.partition);
        this.ends.delete(b.partition);
      }
    }
    this.lastInputMs.set(b.partition, Date.now());
    await this.write(out);
    if (this.o.bounded && this.ends.size === 0) this.finished?.();
  }

  private async releaseIdle(): Promise<void> {
    const now = Date.now();
    for (const [p, t] of this.lastInputMs) if (now - t > 2000) this.router.release(p);
    await this.write([]);
  }

  /** Writes what is due (plus any dead letters), then commits the inputs fully written. */
  private async write(out: OutputMessage[]): Promise<void> {
    out.push(...toMessages(this.router.due(), this.o.internalTopic));
    await this.producer!.send(out);
    await this.consumer!.commit(this.o.inputTopic, this.router.committable());
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    await this.chain.catch(() => undefined);
    await this.consumer?.stop();
  }
}
