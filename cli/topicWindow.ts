/**
 * A bounded read of a whole topic, for commands that need all of it before they start (`ctflow
 * report --topic` merges partitions by packet time, which needs every partition's messages at
 * hand): each partition from the offset of --from to the high watermark at start, or to the offset
 * of --to. Messages are kept in memory, as a capture file is read whole. A throwaway consumer group
 * reads them and is deleted; nothing is committed, so no live group's offsets move.
 */
import type { InputMessage, KafkaConnection, TopicAdmin } from '../kafka/client';
import { CliError } from './runCapture';

export interface PartitionMessages {
  partition: number;
  messages: InputMessage[];
}

interface PartitionRange extends PartitionMessages {
  /** [start, end) offsets to read, and the next offset wanted. */
  start: bigint;
  end: bigint;
  next: bigint;
}

/**
 * Offsets by message time (Kafka's ListOffsets by timestamp). A batch message's time is its first
 * frame's, so the message before the first one stamped at or after `fromMs` can hold frames of the
 * window: reading starts one message earlier, and the caller keeps only frames inside the window.
 * Messages stamped at or after `toMs` hold no frame before it, so reading stops at the first one.
 */
async function ranges(admin: TopicAdmin, topic: string, fromMs?: number, toMs?: number): Promise<PartitionRange[]> {
  const offsets = await admin.offsets(topic);
  const from = fromMs === undefined ? undefined : await admin.offsetsAt(topic, fromMs);
  const to = toMs === undefined ? undefined : await admin.offsetsAt(topic, toMs);
  return offsets.map(({ partition, low, high }) => {
    const lo = BigInt(low);
    const hi = BigInt(high);
    const first = from === undefined ? lo : BigInt(from.get(partition) ?? high) - 1n;
    const start = first < lo ? lo : first;
    const atTo = to === undefined ? hi : BigInt(to.get(partition) ?? high);
    const end = atTo >= 0n && atTo < hi ? atTo : hi;
    return { partition, messages: [], start, end: end < start ? start : end, next: start };
  });
}

/**
 * How long reading may go without a new message before it fails: offsets that hold no message
 * (transaction markers, compacted records) at a partition's end are never delivered, and waiting
 * for them would hang the command.
 */
const STALL_MS = 30_000;

/** Every partition's messages in the window, in offset order, by partition number. */
export async function readTopicWindow(conn: KafkaConnection, topic: string, window: { fromMs?: number; toMs?: number } = {}): Promise<PartitionMessages[]> {
  const admin = await conn.admin();
  if (!(await admin.topicExists(topic))) throw new CliError(`topic '${topic}' does not exist (brokers ${conn.settings.brokers.join(',')})`);
  const parts = await ranges(admin, topic, window.fromMs, window.toMs);
  const unread = new Map(parts.filter((p) => p.start < p.end).map((p) => [p.partition, p]));
  const result = (): PartitionMessages[] => parts.map(({ partition, messages }) => ({ partition, messages }));
  if (unread.size === 0) return result();
  const groupId = `ctflow-report-${process.pid}-${Date.now()}`;
  const consumer = await conn.consumer(groupId);
  let finished!: () => void;
  let crashed!: (err: Error) => void;
  const read = new Promise<void>((resolve, reject) => {
    finished = resolve;
    crashed = reject;
  });
  consumer.onCrash((err) => crashed(new CliError(`reading topic '${topic}' failed: ${err.message}`)));
  let lastProgressMs = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgressMs < STALL_MS) return;
    const where = [...unread.values()].map((p) => `partition ${p.partition} at offset ${p.next} of ${p.end}`).join(', ');
    crashed(new CliError(`reading topic '${topic}': no message for ${STALL_MS / 1000} s with ${where} (offsets without messages at the end: transaction markers or compaction?)`));
  }, 1000);
  try {
    await consumer.run({
      groupId,
      topics: [topic],
      fromBeginning: true,
      onBatch: async (b) => {
        const p = unread.get(b.partition);
        if (!p) return;
        for (const m of b.messages) {
          const offset = BigInt(m.offset);
          // Below the window (read before the seek applied), or delivered again after a rebalance.
          if (offset < p.next) continue;
          if (offset >= p.end) break;
          p.messages.push(m);
          p.next = offset + 1n;
          lastProgressMs = Date.now();
        }
        if (p.next < p.end) return;
        // Read to its end: a live topic's later messages need not be fetched.
        consumer.pause(topic, [b.partition]);
        unread.delete(b.partition);
        if (unread.size === 0) finished();
      },
    });
    for (const p of unread.values()) if (p.start > 0n) consumer.seek(topic, p.partition, p.start.toString());
    await read;
  } finally {
    clearInterval(watchdog);
    await consumer.stop();
    await admin.deleteGroup(groupId);
  }
  return result();
}
