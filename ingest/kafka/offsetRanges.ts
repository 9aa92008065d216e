/**
 * A bounded read: given partitions of a topic and [start, end) offsets in each, hands over every
 * message in those ranges, in offset order per partition, and resolves once each range is read
 * to its end. A throwaway consumer group reads them (Kafka has no group-less fetch in kafkajs), is
 * seeked to the starts, commits nothing and is deleted. Used by `ctflow report --topic` (a window
 * of a captured topic) and by the exactly-once pipeline's state restore (a changelog partition).
 *
 * A range's last offsets may hold no message a reader is given: transaction markers (every
 * committed transaction ends with one) and aborted records. kafkajs still reports each batch's
 * last offset after filtering them, which is how the end is recognised without waiting.
 */
import type { InputMessage, KafkaConnection, TopicAdmin } from '../../kafka/client';

export interface OffsetRange {
  partition: number;
  start: bigint;
  end: bigint;
}

export interface RangeReadOptions {
  /** Prefix of the throwaway group's name. */
  groupPrefix: string;
  /** Fail after this long without progress (default 30 s). */
  stallMs?: number;
  /** Names what is being read, for errors. */
  what?: string;
  /** Deletes the throwaway group at the end. */
  admin: TopicAdmin;
}

export class RangeReadError extends Error {}

export async function readOffsetRanges(conn: KafkaConnection, topic: string, ranges: OffsetRange[], onMessage: (m: InputMessage) => void, o: RangeReadOptions): Promise<void> {
  const unread = new Map(ranges.filter((r) => r.start < r.end).map((r) => [r.partition, { ...r, next: r.start }]));
  if (unread.size === 0) return;
  const what = o.what ?? `topic '${topic}'`;
  const stallMs = o.stallMs ?? 30_000;
  const groupId = `${o.groupPrefix}-${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const consumer = await conn.consumer(groupId);
  let finished!: () => void;
  let crashed!: (err: Error) => void;
  const read = new Promise<void>((resolve, reject) => {
    finished = resolve;
    crashed = reject;
  });
  consumer.onCrash((err) => crashed(new RangeReadError(`reading ${what} failed: ${err.message}`)));
  let lastProgressMs = Date.now();
  const reached = (partition: number, next: bigint) => {
    const r = unread.get(partition);
    if (!r || next <= r.next) return;
    r.next = next;
    lastProgressMs = Date.now();
    if (r.next < r.end) return;
    // Read to its end: a live topic's later messages need not be fetched.
    consumer.pause(topic, [partition]);
    unread.delete(partition);
    if (unread.size === 0) finished();
  };
  consumer.onBatchEnd((t, partition, lastOffset) => {
    if (t === topic) reached(partition, BigInt(lastOffset) + 1n);
  });
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgressMs < stallMs) return;
    const where = [...unread.values()].map((r) => `partition ${r.partition} at offset ${r.next} of ${r.end}`).join(', ');
    crashed(new RangeReadError(`reading ${what}: no progress for ${stallMs / 1000} s with ${where}`));
  }, 1000);
  try {
    await consumer.run({
      groupId,
      topics: [topic],
      fromBeginning: true,
      onBatch: async (b) => {
        const r = unread.get(b.partition);
        if (!r) return;
        let next = r.next;
        for (const m of b.messages) {
          const offset = BigInt(m.offset);
          // Below the range (read before the seek applied), or delivered again after a rebalance.
          if (offset < next) continue;
          if (offset >= r.end) break;
          onMessage(m);
          next = offset + 1n;
        }
        reached(b.partition, next);
      },
    });
    for (const r of unread.values()) if (r.start > 0n) consumer.seek(topic, r.partition, r.start.toString());
    await read;
  } finally {
    clearInterval(watchdog);
    await consumer.stop().catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
    await o.admin.deleteGroup(groupId);
  }
}
