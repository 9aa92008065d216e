/**
 * report --topic --workers N: a captured-traffic topic's window as every share reads it. The
 * partitions' messages cross once, packed into memory all shares read (never copied per worker);
 * each share merges them by packet time as one thread does (ingest/kafka/mergedFrames.ts), so
 * frames, packet numbers, zones and bad messages are the same in every share, then judges the
 * packets of its own flows and only moves its clock on the others' (as ownedPackets.ts does for a
 * capture). Every share decodes every frame: the same report, not a faster one.
 */
import type { InputMessage } from '../../kafka/client';
import { mergedTopicPackets } from '../../ingest/kafka/mergedFrames';
import type { ZonedCapturedPacket } from '../../ingest/kafka/mergedFrames';
import type { PacketStream, ReadSummary } from '../../ingest/packetSource';
import { flowKeyOf } from '../../processors/conntrack/engine';
import { zoneResolver } from '../../processors/zones';
import type { ZonePolicy } from '../../processors/zones';
import { packInput, unpackInput } from './partitionMessages';
import type { PackedInput } from './partitionMessages';
import type { OwnedPacketSink } from './ownedPackets';

/** A topic window, as the shares are given it. */
export interface TopicShareInput {
  topic: string;
  /** Each partition's messages, their payloads in a SharedArrayBuffer. */
  partitions: Array<{ partition: number; packed: PackedInput }>;
  fromUs?: number;
  toUs?: number;
  /** The zone policy the packets' zones come from (a function cannot cross threads). */
  zones: ZonePolicy;
}

export function topicShareInput(topic: string, partitions: ReadonlyArray<{ partition: number; messages: readonly InputMessage[] }>, window: { fromUs?: number; toUs?: number }, zones: ZonePolicy): TopicShareInput {
  return {
    topic,
    partitions: partitions.map(({ partition, messages }) => {
      const packed = packInput(topic, partition, messages);
      const shared = new SharedArrayBuffer(packed.bytes.byteLength);
      new Uint8Array(shared).set(new Uint8Array(packed.bytes));
      return { partition, packed: { ...packed, bytes: shared } };
    }),
    ...window,
    zones,
  };
}

/** The window's packets in one thread's merged order, each with its zone. */
export function topicPackets(input: TopicShareInput): PacketStream {
  const partitions = input.partitions.map(({ partition, packed }) => ({ partition, messages: unpackInput(packed) }));
  return mergedTopicPackets(partitions, { topic: input.topic, fromUs: input.fromUs, toUs: input.toUs, zoneOf: zoneResolver(input.zones, input.topic) });
}

/** The packets of one share's flows, and the others' places, as OwnedPacketReader gives a capture's. */
export class OwnedTopicPacketReader {
  private readonly packets: PacketStream;
  private ended = false;

  constructor(input: TopicShareInput, private readonly o: { worker: number; workers: number }, private readonly sink: OwnedPacketSink) {
    this.packets = topicPackets(input);
  }

  get summary(): ReadSummary {
    return this.packets.summary;
  }

  /** Reads at least `count` more packets (or to the end); false once the window has ended. */
  read(count = Infinity): boolean {
    if (this.ended) return false;
    for (let n = 0; n < count; n++) {
      const next = this.packets.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const p = next.value as ZonedCapturedPacket;
      if (flowKeyOf(p.ip, p.zone) % this.o.workers === this.o.worker) this.sink.own(p);
      else this.sink.foreign(p.index, p.tsUs);
    }
    return true;
  }
}
