/**
 * The Kafka pipeline: input topic -> RxJS -> one engine per partition -> output topics, with
 * offsets committed only after the outputs are acknowledged. Used by `ctflow run` (live: a
 * consumer group, commits, idle partitions follow wall time) and `ctflow replay --topic`
 * (a throwaway group that never commits, bounded by the offsets present at start or a time
 * window, optionally paced at N x real time).
 *
 * Backpressure: batches handed to the RxJS chain but not yet written and acknowledged are
 * counted; past `maxInFlightBatches` the consumer is paused, and resumed at half of it, so
 * memory stays bounded whatever the input rate.
 *
 * Guarantees (live mode): at-least-once commits, after the outputs are acknowledged, the offset of
 * the oldest open flow's first packet (CommitPoint), so a restart rebuilds the open flows by
 * reading again and may write some outputs twice. Exactly-once (cli/stateStore.ts) commits each
 * partition's outputs, state changelog and next offset in one transaction, and a partition's new
 * owner restores the state from the changelog: no output is lost or written twice.
 */
import { Subject, map, share } from 'rxjs';
import type { FlowEvent } from '../processors/flow';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { PartitionProcessor } from '../processors/stream/partitionProcessor';
import { CommitPoint } from '../processors/stream/commitPoint';
import { EventTimeMerge } from '../processors/stream/eventTimeMerge';
import type { GroupConsumer, InputBatch, InputMessage, KafkaConnection, OutputMessage, OutputProducer, TopicAdmin } from '../kafka/client';
import { decodeInputMessage } from '../ingest/kafka/inputMessages';
import type { InputHandlers } from '../ingest/kafka/inputMessages';
import { FlowEventFormatError, parseFlowEventMessage } from '../ingest/flowEvents/index';
import { FleetProcessor } from '../processors/stream/fleetProcessor';
import type { InputKind } from '../ingest/kafka/inputMessages';
import { OutputEncoder } from '../sinks/kafka/outputTopics';
import type { OutputTopicNames } from '../sinks/kafka/outputTopics';
import type { PacketSample, PipelineObserver } from '../sinks/telemetry/observer';
import type { ZoneOf } from '../processors/zones';
import { StateStore, changelogTopicOf, CHANGELOG_TOPIC_CONFIG } from './stateStore';
import { StateDirectory } from './stateDirectory';
import type { RestoredPartition } from './stateStore';
import type { PartitionProcessorOptions } from '../processors/stream/partitionProcessor';

export interface StreamOptions {
  kind: InputKind | 'flow-events';
  inputTopic: string;
  outputs: OutputTopicNames;
  sysctl: Sysctl;
  /** NOTRACK, NAT and helper rules for every partition's engine. */
  rules?: ConntrackRules;
  activeTimeoutUs: number;
  mode: 'live' | 'replay';
  /** live: at-least-once (default) or exactly-once (transactions and a state changelog). */
  guarantee?: 'at-least-once' | 'exactly-once';
  /** live: the consumer group; replay: ignored (a throwaway group is used and deleted). */
  groupId: string;
  maxInFlightBatches?: number;
  /** Most bytes fetched per partition per request (Kafka's max.partition.fetch.bytes; default 1 MiB). */
  fetchMaxBytes?: number;
  /** live: the consumer group's session timeout (default 30 s). */
  sessionTimeoutMs?: number;
  /** live: commit at most this often (ms); always on shutdown. */
  commitIntervalMs?: number;
  /** live: a partition with no input for this long advances its clock with wall time. */
  idleMs?: number;
  /** replay: time window by message timestamp (ms), and pacing (0 = as fast as possible). */
  fromMs?: number;
  toMs?: number;
  speed?: number;
  /** Transitions for stdout; in replay they come merged into one event-time order. */
  onEvents?(events: FlowEvent[]): void;
  /** Each packet's conntrack zone (processors/zones.ts); without it, the zone the message carries, else 0. */
  zoneOf?: ZoneOf;
  /**
   * exactly-once: the local state directory (cli/stateDirectory.ts): a partition given up cleanly
   * leaves a checkpoint there, and its next restore on this machine reads only the changelog after
   * it. Absent: every restore reads the whole changelog.
   */
  stateDir?: string;
  /** Metrics and the live API (sinks/telemetry): told of packets, transitions, batches, dead letters and tables. */
  observer?: PipelineObserver;
  log?(level: 'info' | 'warn' | 'error', message: string): void;
}

