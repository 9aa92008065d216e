/**
 * A captured-traffic topic's messages, read partition by partition, as one packet stream in
 * packet-time order: what a capture file gives readPackets(), so one engine can replay a topic
 * and judge every packet as it judges the capture the topic was produced from.
 *
 * Why merge: a topic keyed by flow has each flow in one partition, in order, but the engine's
 * clock is packet time across all flows (timeouts, the report's time series), so partitions are
 * interleaved by frame time: at each step the partition whose next frame is earliest goes next
 * (ties by partition number; a flow's own frames never tie across partitions). Within a partition
 * the message order is kept, as within a capture the file order is.
 *
 * Frames are numbered in that merged order, counting non-IP and bad frames as a capture reader
 * counts them, so a topic produced from a time-ordered capture gives each frame its file number.
 * A message that cannot be read at all (no "CTFB" magic, truncated batch, bad headers, a
 * tombstone) is listed as a bad frame numbered -1 with its topic, partition and offset.
 */
import type { InputMessage } from '../../kafka/client';
import type { CapturedPacket } from '../../processors/packet';
import type { ZoneOf } from '../../processors/zones';
import { decodeFrame } from '../decode/index';
import type { PacketStream, ReadSummary } from '../packetSource';
import { decodeCapturedTraffic, messageZone, TopicFormatError } from './capturedTraffic';
import type { TopicFrame } from './capturedTraffic';

/** A topic packet: the zone is decided at decode time, where the message's header is known. */
export type ZonedCapturedPacket = CapturedPacket & { zone: number };

export interface MergeOptions {
  topic: string;
  /** Only frames with packet time in [fromUs, toUs) are read (the --from/--to window). */
  fromUs?: number;
  toUs?: number;
  /** The packet's zone from its interface, VLAN, the message's zone header or the topic. */
  zoneOf: ZoneOf;
}

/** One partition's messages being walked: the current message's frames, decoded when it is reached. */
class PartitionCursor {
  private next = 0;
  frames: TopicFrame[] = [];
  frame = 0;
  headerZone: number | undefined;
  message: InputMessage | undefined;
  /** Why the current message could not be read, if it could not. */
  problem: string | undefined;

  constructor(private readonly messages: readonly InputMessage[]) {
    this.advance();
  }

  get done(): boolean {
    return this.message === undefined;
  }

  /** The time that orders this partition's next item: its next frame's, or a bad message's own timestamp. */
  get headUs(): number {
    return this.problem === undefined ? this.frames[this.frame].tsUs : this.message!.timestampMs * 1000;
  }

  /** Moves to the next frame, reading the next message when this one is used up. */
  step(): void {
    if (this.problem === undefined && ++this.frame < this.frames.length) return;
    this.advance();
  }

  private advance(): void {
    for (;;) {
      this.message = this.messages[this.next++];
      this.frames = [];
      this.frame = 0;
      this.problem = undefined;
      const m = this.message;
      if (m === undefined) return;
      if (m.value === null) {
        this.problem = 'message has no value (a tombstone) on a captured-traffic topic';
        return;
      }
      try {
        this.headerZone = messageZone(m.headers);
        this.frames = decodeCapturedTraffic(m.value, m.headers, m.timestampMs);
      } catch (err) {
        if (!(err instanceof TopicFormatError)) throw err;
        this.problem = err.message;
        return;
      }
      if (this.frames.length) return; // an empty batch has nothing to merge: the next message
    }
  }
}

/**
 * The packets of `partitions` (each a partition's messages in offset order) merged into packet
 * time; the summary counts frames, non-IP frames and bad frames and messages as a capture's does.
 */
export function mergedTopicPackets(partitions: ReadonlyArray<{ partition: number; messages: readonly InputMessage[] }>, o: MergeOptions): PacketStream {
  const summary: ReadSummary = { frames: 0, ipPackets: 0, nonIp: 0, malformed: [] };
  const fromUs = o.fromUs ?? -Infinity;
  const toUs = o.toUs ?? Infinity;
  const cursors = [...partitions].sort((a, b) => a.partition - b.partition).map((p) => ({ partition: p.partition, cursor: new PartitionCursor(p.messages) }));

  function* run(): Generator<CapturedPacket, ReadSummary, undefined> {
    for (;;) {
      // The earliest head; a linear scan, as topics have tens of partitions, not thousands.
      let pick: (typeof cursors)[number] | undefined;
      for (const c of cursors) if (!c.cursor.done && (pick === undefined || c.cursor.headUs < pick.cursor.headUs)) pick = c;
      if (pick === undefined) return summary;
      const c = pick.cursor;
      const m = c.message!;
      const at = { topic: o.topic, partition: pick.partition, offset: m.offset };
      if (c.problem !== undefined) {
        // Its own timestamp places a bad message in the window (its frames cannot be read).
        if (c.headUs >= fromUs && c.headUs < toUs) summary.malformed.push({ frame: -1, reason: c.problem, message: at });
        c.step();
        continue;
      }
      const f = c.frames[c.frame];
      const frameInMessage = c.frame;
      const headerZone = c.headerZone;
      c.step();
      if (f.tsUs < fromUs || f.tsUs >= toUs) continue;
      const frame = summary.frames++;
      const r = decodeFrame({ frame, tsUs: f.tsUs, linkType: f.linkType, interfaceId: f.interfaceId, data: f.data });
      if (r.kind === 'ip') {
        const d = r.packet;
        const packet: ZonedCapturedPacket = { index: summary.ipPackets++, frame, tsUs: d.tsUs, interfaceId: d.interfaceId, ip: d.ip, zone: 0 };
        if (d.interfaceName !== undefined) packet.interfaceName = d.interfaceName;
        if (d.vlan !== undefined) packet.vlan = d.vlan;
        packet.zone = o.zoneOf(packet, headerZone);
        yield packet;
      } else if (r.kind === 'not-ip') summary.nonIp++;
      else summary.malformed.push({ frame, reason: r.reason, message: { ...at, frameInMessage } });
    }
  }

  return Object.assign(run(), { summary });
}
