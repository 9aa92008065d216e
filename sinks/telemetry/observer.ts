/**
 * The contract between a pipeline and whatever watches it (Prometheus, OpenTelemetry, the live
 * API). A pipeline calls these as it works; it never learns what is behind them, so the
 * processors stay free of metrics libraries and the watchers stay free of Kafka and pcap.
 *
 * Two pipelines call it: the in-process capture replay (one "partition", 0, whose messages are
 * the capture's frames) and the Kafka StreamPipeline (one call per input partition).
 */
import type { CtState, CtStats, Direction, FlowEvent, FlowRecord } from '../../processors/flow';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import type { TableAnswer, TableRequest } from './tableRequests';

/**
 * One judged packet. Callers may reuse one object for every call: observers read it during the
 * call and keep nothing of it.
 */
export interface PacketSample {
  zone: number;
  /** IP protocol number (after IPv6 extension headers). */
  proto: number;
  /** The IP datagram's length: what conntrack's byte counters count. */
  bytes: number;
  ctstate: CtState;
  dir: Direction | null;
  /** INVALID only: the machine-readable cause (tcp_out_of_window, ...). */
  reason?: string;
}

/** One input batch, after its packets went through the engine and its outputs were encoded. */
export interface BatchSample {
  partition: number;
  /** Input messages in the batch (Kafka messages; frames for a capture). */
  messages: number;
  /** IP packets they carried. */
  packets: number;
  /** Wall time spent decoding, tracking and encoding the batch. */
  processingSeconds: number;
  /** The offset after the batch's last message (what a commit would store). */
  nextOffset?: string;
  /** The partition's high watermark when the batch was fetched: consumer lag = highWatermark - nextOffset. */
  highWatermark?: string;
  /** The partition's packet clock after the batch (µs since the epoch): event-time lag = wall clock - this. */
  packetClockUs?: number;
}

/**
 * What the observers may read of a partition's flow table. ConntrackEngine has this shape, so a
 * pipeline passes its engine itself; reads happen between batches, never during one.
 */
export interface TableView {
  list(): FlowRecord[];
  stats(): CtStats;
  readonly count: number;
  readonly sysctl: Sysctl;
}

/**
 * A partition's table held in another thread: read by asking its source, which answers for the
 * partitions named (each source holds some partitions' tables, and answers them in one reply).
 */
export interface RemoteTable {
  readonly sysctl: Sysctl;
  readonly source: TableSource;
}

export interface TableSource {
  ask<R extends TableRequest>(partitions: readonly number[], request: R): Promise<TableAnswer<R>>;
}

export const isRemote = (view: TableView | RemoteTable): view is RemoteTable => 'source' in view;

export interface PipelineObserver {
  /** Every IP packet, once judged (in the order verdicts come out). */
  packet(p: PacketSample): void;
  /** A partition's transitions (NEW, UPDATE, DESTROY), in the order the engine made them. */
  events(partition: number, events: readonly FlowEvent[]): void;
  batch(b: BatchSample): void;
  /** A message sent to the dead-letter topic (or a capture frame that could not be decoded). */
  deadLetter(partition: number, reason: string): void;
  /** A partition's table appeared (or was replaced after a rebalance); undefined: the partition was revoked. */
  table(partition: number, view: TableView | RemoteTable | undefined): void;
}

/** Several observers behind one; each call goes to all of them, in order. */
export function fanOut(...observers: PipelineObserver[]): PipelineObserver {
  return {
    packet: (p) => observers.forEach((o) => o.packet(p)),
    events: (partition, events) => observers.forEach((o) => o.events(partition, events)),
    batch: (b) => observers.forEach((o) => o.batch(b)),
    deadLetter: (partition, reason) => observers.forEach((o) => o.deadLetter(partition, reason)),
    table: (partition, view) => observers.forEach((o) => o.table(partition, view)),
  };
}