export interface StreamCounters {
  messages: number;
  packets: number;
  /** INVALID packets (reported on the transitions topic). */
  invalid: number;
  skipped: number;
  deadLetters: number;
  events: number;
  flowRecords: number;
  batches: number;
  commits: number;
  pauses: number;
  /** exactly-once: partitions restored from the changelog, transactions aborted and recovered from. */
  restores: number;
  recoveries: number;
  /** exactly-once: restores that started from a local checkpoint, changelog messages read by all restores, checkpoints written. */
  checkpointRestores: number;
  changelogMessagesRead: number;
  checkpointsWritten: number;
}

interface PartitionState {
  proc: PartitionProcessor;
  /** Flow-events input: the partition's fleet table instead of an engine. */
  fleet?: FleetProcessor;
  commit: CommitPoint;
  /** replay: [start, end) offsets to read. */
  start: bigint;
  end: bigint;
  done: boolean;
  lastPacketUs: number;
  lastInputWallMs: number;
  /** The offset after the last message read. */
  nextOffset: string;
  /** live: the group generation this state was built in (a rebalance restarts from committed offsets). */
  generation: number;
}

type Work = { kind: 'batch'; batch: InputBatch; generation: number } | { kind: 'tick'; wallMs: number };

/** One input partition's share of a processed batch or tick: its outputs, and the offset to commit after them. */
interface PartWrite {
  messages: OutputMessage[];
  commit?: string;
}

interface Written {
  parts: Map<number, PartWrite>;
  generation: number;
  /** Whether this was an input batch (counted in flight until written). */
  batch: boolean;
}

export class StreamPipeline {
  readonly counters: StreamCounters = { messages: 0, packets: 0, invalid: 0, skipped: 0, deadLetters: 0, events: 0, flowRecords: 0, batches: 0, commits: 0, pauses: 0, restores: 0, recoveries: 0, checkpointRestores: 0, changelogMessagesRead: 0, checkpointsWritten: 0 };
  private readonly parts = new Map<number, PartitionState>();
  private readonly work = new Subject<Work>();
  private consumer?: GroupConsumer;
  private producer?: OutputProducer;
  private admin?: TopicAdmin;
  private encoder?: OutputEncoder;
  private merge?: EventTimeMerge<FlowEvent>;
  private inFlight = 0;
  private paused = false;
  private generation = 0;
  private pendingCommits = new Map<number, string>();
  private lastCommitMs = 0;
  private ticker?: NodeJS.Timeout;
  private readonly groupId: string;
  private readonly drained: Promise<void>;
  private finishReplay?: () => void;
  private failed?: Error;
  private replayFirst?: { packetMs: number; wallMs: number };
  /** Processed batches waiting to be written; the writer takes all of them in one produce request. */
  private writeQueue: Written[] = [];
  private writing = false;
  private inputDone = false;
  private writer?: { resolve(): void; reject(err: Error): void };
  /** onBatch calls waiting for in-flight work to fall to half the bound. */
  private capacityWaiters: Array<() => void> = [];
  /** exactly-once: transactions and the changelog; the partitions this member owns; the restore of the current generation. */
  private store?: StateStore;
  private assigned: number[] = [];
  private restoring?: { generation: number; done: Promise<void> };
  /** The StateStore's restores and checkpoint writes, one at a time (a rebalance can start one while another is under way). */
  private storeWork: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(private readonly conn: KafkaConnection, private readonly o: StreamOptions) {
    this.groupId = o.mode === 'replay' ? `ctflow-replay-${process.pid}-${Date.now()}` : o.groupId;
    const processed = this.work.pipe(map((w) => this.process(w)), share());
    this.drained = new Promise((resolve, reject) => {
      this.writer = { resolve, reject };
      processed.subscribe({
        next: (w) => {
          this.writeQueue.push(w);
          this.pump();
        },
        error: reject,
        complete: () => {
          this.inputDone = true;
          this.pump();
        },
      });
    });
    this.drained.catch((err: Error) => {
      this.failed = err;
      this.o.log?.('error', err.message);
    });
  }

