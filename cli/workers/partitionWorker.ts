/**
 * A partition worker thread of the Kafka pipeline (partitionWorkers.ts): holds the engines of
 * the input partitions given to it and runs their batches and ticks (partitionRun.ts), replying
 * with each step's outputs packed into transferred buffers (partitionMessages.ts), and answers
 * the live API's and the table metrics' reads of those partitions' tables when asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OutputEncoder } from '../../sinks/kafka/outputTopics';
import { zoneResolver } from '../../processors/zones';
import { PartitionRun } from './partitionRun';
import type { PartitionRunConfig, PartitionStep } from './partitionRun';
import { packOutput, packRecords, transferOutput, transferRecords, unpackInput, unpackRecords } from './partitionMessages';
import type { PartitionReply, PartitionRequest, PartitionWorkerSetup, RemoteStep } from './partitionProtocol';
import { SampleLog } from './partitionProtocol';
import { answerTables } from '../../sinks/telemetry/tableRequests';
import type { TableView } from '../../sinks/telemetry/observer';

const setup = workerData as PartitionWorkerSetup;
const samples = setup.samples ? new SampleLog() : undefined;
const config: PartitionRunConfig = {
  kind: setup.kind,
  sysctl: setup.sysctl,
  rules: setup.rules,
  activeTimeoutUs: setup.activeTimeoutUs,
  verdicts: setup.verdicts,
  changelog: setup.changelog,
  zoneOf: setup.zones ? zoneResolver(setup.zones.policy, setup.zones.topic) : undefined,
  encoder: new OutputEncoder(setup.outputs, setup.outputPartitions),
  onJudged: samples?.add,
};
const runs = new Map<number, PartitionRun>();
/** Why a partition's engine could not be built (a restore that failed), for its next request to say. */
const unopened = new Map<number, string>();

function runOf(partition: number): PartitionRun {
  const r = runs.get(partition);
  if (!r) throw new Error(unopened.get(partition) ?? `partition ${partition} is not open in this worker`);
  return r;
}

/** Posts a step with its buffers moved, not copied. */
function reply(id: number, step: PartitionStep | undefined): void {
  if (!step) {
    parentPort!.postMessage({ id } satisfies PartitionReply);
    return;
  }
  const { messages, stateChanges, ...rest } = step;
  const remote: RemoteStep = { ...rest, events: setup.events ? rest.events : [], output: packOutput(messages), stateChanges: stateChanges && packRecords(stateChanges.map((r) => [r.key, r.value])), samples: samples?.take() };
  const transfer = [...transferOutput(remote.output), ...(remote.stateChanges ? transferRecords(remote.stateChanges) : [])];
  if (remote.samples) transfer.push(remote.samples.kindOf.buffer as ArrayBuffer, remote.samples.bytes.buffer as ArrayBuffer);
  parentPort!.postMessage({ id, step: remote } satisfies PartitionReply, transfer);
}

function handle(r: PartitionRequest): void {
  switch (r.op) {
    case 'open':
      runs.delete(r.partition);
      unopened.delete(r.partition);
      try {
        runs.set(r.partition, new PartitionRun(r.partition, config, { start: r.start, end: r.end, nextOffset: r.nextOffset, lastPacketUs: r.lastPacketUs, records: r.records && new Map(unpackRecords(r.records) as Array<[string, Uint8Array]>) }));
      } catch (err) {
        unopened.set(r.partition, `building its engine: ${(err as Error).message}`);
        throw err;
      }
      parentPort!.postMessage({ id: r.id } satisfies PartitionReply);
      return;
    case 'batch':
      reply(r.id, runOf(r.input.partition).batch(unpackInput(r.input)));
      return;
    case 'tick':
      reply(r.id, runOf(r.partition).tick(r.idleMs));
      return;
    case 'snapshot': {
      const s = runOf(r.partition).snapshot();
      const packed = s && packRecords(s);
      parentPort!.postMessage({ id: r.id, snapshot: packed } satisfies PartitionReply, packed ? transferRecords(packed) : []);
      return;
    }
    case 'close':
      runs.delete(r.partition);
      parentPort!.postMessage({ id: r.id } satisfies PartitionReply);
      return;
    case 'ready':
      parentPort!.postMessage({ id: r.id } satisfies PartitionReply);
      return;
    case 'tables': {
      // A partition whose engine could not be built has no table; its next batch reports why.
      const tables: Array<[number, TableView]> = [];
      for (const p of r.partitions) {
        const run = runs.get(p);
        if (run) tables.push([p, run.proc.engine]);
      }
      parentPort!.postMessage({ id: r.id, tables: answerTables(tables, r.request) } satisfies PartitionReply);
    }
  }
}

parentPort!.on('message', (r: PartitionRequest) => {
  try {
    handle(r);
  } catch (err) {
    parentPort!.postMessage({ id: r.id, error: (err as Error).message ?? String(err) } satisfies PartitionReply);
  }
});
