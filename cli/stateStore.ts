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
 *
 * With a state directory (cli/stateDirectory.ts) the state of a partition given up cleanly
 * (SIGINT/SIGTERM, or a rebalance that revokes it) is written to a local checkpoint once its last
 * transaction has committed: the processor's whole state as changelog records, which is then what
 * the compacted changelog holds (PartitionProcessor.stateSnapshot). The next owner on that machine loads the checkpoint and reads only
 * the changelog after it: Kafka Streams' local state directory and `.checkpoint` file.
 */
import type { KafkaConnection, OutputMessage, TopicAdmin, TransactionalProducer } from '../kafka/client';
import { readOffsetRanges } from '../ingest/kafka/offsetRanges';
import type { StateRecord } from '../processors/stream/stateChangelog';
import { CheckpointFormatError } from './checkpointFile';
import type { Checkpoint } from './checkpointFile';
import type { StateDirectory } from './stateDirectory';

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
  /** Restored from a local checkpoint plus the changelog after it: where it stood and how old it was. */
  checkpoint?: { changelogOffset: string; ageMs: number; entries: number };
  /** Why the whole changelog was read instead (no checkpoint, or the reason one was ignored). */
  fullRestoreReason?: string;
  /** The changelog partition's [low, high) offsets when it was read: a full read covers all of it. */
  changelogLow?: string;
  changelogHigh?: string;
}

/** What writing a partition's checkpoint came to: its size, or why none was written. */
export interface CheckpointWritten {
  partition: number;
  entries?: number;
  bytes?: number;
  changelogOffset?: string;
  skipped?: string;
}

/** What the store knows of a partition it restored, for its checkpoint: the input position last committed. */
interface CommittedState {
  position?: Position;
}

/**
 * Kafka removes a compacted topic's tombstones delete.retention.ms after they are cleaned (default
 * 24 h, log.cleaner.delete.retention.ms). A checkpoint older than that could miss a deletion whose
 * tombstone is gone, and bring the entry back: it is not used.
 */
const DELETE_RETENTION_DEFAULT_MS = 86_400_000;

/** How long a restore waits for another process on this machine to release a partition's folder (it is checkpointing after a revocation). */
const LOCK_WAIT_MS = 10_000;

export function changelogTopicOf(groupId: string): string {
  return `${groupId}-state-changelog`;
}