  /** Connects, prepares the output topics and starts consuming. In replay mode, resolves when the window is read. */
  async run(): Promise<void> {
    this.admin = await this.conn.admin();
    if (!(await this.admin.topicExists(this.o.inputTopic))) throw new Error(`input topic '${this.o.inputTopic}' does not exist`);
    const inputPartitions = await this.admin.partitionCount(this.o.inputTopic);
    if (this.o.rules?.nat?.length && inputPartitions > 1) {
      // A NAT'd flow's two sides carry different address pairs, so the address-pair key puts them
      // on different partitions, whose engines then each see half a flow (docs/topics.md).
      this.o.log?.('warn', `NAT rules with ${inputPartitions} partitions of '${this.o.inputTopic}': both sides of a NAT'd flow must be on one partition (one partition, or a producer that keys them alike; docs/topics.md)`);
    }
    const topics = [this.o.outputs.transitions, this.o.outputs.flows, this.o.outputs.deadLetter, ...(this.o.outputs.verdicts ? [this.o.outputs.verdicts] : [])];
    await this.admin.ensureTopics(topics.map((topic) => ({ topic, partitions: inputPartitions })));
    if (this.exactlyOnce) {
      // One changelog partition per input partition: its state moves with it.
      await this.admin.ensureTopics([{ topic: changelogTopicOf(this.groupId), partitions: inputPartitions, config: CHANGELOG_TOPIC_CONFIG }]);
      const local = this.o.stateDir ? new StateDirectory(this.o.stateDir, this.groupId, this.o.inputTopic) : undefined;
      this.store = new StateStore(this.conn, this.admin, this.groupId, this.o.inputTopic, local);
      // Finds the group's coordinator before the first transaction's sendOffsets (docs/kafka.md: kafkajs does not retry it while the coordinator loads).
      await this.admin.groupOffsets(this.groupId, this.o.inputTopic);
    }
    const count = async (t?: string) => (t ? this.admin!.partitionCount(t) : 1);
    this.encoder = new OutputEncoder(this.o.outputs, {
      transitions: await count(this.o.outputs.transitions),
      flows: await count(this.o.outputs.flows),
      verdicts: await count(this.o.outputs.verdicts),
      deadLetter: await count(this.o.outputs.deadLetter),
    });
    // exactly-once writes through the StateStore's transactional producers only.
    if (!this.store) this.producer = await this.conn.producer();
    const replay = this.o.mode === 'replay' ? await this.prepareReplay() : undefined;
    this.consumer = await this.conn.consumer(this.groupId, { maxBytesPerPartition: this.o.fetchMaxBytes, sessionTimeoutMs: this.o.sessionTimeoutMs });
    this.consumer.onAssign((assignment) => {
      if (this.o.mode !== 'live') return;
      this.generation++; // kafkajs restarts from the committed offsets: fresh engines
      this.assigned = assignment[this.o.inputTopic] ?? [];
      // A rebalance: the partitions held until now are checkpointed before anything is restored.
      if (this.exactlyOnce) this.startRestore(true);
    });
    await this.consumer.run({
      groupId: this.groupId,
      topics: [this.o.inputTopic],
      fromBeginning: true,
      onBatch: (b) => this.onBatch(b),
    });
    if (this.o.mode === 'replay') {
      for (const [p, s] of this.parts) if (!s.done && s.start > 0n) this.consumer.seek(this.o.inputTopic, p, s.start.toString());
      await replay?.done;
      await this.stop();
    } else {
      this.ticker = setInterval(() => this.work.next({ kind: 'tick', wallMs: Date.now() }), Math.min(1000, this.o.idleMs ?? 5000));
    }
  }

  /** The offset after the last message read, per partition. */
  positions(): Map<number, string> {
    return new Map([...this.parts].map(([p, s]) => [p, s.nextOffset]));
  }

  /** Drains: stops fetching, writes and acknowledges what is in flight, commits, disconnects. */
  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    // Stop fetching, let what is in flight be written, and commit while still a group member
    // (kafkajs cannot commit for a consumer that has left its group).
    this.consumer?.pause(this.o.inputTopic);
    this.paused = true;
    const deadline = Date.now() + 60_000;
    while (this.inFlight > 0 && !this.failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.stopping = true;
    if (this.o.mode === 'live' && !this.failed && !this.store) await this.commitNow(true);
    // Checkpoints are written while this member still owns its partitions: once it leaves the
    // group their new owners fence its producers, and no checkpoint could be confirmed.
    if (this.store && !this.failed) {
      // Nothing enters the chain any more (enqueue), so once the writer is idle no transaction is open.
      while (this.writing) await new Promise((r) => setTimeout(r, 5));
      await this.restoring?.done;
      if (!this.failed) await this.checkpoint(new Set());
    }
    await this.consumer?.stop();
    await this.store?.close();
    if (this.o.mode === 'replay' && this.merge) this.o.onEvents?.(this.merge.drain());
    this.work.complete();
    await this.drained.catch(() => undefined);
    if (this.o.mode === 'replay') await this.admin?.deleteGroup(this.groupId);
    await this.conn.close();
    if (this.failed) throw this.failed;
  }

