/**
 * `workers: N` for the Kafka pipeline (cli/streamPipeline.ts): N threads, each holding the
 * engines of the input partitions p with p % N equal to its number, while this member owns them.
 * The pipeline keeps kafkajs, backpressure, write order, transactions and commits; it posts each
 * fetched batch to its partition's worker as one transferred buffer and gets a promise of the
 * step (outputs, commit offset, counts). A partition's requests are handled in the order posted,
 * so its outputs are the ones one thread makes; different partitions run side by side.
 *
 * A worker that throws fails the request with its number and the partition; a worker that dies
 * fails every request it held and every later one, so nothing waits on it.
 *
 * Each thread is also the TableSource of its partitions' tables: the live API and the table
 * metrics ask it when they read (one request for all its partitions, answered between batches),
 * so nothing crosses for them while nobody reads. A read that a dead worker cannot answer, or
 * that waits longer than tableTimeoutMs behind the batches queued before it, fails with a
 * TableReadError naming the worker.
 */
import type { Worker } from 'node:worker_threads';
import type { InputMessage } from '../../kafka/client';
import { startWorker } from './captureWorkers';
import { packInput, packRecords, transferInput, transferRecords, unpackOutput, unpackRecords } from './partitionMessages';
import type { PackedSamples, PartitionReply, PartitionRequest, PartitionWorkerSetup, RemoteStep } from './partitionProtocol';
import type { PartitionStart, PartitionStep } from './partitionRun';
import type { TableSource } from '../../sinks/telemetry/observer';
import { TableReadError } from '../../sinks/telemetry/tableRequests';
import type { TableAnswer, TableRequest } from '../../sinks/telemetry/tableRequests';

/** How long a table read waits for a worker's answer by default. */
export const TABLE_TIMEOUT_MS = 15_000;

/** A step from a worker: the samples of its judged packets come along for the pipeline's observer. */
export type WorkerStep = PartitionStep & { samples?: PackedSamples };

type Request = PartitionRequest extends infer R ? (R extends PartitionRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  partition: number;
  resolve(reply: PartitionReply): void;
  reject(err: Error): void;
}

class PartitionThread implements TableSource {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private dead?: Error;
  private stopping = false;

  constructor(readonly index: number, setup: PartitionWorkerSetup, private readonly tableTimeoutMs: number) {
    this.worker = startWorker(setup, 'partitionWorker');
    this.worker.on('message', (r: PartitionReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if ('error' in r) p.reject(new Error(`partition worker ${this.index}, partition ${p.partition}: ${r.error}`));
      else p.resolve(r);
    });
    this.worker.on('error', (err) => this.die(`failed: ${err.message}`));
    this.worker.on('exit', (code) => this.die(`exited with code ${code}`));
  }

  /** Posts a request; with `late`, it fails with late() if no reply came within `ms` (a reply after that is dropped). */
  request(partition: number, r: Request, transfer: ArrayBuffer[] = [], late?: { ms: number; error(): Error }): Promise<PartitionReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!late) {
        this.pending.set(id, { partition, resolve, reject });
      } else {
        const timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(late.error());
        }, late.ms);
        const settled = <T>(f: (v: T) => void) => (v: T) => {
          clearTimeout(timer);
          f(v);
        };
        this.pending.set(id, { partition, resolve: settled(resolve), reject: settled(reject) });
      }
      this.worker.postMessage({ ...r, id }, transfer);
    });
  }

  async ask<R extends TableRequest>(partitions: readonly number[], request: R): Promise<TableAnswer<R>> {
    const what = `partition worker ${this.index} (partition${partitions.length > 1 ? 's' : ''} ${partitions.join(',')})`;
    const late = { ms: this.tableTimeoutMs, error: () => new TableReadError(`${what} did not answer a table read within ${this.tableTimeoutMs} ms`) };
    try {
      const r = await this.request(partitions[0], { op: 'tables', partitions: [...partitions], request }, [], late);
      if (!('tables' in r) || r.tables === undefined) throw new Error('it answered without tables');
      return r.tables as TableAnswer<R>;
    } catch (err) {
      if (err instanceof TableReadError) throw err;
      throw new TableReadError(`cannot read the tables of ${what}: ${(err as Error).message}`);
    }
  }

  private die(why: string): void {
    if (this.dead) return;
    const held = [...new Set([...this.pending.values()].map((p) => p.partition))];
    this.dead = new Error(`partition worker ${this.index} ${why}${held.length ? ` while handling partition${held.length > 1 ? 's' : ''} ${held.join(',')}` : ''}`);
    if (this.stopping) return;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.worker.terminate();
    const stopped = new Error(`partition worker ${this.index} stopped`);
    this.dead = stopped;
    for (const p of this.pending.values()) p.reject(stopped);
    this.pending.clear();
  }
}

export class PartitionWorkers {
  private readonly threads: PartitionThread[];

  constructor(count: number, setup: Omit<PartitionWorkerSetup, 'worker'>, tableTimeoutMs = TABLE_TIMEOUT_MS) {
    this.threads = Array.from({ length: count }, (_, k) => new PartitionThread(k, { ...setup, worker: k }, tableTimeoutMs));
  }

  /**
   * Resolves once every thread has loaded its modules and answers (rejects if one failed to
   * start). A pipeline waits for this before it joins its group, so its first batches do not queue
   * behind a thread still loading, and a thread that cannot start fails the start, by name,
   * before any partition is taken.
   */
  async ready(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.request(-1, { op: 'ready' })));
  }

  /** Where the partition's table is read (its thread, which answers for all its partitions at once). */
  tablesOf(partition: number): TableSource {
    return this.of(partition);
  }

  private of(partition: number): PartitionThread {
    return this.threads[partition % this.threads.length];
  }

  /** Builds the partition's engine in its worker (exactly-once: from the restored state), replacing any it had. */
  open(partition: number, at: PartitionStart): Promise<void> {
    const records = at.records && packRecords(at.records);
    const r = { op: 'open' as const, partition, start: at.start, end: at.end, nextOffset: at.nextOffset, lastPacketUs: at.lastPacketUs, records };
    return this.of(partition).request(partition, r, records ? transferRecords(records) : []).then(() => undefined);
  }

  /** The partition's engine is dropped (revoked by a rebalance). */
  close(partition: number): Promise<void> {
    return this.of(partition).request(partition, { op: 'close', partition }).then(() => undefined);
  }

  async batch(topic: string, partition: number, messages: readonly InputMessage[]): Promise<WorkerStep | undefined> {
    const input = packInput(topic, partition, messages);
    return stepOf(await this.of(partition).request(partition, { op: 'batch', input }, transferInput(input)));
  }

  async tick(partition: number, idleMs: number): Promise<WorkerStep | undefined> {
    return stepOf(await this.of(partition).request(partition, { op: 'tick', partition, idleMs }));
  }

  /** exactly-once: the partition's whole state, for a checkpoint. */
  async snapshot(partition: number): Promise<Map<string, Uint8Array> | undefined> {
    const r = await this.of(partition).request(partition, { op: 'snapshot', partition });
    return 'snapshot' in r && r.snapshot ? new Map(unpackRecords(r.snapshot) as Array<[string, Uint8Array]>) : undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop()));
  }
}

function stepOf(r: PartitionReply): WorkerStep | undefined {
  if (!('step' in r) || !r.step) return undefined;
  const { output, stateChanges, ...rest }: RemoteStep = r.step;
  return { ...rest, messages: unpackOutput(output), stateChanges: stateChanges && unpackRecords(stateChanges).map(([key, value]) => ({ key, value })) };
}