/** Topic settings: compacted (the latest value per key is what a restore needs), never deleted by age. */
export const CHANGELOG_TOPIC_CONFIG = { 'cleanup.policy': 'compact', 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' };

export class StateStore {
  private readonly producers = new Map<number, TransactionalProducer>();
  /** With a state directory: each restored partition's committed state, for its checkpoint. */
  private readonly committed = new Map<number, CommittedState>();
  readonly changelogTopic: string;

  constructor(
    private readonly conn: KafkaConnection,
    private readonly admin: TopicAdmin,
    private readonly groupId: string,
    private readonly inputTopic: string,
    private readonly local?: StateDirectory,
  ) {
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
    const result = new Map<number, RestoredPartition>(partitions.map((p) => [p, { partition: p, records: new Map(), changelogMessages: 0, ms: 0, changelogLow: offsets.get(p)!.low, changelogHigh: offsets.get(p)!.high }]));
    const starts = new Map(partitions.map((p) => [p, BigInt(offsets.get(p)!.low)]));
    if (this.local) {
      for (const [p, c] of await this.loadCheckpoints(partitions, offsets, result)) {
        const r = result.get(p)!;
        r.records = c.records;
        r.position = c.position;
        r.checkpoint = { changelogOffset: c.changelogOffset.toString(), ageMs: Date.now() - c.writtenMs, entries: c.records.size };
        starts.set(p, c.changelogOffset);
      }
    }
    const ranges = partitions.map((p) => ({ partition: p, start: starts.get(p)!, end: BigInt(offsets.get(p)!.high) }));
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
    for (const r of result.values()) {
      if (this.local?.holds(r.partition)) this.committed.set(r.partition, { position: r.position });
      else this.committed.delete(r.partition);
    }
    return [...result.values()].map((r) => ({ ...r, ms }));
  }

  /**
   * The usable checkpoints of the partitions (taking each one's folder lock first), each deleted
   * once read, used or not: from here on the partition's state moves on without it, so after a
   * crash it would be stale. A checkpoint is used only when it is intact, this format version, of
   * this group, topic and partition, inside the changelog's [log start, end] offsets, and younger
   * than the changelog's delete.retention.ms; otherwise `fullRestoreReason` says why not.
   */
  private async loadCheckpoints(partitions: number[], offsets: Map<number, { low: string; high: string }>, result: Map<number, RestoredPartition>): Promise<Map<number, Checkpoint>> {
    const local = this.local!;
    const loaded = new Map<number, Checkpoint>();
    const waiting = new Set(partitions);
    let holders = new Map<number, number>();
    for (const deadline = Date.now() + LOCK_WAIT_MS; ; ) {
      holders = new Map();
      for (const p of waiting) {
        let l: ReturnType<StateDirectory['lock']>;
        try {
          l = local.lock(p);
        } catch (err) {
          // An unusable state directory (permissions, a full disk) costs checkpoints, never the restore.
          result.get(p)!.fullRestoreReason = `its state folder ${local.folder(p)} cannot be used: ${(err as Error).message}`;
          waiting.delete(p);
          continue;
        }
        if (l.locked) waiting.delete(p);
        else holders.set(p, l.holder);
      }
      if (waiting.size === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [p, pid] of holders) result.get(p)!.fullRestoreReason = `its state folder ${local.folder(p)} is locked by process ${pid}; no checkpoint will be written for it either`;
    for (const p of partitions) {
      if (!local.holds(p)) continue;
      const r = result.get(p)!;
      let c: Checkpoint | undefined;
      try {
        c = local.readCheckpoint(p);
      } catch (err) {
        r.fullRestoreReason = `checkpoint ${local.checkpointPath(p)} ignored: ${err instanceof CheckpointFormatError ? err.message : `cannot be read: ${(err as Error).message}`}`;
      }
      try {
        local.deleteCheckpoint(p);
      } catch (err) {
        // Left on disk it would be loaded again after a crash, with the state moved on since: not used.
        if (c) r.fullRestoreReason = `checkpoint ${local.checkpointPath(p)} ignored: it cannot be deleted (${(err as Error).message})`;
        c = undefined;
      }
      if (!c) {
        r.fullRestoreReason ??= 'no checkpoint';
        continue;
      }
      const why = this.unusable(c, p, offsets.get(p)!);
      if (why) r.fullRestoreReason = `checkpoint ${local.checkpointPath(p)} ignored: ${why}`;
      else loaded.set(p, c);
    }
    if (loaded.size === 0) return loaded;
    let retentionMs = DELETE_RETENTION_DEFAULT_MS;
    try {
      const v = (await this.admin.topicConfig(this.changelogTopic, ['delete.retention.ms'])).get('delete.retention.ms');
      if (v !== undefined && Number.isFinite(Number(v))) retentionMs = Number(v);
    } catch (err) {
      for (const p of loaded.keys()) result.get(p)!.fullRestoreReason = `checkpoint ignored: ${(err as Error).message} (to compare its age with delete.retention.ms)`;
      return new Map();
    }
    const now = Date.now();
    for (const [p, c] of loaded) {
      const age = now - c.writtenMs;
      // A clock that moved back could make an old checkpoint look new: one from the future is not trusted either.
      const why = age > retentionMs
        ? `written ${Math.round(age / 1000)} s ago, longer than the changelog's delete.retention.ms (${retentionMs} ms): tombstones compacted away since could be missed`
        : age < -60_000 ? `written ${Math.round(-age / 1000)} s in the future (the clock moved back?)` : undefined;
      if (!why) continue;
      result.get(p)!.fullRestoreReason = `checkpoint ${local.checkpointPath(p)} ignored: ${why}`;
      loaded.delete(p);
    }
    return loaded;
  }

  private unusable(c: Checkpoint, partition: number, o: { low: string; high: string }): string | undefined {
    if (c.group !== this.groupId || c.inputTopic !== this.inputTopic || c.partition !== partition) {
      return `it is the state of group '${c.group}', topic '${c.inputTopic}' partition ${c.partition}`;
    }
    if (c.changelogOffset > BigInt(o.high)) return `its changelog offset ${c.changelogOffset} is past the changelog partition's end ${o.high} (the topic was deleted and created again?)`;
    if (c.changelogOffset < BigInt(o.low)) return `its changelog offset ${c.changelogOffset} is before the changelog partition's log start ${o.low}`;
    return undefined;
  }

  /**
   * Writes the committed state of the partitions this store restored (all of them by default) to
   * their checkpoints, after the last transaction committed: on a clean stop, and before a
   * rebalance's restore. The folders of partitions not in `keep` are unlocked afterwards.
   *
   * The checkpoint's changelog offset is the changelog's end read now, and it is right only if no
   * other process has written to the partition: a new owner fences this one's producer before
   * it writes anything, so a transaction that commits after the end was read proves there was
   * none. That transaction writes `@position` again, unchanged (a restore reads it after the
   * checkpoint and finds what it already has). A partition whose transaction fails gets no
   * checkpoint, and its next owner reads the whole changelog.
   */
  async writeCheckpoints(stateOf: (partition: number) => ReadonlyMap<string, Uint8Array> | undefined, keep: ReadonlySet<number> = new Set()): Promise<CheckpointWritten[]> {
    const local = this.local;
    const out: CheckpointWritten[] = [];
    if (!local) return out;
    const partitions = [...this.committed.keys()];
    let ends = new Map<number, { low: string; high: string }>();
    try {
      if (partitions.length) ends = new Map((await this.admin.offsets(this.changelogTopic)).map((o) => [o.partition, o]));
    } catch (err) {
      for (const p of partitions) out.push({ partition: p, skipped: `cannot read the changelog's end: ${(err as Error).message}` });
      ends.clear();
    }
    await Promise.all((ends.size > 0 ? partitions : []).map(async (p) => {
      const state = this.committed.get(p)!;
      const end = ends.get(p);
      const producer = this.producers.get(p);
      if (!state.position) return out.push({ partition: p, skipped: 'nothing committed yet' });
      if (!end || BigInt(end.high) < BigInt(end.low)) return out.push({ partition: p, skipped: 'the changelog partition has no offsets' });
      if (!producer) return out.push({ partition: p, skipped: 'no transactional producer' });
      try {
        await producer.commit([{ topic: this.changelogTopic, partition: p, key: POSITION_KEY, value: JSON.stringify(state.position) }], undefined);
      } catch (err) {
        return out.push({ partition: p, skipped: `its ownership could not be confirmed: ${(err as Error).message}` });
      }
      const records = stateOf(p);
      if (!records) return out.push({ partition: p, skipped: 'its state has changes not yet written to the changelog' });
      try {
        const bytes = local.writeCheckpoint({ group: this.groupId, inputTopic: this.inputTopic, partition: p, writtenMs: Date.now(), changelogOffset: BigInt(end.high), position: state.position, records });
        return out.push({ partition: p, entries: records.size, bytes, changelogOffset: end.high });
      } catch (err) {
        return out.push({ partition: p, skipped: `cannot write it: ${(err as Error).message}` });
      }
    }));
    for (const p of partitions) this.committed.delete(p);
    local.unlockAllBut(keep);
    return out.sort((a, b) => a.partition - b.partition);
  }

  /** One transaction: the messages, and the input offset `nextOffset` committed for the group. */
  async commit(partition: number, messages: OutputMessage[], nextOffset: string): Promise<void> {
    const producer = this.producers.get(partition);
    if (!producer) throw new Error(`partition ${partition} of '${this.inputTopic}' has no transactional producer (not restored)`);
    try {
      await producer.commit(messages, { groupId: this.groupId, topic: this.inputTopic, partition, offset: nextOffset });
    } catch (err) {
      // A commit whose answer was lost may still have committed: the position kept no longer says
      // where the changelog stands, so no checkpoint is written for the partition (the restore
      // that follows a failed transaction reads the changelog again).
      this.committed.delete(partition);
      throw err;
    }
    const state = this.committed.get(partition);
    if (state) this.applyCommitted(state, partition, messages);
  }

  /** Brings a partition's committed position up to a transaction that committed (its `@position` record comes last). */
  private applyCommitted(state: CommittedState, partition: number, messages: OutputMessage[]): void {
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i];
      if (m.topic !== this.changelogTopic || m.partition !== partition || m.key !== POSITION_KEY) continue;
      state.position = JSON.parse(String(m.value)) as Position;
      return;
    }
  }

  /** Forgets a partition's producer (it is owned elsewhere now, or is being rebuilt). */
  async release(partition: number): Promise<void> {
    await this.producers.get(partition)?.disconnect();
    this.producers.delete(partition);
  }

  async close(): Promise<void> {
    for (const p of [...this.producers.keys()]) await this.release(p);
    this.committed.clear();
    this.local?.unlockAll();
  }
}