  private get exactlyOnce(): boolean {
    return this.o.mode === 'live' && this.o.guarantee === 'exactly-once';
  }

  /**
   * exactly-once: takes the assigned partitions over for the current generation, after the
   * transaction being written (if any) has ended, since its changelog records and offsets may
   * still commit. Retried until it works or a newer generation replaces it: a broker restart is
   * waited out, not fatal.
   */
  private startRestore(rebalanced = false): void {
    const generation = this.generation;
    const partitions = [...this.assigned];
    const done = (async () => {
      while (this.writing) await new Promise((r) => setTimeout(r, 5));
      if (rebalanced) await this.checkpoint(new Set(partitions));
      for (let attempt = 0; generation === this.generation && !this.stopping; attempt++) {
        try {
          const restored = await this.serially(() => this.store!.restore(partitions));
          if (generation !== this.generation) return;
          // About 45 s of retries before a changelog behind the group's commits is taken as it is.
          await this.adopt(restored, generation, attempt >= 8);
          return;
        } catch (err) {
          if (generation !== this.generation || this.stopping) return;
          this.o.log?.('warn', `restoring partitions ${partitions.join(',')} of '${this.o.inputTopic}': ${(err as Error).message}; retrying`);
          await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
        }
      }
    })();
    this.restoring = { generation, done };
  }

  /** Runs a StateStore operation after the ones already started. */
  private serially<T>(op: () => Promise<T>): Promise<T> {
    const run = this.storeWork.then(op, op);
    this.storeWork = run.catch(() => undefined);
    return run;
  }

  /**
   * exactly-once with a state directory: writes the checkpoints of the partitions restored so far
   * (all their transactions have ended: the caller waited for the writer), keeping the folders of
   * `keep` locked. A failure only costs the next owner a full changelog read, so it is logged, not thrown.
   */
  private async checkpoint(keep: Set<number>): Promise<void> {
    if (!this.o.stateDir) return;
    try {
      const stateOf = (p: number) => this.parts.get(p)?.proc.stateSnapshot();
      for (const w of await this.serially(() => this.store!.writeCheckpoints(stateOf, keep))) {
        if (w.skipped !== undefined) {
          this.o.log?.('warn', `partition ${w.partition}: no checkpoint written: ${w.skipped}`);
          continue;
        }
        this.counters.checkpointsWritten++;
        this.o.log?.('info', `partition ${w.partition}: checkpoint of ${w.entries} state entries (${w.bytes} bytes) at changelog offset ${w.changelogOffset} written`);
      }
    } catch (err) {
      this.o.log?.('warn', `writing checkpoints: ${(err as Error).message}`);
    }
  }

  /**
   * Installs restored engines and moves the consumer to where each one's state ends. The group's
   * committed offset is a floor: every commit came in the transaction that wrote the changelog up
   * to it, so a changelog read that ends before it missed records not yet visible (transaction
   * markers still being written after a broker restart) and is read again. Only a group that
   * committed without a changelog (it ran at-least-once before) is taken as it is, after retries.
   */
  private async adopt(restored: RestoredPartition[], generation: number, acceptBehind: boolean): Promise<void> {
    const committed = await this.admin!.groupOffsets(this.groupId, this.o.inputTopic);
    for (const r of restored) {
      const c = BigInt(committed.get(r.partition) ?? '-1');
      if (c < 0n || (r.position && BigInt(r.position.nextOffset) >= c)) continue;
      const what = `partition ${r.partition}: the changelog ends at ${r.position ? `offset ${r.position.nextOffset}` : 'no position'}, before the group's committed offset ${c}`;
      if (!acceptBehind) throw new Error(`${what}; reading it again`);
      this.o.log?.('warn', `${what}: taken as it is (a group that ran at-least-once before?)`);
    }
    const mine = new Set(restored.map((r) => r.partition));
    for (const p of [...this.parts.keys()]) {
      if (mine.has(p)) continue;
      this.parts.delete(p);
      this.o.observer?.table(p, undefined); // revoked: another member's table now
    }
    const low = restored.some((r) => !r.position) ? new Map((await this.admin!.offsets(this.o.inputTopic)).map((o) => [o.partition, o.low])) : undefined;
    if (generation !== this.generation) return;
    for (const r of restored) {
      const s = this.newState(0n, undefined, r);
      // Without a changelog yet, from the group's committed offset (left by an at-least-once run, say), else the start.
      const fromGroup = committed.get(r.partition);
      s.nextOffset = r.position?.nextOffset ?? (fromGroup !== undefined && BigInt(fromGroup) >= 0n ? fromGroup : low?.get(r.partition) ?? '0');
      this.parts.set(r.partition, s);
      this.o.observer?.table(r.partition, this.o.kind === 'flow-events' ? undefined : s.proc.engine);
      // kafkajs may be ahead (after a failed transaction) or behind (a commit it fetched before the fence): read from the state's end.
      this.consumer?.seek(this.o.inputTopic, r.partition, s.nextOffset);
      this.counters.restores++;
      this.counters.changelogMessagesRead += r.changelogMessages;
      if (r.checkpoint) this.counters.checkpointRestores++;
      const from = r.checkpoint
        ? `the checkpoint at changelog offset ${r.checkpoint.changelogOffset} (${r.checkpoint.entries} entries, written ${(r.checkpoint.ageMs / 1000).toFixed(1)} s ago) and ${r.changelogMessages} changelog messages after it`
        : `${r.changelogMessages} changelog messages (full read of offsets ${r.changelogLow}..${r.changelogHigh}${r.fullRestoreReason && this.o.stateDir ? `: ${r.fullRestoreReason}` : ''})`;
      this.o.log?.('info', `partition ${r.partition}: restored ${r.records.size} state entries from ${from} in ${r.ms} ms; reading from offset ${s.nextOffset}`);
    }
  }

