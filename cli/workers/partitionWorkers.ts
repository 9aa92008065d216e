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
 */
import type { Worker } from 'node:worker_threads';
import type { InputMessage } from '../../kafka/client';
import { startWorker } from './captureWorkers';
import { packInput, packRecords, transferInput, transferRecords, unpackOutput, unpackRecords } from './partitionMessages';
import type { PackedSamples, PartitionReply, PartitionRequest, PartitionWorkerSetup, RemoteStep } from './partitionProtocol';
import type { PartitionStart, PartitionStep } from './partitionRun';

/** A step from a worker: the samples of its judged packets come along for the pipeline's observer. */
export type WorkerStep = PartitionStep & { samples?: PackedSamples };

type Request = PartitionRequest extends infer R ? (R extends PartitionRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  partition: number;
  resolve(reply: PartitionReply): void;
  reject(err: Error): void;
}

class PartitionThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private dead?: Error;
  private stopping = false;

  constructor(readonly index: number, setup: PartitionWorkerSetup) {
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

  request(partition: number, r: Request, transfer: ArrayBuffer[] = []): Promise<PartitionReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { partition, resolve, reject });
      this.worker.postMessage({ ...r, id }, transfer);
    });
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

  constructor(count: number, setup: Omit<PartitionWorkerSetup, 'worker'>) {
    this.threads = Array.from({ length: count }, (_, k) => new PartitionThread(k, { ...setup, worker: k }));
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
