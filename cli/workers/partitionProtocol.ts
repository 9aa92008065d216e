/**
 * What the Kafka pipeline and its partition workers (partitionWorker.ts, partitionWorkers.ts) say
 * to each other. Every request carries an id and gets one reply; a worker handles its requests in
 * the order they were posted, so a partition's batches, ticks and snapshots happen in order.
 */
import type { Sysctl } from '../../processors/conntrack/sysctl';
import type { ConntrackRules } from '../../processors/conntrack/rules';
import type { CtState, Direction } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ZonePolicy } from '../../processors/zones';
import type { InputKind } from '../../ingest/kafka/inputMessages';
import type { OutputPartitions, OutputTopicNames } from '../../sinks/kafka/outputTopics';
import type { PacketSample, PipelineObserver } from '../../sinks/telemetry/observer';
import type { TableAnswer, TableRequest } from '../../sinks/telemetry/tableRequests';
import type { PackedInput, PackedOutput, PackedRecords } from './partitionMessages';
import type { PartitionStep } from './partitionRun';

/** Everything a worker needs to build engines and encode outputs as the pipeline's own thread would. */
export interface PartitionWorkerSetup {
  worker: number;
  kind: InputKind | 'flow-events';
  sysctl: Sysctl;
  rules?: ConntrackRules;
  activeTimeoutUs: number;
  verdicts: boolean;
  changelog: boolean;
  /** The zone policy and input topic the pipeline's zoneOf was made from (a function cannot cross threads). */
  zones?: { policy: ZonePolicy; topic: string };
  outputs: OutputTopicNames;
  outputPartitions: OutputPartitions;
  /** Send the judged packets' samples back (a metrics observer watches). */
  samples: boolean;
  /** Send the transitions back as objects (for --events-out or an observer); the output topics get them as bytes anyway. */
  events: boolean;
}

export type PartitionRequest =
  | { op: 'open'; id: number; partition: number; start: bigint; end: bigint; nextOffset: string; lastPacketUs: number; records?: PackedRecords }
  | { op: 'batch'; id: number; input: PackedInput }
  | { op: 'tick'; id: number; partition: number; idleMs: number }
  | { op: 'snapshot'; id: number; partition: number }
  | { op: 'close'; id: number; partition: number }
  /** Answered once the worker has loaded its modules and listens: the pipeline waits for it before taking partitions. */
  | { op: 'ready'; id: number }
  /** The live API or the table metrics read these partitions' tables (answered between batches). */
  | { op: 'tables'; id: number; partitions: number[]; request: TableRequest };

/** A PartitionStep as it crosses: outputs, state changes and samples packed. */
export type RemoteStep = Omit<PartitionStep, 'messages' | 'stateChanges'> & {
  output: PackedOutput;
  stateChanges?: PackedRecords;
  samples?: PackedSamples;
};

export type PartitionReply =
  | { id: number; step?: RemoteStep; snapshot?: PackedRecords; tables?: TableAnswer<TableRequest> }
  | { id: number; error: string };

/** The judged packets of one step, in order: each one's sample kind and size. */
export interface PackedSamples {
  kinds: Array<Omit<PacketSample, 'bytes'>>;
  kindOf: Int32Array;
  bytes: Int32Array;
}

const CTSTATES: CtState[] = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'];

/**
 * Notes what an observer's packet() would have been told, in a worker: a packet is its kind
 * (zone, protocol, ctstate, direction, INVALID reason) as an index and its size, so a batch's
 * samples cross as two typed arrays and the pipeline replays them to its observer in order.
 */
export class SampleLog {
  private kinds: Array<Omit<PacketSample, 'bytes'>> = [];
  private index = new Map<number | string, number>();
  private kindOf: number[] = [];
  private bytes: number[] = [];

  readonly add = (zone: number, proto: number, bytes: number, v: PacketVerdict): void => {
    const state = CTSTATES.indexOf(v.ctstate);
    const key = v.reason !== undefined ? `${zone}/${proto}/${state}/${v.dir}/${v.reason}` : ((zone * 256 + proto) * 8 + state) * 3 + (v.dir === null ? 0 : v.dir === 'original' ? 1 : 2);
    let k = this.index.get(key);
    if (k === undefined) {
      k = this.kinds.push({ zone, proto, ctstate: v.ctstate, dir: v.dir as Direction | null, reason: v.reason }) - 1;
      this.index.set(key, k);
    }
    this.kindOf.push(k);
    this.bytes.push(bytes);
  };

  /** What was noted since the last take (kinds are numbered afresh each time). */
  take(): PackedSamples {
    const p = { kinds: this.kinds, kindOf: Int32Array.from(this.kindOf), bytes: Int32Array.from(this.bytes) };
    this.kinds = [];
    this.index = new Map();
    this.kindOf = [];
    this.bytes = [];
    return p;
  }
}

/** Tells the observer of every packet the samples hold, as the pipeline's own engine would have. */
export function replaySamples(s: PackedSamples, observer: PipelineObserver): void {
  const sample: PacketSample = { zone: 0, proto: 0, bytes: 0, ctstate: 'NEW', dir: null };
  for (let i = 0; i < s.kindOf.length; i++) {
    const k = s.kinds[s.kindOf[i]];
    sample.zone = k.zone;
    sample.proto = k.proto;
    sample.ctstate = k.ctstate;
    sample.dir = k.dir;
    sample.reason = k.reason;
    sample.bytes = s.bytes[i];
    observer.packet(sample);
  }
}