  /**
   * exactly-once: a batch waits until its partition's state is restored for the current
   * generation, heartbeating meanwhile. A heartbeat that reports a rebalance ends the wait with
   * that error, so kafkajs rejoins at once instead of the group waiting for this member.
   */
  private async restored(b: InputBatch): Promise<void> {
    for (let r = this.restoring; r; r = this.restoring) {
      let rebalance: ((err: unknown) => void) | undefined;
      const rebalancing = new Promise<never>((_, reject) => (rebalance = reject));
      const beat = setInterval(() => b.heartbeat().catch((err: unknown) => rebalance?.(err)), 1000);
      try {
        await Promise.race([r.done, rebalancing]);
      } finally {
        clearInterval(beat);
      }
      if (this.restoring === r) return;
    }
  }

  /** Reads the window's offsets; `done` resolves once every partition has been read to its end. */
  private async prepareReplay(): Promise<{ done: Promise<void> }> {
    const admin = this.admin!;
    const offsets = await admin.offsets(this.o.inputTopic);
    const from = this.o.fromMs !== undefined ? await admin.offsetsAt(this.o.inputTopic, this.o.fromMs) : undefined;
    const to = this.o.toMs !== undefined ? await admin.offsetsAt(this.o.inputTopic, this.o.toMs) : undefined;
    const active: number[] = [];
    for (const { partition, low, high } of offsets) {
      const start = BigInt(from?.get(partition) ?? low);
      const toOffset = to?.get(partition);
      const end = toOffset !== undefined && BigInt(toOffset) >= 0n && BigInt(toOffset) < BigInt(high) ? BigInt(toOffset) : BigInt(high);
      const s = this.newState(start < BigInt(low) ? BigInt(low) : start, end);
      s.done = s.start >= s.end;
      this.parts.set(partition, s);
      this.o.observer?.table(partition, this.o.kind === 'flow-events' ? undefined : s.proc.engine);
      if (!s.done) active.push(partition);
    }
    if (this.o.onEvents) this.merge = new EventTimeMerge(active);
    const done = new Promise<void>((resolve) => {
      this.finishReplay = resolve;
      if (active.length === 0) resolve();
    });
    return { done };
  }

  private newState(start = 0n, end = BigInt(Number.MAX_SAFE_INTEGER), restored?: RestoredPartition): PartitionState {
    const observer = this.o.observer;
    const sample: PacketSample = { zone: 0, proto: 0, bytes: 0, ctstate: 'NEW', dir: null };
    const onJudged = observer
      ? (zone: number, proto: number, bytes: number, v: { ctstate: PacketSample['ctstate']; dir: PacketSample['dir']; reason?: string }) => {
          sample.zone = zone;
          sample.proto = proto;
          sample.bytes = bytes;
          sample.ctstate = v.ctstate;
          sample.dir = v.dir;
          sample.reason = v.reason;
          observer.packet(sample);
        }
      : undefined;
    const opts: PartitionProcessorOptions = { sysctl: this.o.sysctl, rules: this.o.rules, activeTimeoutUs: this.o.activeTimeoutUs, verdicts: this.o.outputs.verdicts !== undefined, onJudged, trackState: this.exactlyOnce };
    const proc = restored?.records.size ? PartitionProcessor.restore(opts, restored.records) : new PartitionProcessor(opts);
    return { proc, commit: new CommitPoint(), start, end, done: false, lastPacketUs: restored?.position?.lastPacketUs ?? 0, lastInputWallMs: Date.now(), nextOffset: start.toString(), generation: this.generation };
  }

