/**
 * The exactly-once side of `ctflow run` (processing.guarantee exactly-once), as Kafka Streams runs
 * a stateful task: each input partition has
 *  - a transactional producer, id `<group>-<input topic>-<partition>`: the outputs of a batch, the
 *    changelog records of the state it changed and the input offset after it commit in one
 *    transaction, so read_committed readers see all of it or none of it;
 *  - a partition of the compacted changelog topic `<group>-state-changelog`, keyed by state entry
 *    (processors/stream/stateChangelog.ts) plus one record, `@position`, holding the input offset
 *    the state has consumed up to: written in the same transaction as the offset commit, it is
 *    the offset to resume from.
 * A new owner of the partition (after a rebalance, a crash, or a failed transaction) first fences
 * the previous producer by starting its own under the same id (the broker aborts whatever the old
 * one left open), then reads the changelog partition to its end and rebuilds the engine from it:
 * the live entries and the position, not a replay of the input.
 */
import type { KafkaConnection, OutputMessage, TopicAdmin, TransactionalProducer } from '../kafka/client';
import { readOffsetRanges } from '../ingest/kafka/offsetRanges';
import type { StateRecord } from '../processors/stream/stateChangelog';

/** The record holding the consumed input position; other keys belong to the processor. */
const POSITION_KEY = '@position';

export interface Position {
  /** The next input offset to process. */
  nextOffset: string;
  /** The partition's packet clock (µs), which idle partitions advance from. */
  lastPacketUs: number;
}

export interface RestoredPartition {
  partition: number;
  records: Map<string, Uint8Array>;
  /** Absent when the partition has no changelog yet: start from the group's committed offset. */
  position?: Position;
  /** Changelog messages read, and how long reading took (fencing included). */
  changelogMessages: number;
  ms: number;
}

export function changelogTopicOf(groupId: string): string {
  return `${groupId}-state-changelog`;
}

/** Topic settings: compacted (the latest value per key is what a restore needs), never deleted by age. */
export const CHANGELOG_TOPIC_CONFIG = { 'cleanup.policy': 'compact', 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' };

export class StateStore {
  private readonly producers = new Map<number, TransactionalProducer>();
  readonly changelogTopic: string;

  constructor(private readonly conn: KafkaConnection, private readonly admin: TopicAdmin, private readonly groupId: string, private readonly inputTopic: string) {
    this.changelogTopic = changelogTopicOf(groupId);
  }

  /** Changelog messages for one partition's state changes and its new position. */
  changelog(partition: number, records: StateRecord[], position: Position, out: OutputMessage[]): void {
    for (const r of records) {
      out.push({ topic: this.changelogTopic, partition, key: r.key, value: r.value === null ? null : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) });
    }
    out.push({ topic: this.changelogTopic, partition, key: POSITION_KEY, value: JSON.stringify(position) });
  }

  /**
   * Takes the partitions over: a fresh transactional producer for each (fencing the previous
   * holder of its id), then each changelog partition read to its end.
   */
  async restore(partitions: number[]): Promise<RestoredPartition[]> {
    const t0 = Date.now();
    await Promise.all(partitions.map(async (p) => {
      await this.producers.get(p)?.disconnect();
      this.producers.delete(p);
      const producer = await this.conn.transactionalProducer(`${this.groupId}-${this.inputTopic}-${p}`);
      await producer.fence();
      this.producers.set(p, producer);
    }));
    const offsets = new Map((await this.admin.offsets(this.changelogTopic)).map((o) => [o.partition, o]));
    for (const p of partitions) {
      // Right after a broker restart a partition's offsets may not be known yet: read nothing then, and try again.
      const o = offsets.get(p);
      if (!o || BigInt(o.low) < 0n || BigInt(o.high) < BigInt(o.low)) throw new Error(`offsets of ${this.changelogTopic} partition ${p} are not available yet (${o ? `${o.low}..${o.high}` : 'none'})`);
    }
    const result = new Map<number, RestoredPartition>(partitions.map((p) => [p, { partition: p, records: new Map(), changelogMessages: 0, ms: 0 }]));
    const ranges = partitions.map((p) => ({ partition: p, start: BigInt(offsets.get(p)?.low ?? '0'), end: BigInt(offsets.get(p)?.high ?? '0') }));
    await readOffsetRanges(this.conn, this.changelogTopic, ranges, (m) => {
      const r = result.get(m.partition)!;
      r.changelogMessages++;
      const key = m.key?.toString('utf8') ?? '';
      if (key === POSITION_KEY) {
        if (m.value) r.position = JSON.parse(m.value.toString('utf8')) as Position;
      } else if (m.value === null) r.records.delete(key);
      else r.records.set(key, new Uint8Array(m.value.buffer, m.value.byteOffset, m.value.byteLength));
    }, { groupPrefix: `${this.groupId}-restore`, admin: this.admin, what: `changelog '${this.changelogTopic}'` });
    const ms = Date.now() - t0;
    return [...result.values()].map((r) => ({ ...r, ms }));
  }

  /** One transaction: the messages, and the input offset `nextOffset` committed for the group. */
  async commit(partition: number, messages: OutputMessage[], nextOffset: string): Promise<void> {
    const producer = this.producers.get(partition);
    if (!producer) throw new Error(`partition ${partition} of '${this.inputTopic}' has no transactional producer (not restored)`);
    await producer.commit(messages, { groupId: this.groupId, topic: this.inputTopic, partition, offset: nextOffset });
  }

  /** Forgets a partition's producer (it is owned elsewhere now, or is being rebuilt). */
  async release(partition: number): Promise<void> {
    await this.producers.get(partition)?.disconnect();
    this.producers.delete(partition);
  }

  async close(): Promise<void> {
    for (const p of [...this.producers.keys()]) await this.release(p);
  }
}
