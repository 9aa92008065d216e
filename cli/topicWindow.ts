/**
 * A bounded read of a whole topic, for commands that need all of it before they start (`ctflow
 * report --topic` merges partitions by packet time, which needs every partition's messages at
 * hand): each partition from the offset of --from to the high watermark at start, or to the offset
 * of --to. Messages are kept in memory, as a capture file is read whole. A throwaway consumer group
 * reads them and is deleted; nothing is committed, so no live group's offsets move.
 */
import type { InputMessage, KafkaConnection, TopicAdmin } from '../kafka/client';
import { CliError } from './runCapture';
import { RangeReadError, readOffsetRanges } from '../ingest/kafka/offsetRanges';
import type { OffsetRange } from '../ingest/kafka/offsetRanges';

export interface PartitionMessages {
  partition: number;
  messages: InputMessage[];
}

interface PartitionRange extends PartitionMessages, OffsetRange {}

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
    return { partition, messages: [], start, end: end < start ? start : end };
  });
}

/** Every partition's messages in the window, in offset order, by partition number. */
export async function readTopicWindow(conn: KafkaConnection, topic: string, window: { fromMs?: number; toMs?: number } = {}): Promise<PartitionMessages[]> {
  const admin = await conn.admin();
  if (!(await admin.topicExists(topic))) throw new CliError(`topic '${topic}' does not exist (brokers ${conn.settings.brokers.join(',')})`);
  const parts = await ranges(admin, topic, window.fromMs, window.toMs);
  const byPartition = new Map(parts.map((p) => [p.partition, p.messages]));
  try {
    await readOffsetRanges(conn, topic, parts, (m) => byPartition.get(m.partition)?.push(m), { groupPrefix: 'ctflow-report', admin });
  } catch (err) {
    if (err instanceof RangeReadError) throw new CliError(err.message);
    throw err;
  }
  return parts.map(({ partition, messages }) => ({ partition, messages }));
}