  /** kafkajs hands a batch over; it goes into the RxJS chain, and the consumer pauses if too much is in flight. */
  private async onBatch(b: InputBatch): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.store) {
      await this.restored(b);
      // The restore moved the partition to where its state ends: a batch fetched from before that is dropped (kafkajs fetches again).
      if (b.isStale()) return;
    }
    if (this.o.mode === 'replay' && this.o.speed) {
      await this.paced(b);
      return;
    }
    await this.enqueue(b);
  }

  /**
   * Hands a batch to the RxJS chain. Past the in-flight bound the consumer is paused and this
   * call waits until the writer has brought in-flight work down to half: kafkajs fetches no more
   * until it returns, so nothing piles up, and there is no fetch sleep to wake from on resume.
   */
  private async enqueue(b: InputBatch): Promise<void> {
    // Stopping: a batch kafkajs fetched before the pause took effect is left unread (exactly-once
    // commits only what it wrote; at-least-once commits before it), so that no transaction starts
    // after the last one (a checkpoint is confirmed by one of its own).
    if (this.stopping) return;
    this.inFlight++;
    this.work.next({ kind: 'batch', batch: b, generation: this.generation });
    const max = this.o.maxInFlightBatches ?? 16;
    if (this.inFlight < max || this.failed) return;
    if (!this.paused) {
      this.paused = true;
      this.counters.pauses++;
      this.consumer?.pause(this.o.inputTopic);
    }
    await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
  }

  /** Resumes fetching once in-flight work is down to half the bound (or on failure, to let kafkajs unwind). */
  private capacity(): void {
    if (!this.paused || (this.inFlight > (this.o.maxInFlightBatches ?? 16) / 2 && !this.failed)) return;
    this.paused = false;
    this.consumer?.resume(this.o.inputTopic);
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    waiters.forEach((w) => w());
  }

  /** Replay at N x real time: hands the batch over in slices, sleeping until each slice's packet time is due. */
  private async paced(b: InputBatch): Promise<void> {
    const speed = this.o.speed!;
    let slice: InputBatch['messages'] = [];
    for (const m of b.messages) {
      if (!this.replayFirst) this.replayFirst = { packetMs: m.timestampMs, wallMs: Date.now() };
      const due = this.replayFirst.wallMs + (m.timestampMs - this.replayFirst.packetMs) / speed;
      const wait = due - Date.now();
      if (wait > 5) {
        if (slice.length) await this.enqueue({ ...b, messages: slice });
        slice = [];
        await new Promise((r) => setTimeout(r, wait));
        await b.heartbeat();
      }
      slice.push(m);
    }
    if (slice.length) await this.enqueue({ ...b, messages: slice });
  }

  /** The synchronous part: decode, run the engine, encode the outputs. */
  private process(w: Work): Written {
    const parts = new Map<number, PartWrite>();
    if (w.kind === 'tick') {
      for (const [p, s] of this.parts) {
        const idleMs = w.wallMs - s.lastInputWallMs;
        if (s.lastPacketUs === 0 || idleMs < (this.o.idleMs ?? 5000) || s.generation !== this.generation) continue;
        s.proc.advanceTo(s.lastPacketUs + idleMs * 1000);
        const out: OutputMessage[] = [];
        this.collect(p, s, out);
        parts.set(p, { messages: out, commit: this.commitOffset(p, s, s.nextOffset, out) });
      }
      return { parts, generation: this.generation, batch: false };
    }
    const b = w.batch;
    const skip: Written = { parts, generation: w.generation, batch: true };
    if (w.generation !== this.generation) return skip; // fetched before a rebalance: kafkajs delivers it again
    let s = this.parts.get(b.partition);
    if (!s || s.generation !== this.generation) {
      // exactly-once: a partition's state comes only from its changelog (onBatch waited for the restore).
      if (this.exactlyOnce) return skip;
      s = this.newState();
      this.parts.set(b.partition, s);
      this.o.observer?.table(b.partition, this.o.kind === 'flow-events' ? undefined : s.proc.engine);
    }
    const t0 = process.hrtime.bigint();
    const packetsBefore = s.proc.packets;
    let messages = 0;
    if (s.done) return skip;
    const enc = this.encoder!;
    const out: OutputMessage[] = [];
    let next = '';
    // One set of handlers per batch, not per message (one frame per message means 300k closures
    // per 300k packets); `m` is the message being decoded.
    let m: InputMessage = b.messages[0];
    const state = s;
    const dead = (reason: string, part?: { frame: number; bytes: Uint8Array }) => {
      this.counters.deadLetters++;
      enc.deadLetter(m, reason, out, part);
      this.o.observer?.deadLetter(b.partition, reason);
    };
    const handlers: InputHandlers = {
      packet: (p) => {
        state.proc.push(p);
        state.lastPacketUs = p.tsUs;
      },
      dead,
      skipped: () => this.counters.skipped++,
    };
    let nextOffset = BigInt(s.nextOffset);
    for (m of b.messages) {
      const offset = BigInt(m.offset);
      // Below the window, or already read: kafkajs delivers a batch again when the consumer is
      // paused and resumed while the batch is still being handled (its offset not yet resolved).
      if (offset < s.start || offset < nextOffset) continue;
      if (offset >= s.end) break;
      this.counters.messages++;
      messages++;
      s.commit.addMessage(s.proc.packets, m.offset);
      if (this.o.kind === 'flow-events') this.readFlowEvent(s, m, dead);
      else decodeInputMessage(this.o.kind, m, handlers, this.o.zoneOf);
      nextOffset = offset + 1n;
      if (nextOffset >= s.end) {
        s.done = true;
        s.proc.end();
      }
    }
    if (messages > 0) {
      next = nextOffset.toString();
      s.nextOffset = next;
    }
    s.lastInputWallMs = Date.now();
    this.counters.packets = 0;
    for (const st of this.parts.values()) this.counters.packets += st.proc.packets;
    this.collect(b.partition, s, out);
    parts.set(b.partition, { messages: out, commit: next ? this.commitOffset(b.partition, s, next, out) : undefined });
    this.counters.batches++;
    this.o.observer?.batch({
      partition: b.partition,
      messages,
      packets: s.proc.packets - packetsBefore,
      processingSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
      nextOffset: s.nextOffset,
      highWatermark: b.highWatermark,
      packetClockUs: s.lastPacketUs || undefined,
    });
    if (s.done && this.o.mode === 'replay') this.replayPartitionDone(b.partition);
    return { parts, generation: w.generation, batch: true };
  }

  /**
   * The offset to commit once `out` is written. exactly-once: the next offset, since the state's
   * changes go out with it (appended to `out` here); at-least-once: the oldest open flow's first
   * message, since the state lives only in memory.
   */
  private commitOffset(partition: number, s: PartitionState, next: string, out: OutputMessage[]): string {
    if (!this.store) return s.commit.safeOffset(s.proc.oldestOpenPacket(), s.proc.packets, next);
    this.store.changelog(partition, s.proc.stateChanges(), { nextOffset: next, lastPacketUs: s.lastPacketUs }, out);
    return next;
  }

  /**
   * One conntrack event from a host: the host is the `ctflow-host` header, else the message key
   * (agents key by host so a host's events stay in order on one partition).
   */
  private readFlowEvent(s: PartitionState, m: InputMessage, dead: (reason: string) => void): void {
    if (m.value === null) {
      dead('message has no value (a tombstone) on an input topic');
      return;
    }
    const host = m.headers['ctflow-host'] ?? (m.key && m.key.length ? m.key.toString('utf8') : undefined);
    try {
      const e = parseFlowEventMessage(m.value.toString('utf8'), { host });
      s.fleet ??= new FleetProcessor();
      s.fleet.apply(e, m.timestampMs * 1000);
      s.lastPacketUs = Math.max(s.lastPacketUs, e.tsUs ?? m.timestampMs * 1000);
    } catch (err) {
      if (err instanceof FlowEventFormatError) dead(err.message);
      else throw err;
    }
  }

  private collect(partition: number, s: PartitionState, out: OutputMessage[]): void {
    const r = s.proc.drain();
    if (s.fleet) {
      const f = s.fleet.drain();
      r.events.push(...f.events);
      r.records.push(...f.records);
      this.counters.skipped += f.ignored.length;
    }
    const enc = this.encoder!;
    if (r.events.length) this.o.observer?.events(partition, r.events);
    enc.transitions(r.events, partition, out);
    enc.invalid(r.invalid, partition, out);
    this.counters.invalid += r.invalid.length;
    enc.flowRecords(r.records, partition, out);
    enc.verdicts(r.verdicts, partition, out);
    this.counters.events += r.events.length;
    this.counters.flowRecords += r.records.length;
    if (this.o.onEvents && r.events.length) {
      if (this.merge) this.o.onEvents(this.merge.push(partition, r.events, s.lastPacketUs));
      else this.o.onEvents(r.events);
    } else if (this.merge) {
      const released = this.merge.push(partition, [], s.lastPacketUs);
      if (released.length) this.o.onEvents?.(released);
    }
  }

  private replayPartitionDone(partition: number): void {
    if (this.merge) {
      const released = this.merge.finish(partition);
      if (released.length) this.o.onEvents?.(released);
    }
    if ([...this.parts.values()].every((s) => s.done)) this.finishReplay?.();
  }

  /** Starts the writer if it is idle: one write at a time, so outputs keep input order. */
  private pump(): void {
    if (this.writing) return;
    if (this.writeQueue.length === 0) {
      if (this.inputDone) this.writer?.resolve();
      return;
    }
    this.writing = true;
    const items = this.writeQueue;
    this.writeQueue = [];
    this.write(items).then(
      () => {
        this.writing = false;
        this.pump();
      },
      (err: Error) => {
        this.writing = false;
        this.failed = err;
        this.capacity();
        this.writer?.reject(err);
      },
    );
  }

  /**
   * The asynchronous part: everything processed since the last write goes out in one produce
   * request (in order; the client splits it under Kafka's batch limit), then the commits of
   * those batches apply. One request per input batch left the producer waiting on acks=all
   * round trips while batches queued up. exactly-once: one transaction per input partition.
   */
  private async write(items: Written[]): Promise<void> {
    if (this.store) {
      await this.writeTransactions(items);
    } else {
      // Plain loops: flatMap copied each of the ~1.5 messages per packet through a generic
      // element-by-element path (3% of a live pipeline's CPU with verdicts on).
      const messages: OutputMessage[] = [];
      for (const w of items) for (const pw of w.parts.values()) for (const m of pw.messages) messages.push(m);
      await this.producer!.send(messages);
      for (const w of items) {
        if (this.o.mode === 'live' && w.generation === this.generation) for (const [p, pw] of w.parts) if (pw.commit !== undefined) this.pendingCommits.set(p, pw.commit);
      }
    }
    for (const w of items) if (w.batch) this.inFlight--;
    if (this.o.mode === 'live' && !this.store) await this.commitNow(false);
    this.capacity();
  }

  /**
   * exactly-once: each partition's outputs, changelog and next offset in one transaction, the
   * partitions side by side. Work of an earlier generation is dropped unwritten: its state was
   * thrown away and the partition restored from what was committed, from where it re-reads. A
   * failed transaction (broker gone, producer fenced) does the same for every partition instead
   * of stopping: the changelog and the committed offsets still agree.
   */
  private async writeTransactions(items: Written[]): Promise<void> {
    const byPartition = new Map<number, PartWrite>();
    for (const w of items) {
      if (w.generation !== this.generation) continue;
      for (const [p, pw] of w.parts) {
        const acc = byPartition.get(p);
        if (!acc) byPartition.set(p, { messages: [...pw.messages], commit: pw.commit });
        else {
          for (const m of pw.messages) acc.messages.push(m);
          if (pw.commit !== undefined) acc.commit = pw.commit;
        }
      }
    }
    const generation = this.generation;
    try {
      await Promise.all([...byPartition].filter(([, pw]) => pw.commit !== undefined).map(([p, pw]) => this.store!.commit(p, pw.messages, pw.commit!)));
      if (byPartition.size) this.counters.commits++;
    } catch (err) {
      if (this.stopping) throw err;
      this.counters.recoveries++;
      this.o.log?.('warn', `${(err as Error).message}; restoring the partitions from the changelog and reading on from the last commit`);
      if (generation === this.generation) {
        this.generation++;
        this.startRestore();
      }
    }
  }

  private async commitNow(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastCommitMs < (this.o.commitIntervalMs ?? 1000)) return;
    if (this.pendingCommits.size === 0 || !this.consumer) return;
    this.lastCommitMs = now;
    const offsets = new Map(this.pendingCommits);
    this.pendingCommits.clear();
    await this.consumer.commit(this.o.inputTopic, offsets);
    this.counters.commits++;
  }
}
