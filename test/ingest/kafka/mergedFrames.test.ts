/**
 * A captured-traffic topic's partitions merged into one packet stream (what `report --topic`
 * replays): packet-time order whatever the partitioning and batching, frames numbered as in the
 * capture, the --from/--to window applied per frame, zones from the message's header, and
 * unreadable messages listed with their place instead of stopping the stream.
 */
import fc from 'fast-check';
import { ipv4Packet, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { encodeFrameBatch, encodeSingleFrame, ZONE_HEADER } from '../../../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../../../ingest/kafka/capturedTraffic';
import { mergedTopicPackets } from '../../../ingest/kafka/mergedFrames';
import type { ZonedCapturedPacket } from '../../../ingest/kafka/mergedFrames';
import type { InputMessage } from '../../../kafka/client';

const RAW_IP = 101;
const T0 = 1_700_000_000_000_000;
const carried = (_p: unknown, zone?: number): number => zone ?? 0;

/** A UDP datagram whose source port says which frame of the test it is. */
function frame(k: number, tsUs: number): TopicFrame {
  const data = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udpDatagram({ sport: 1000 + k, dport: 53 }) });
  return { tsUs, linkType: RAW_IP, interfaceId: 0, data, origLength: data.length };
}

function message(partition: number, offset: number, value: Buffer | null, headers: Record<string, string> = {}, timestampMs = 0): InputMessage {
  return { topic: 't', partition, offset: String(offset), key: null, value, timestampMs, headers };
}

const sport = (p: ZonedCapturedPacket): number => (p.ip.l4?.kind === 'udp' ? p.ip.l4.sport : -1);

test('frames spread over partitions and messages come back in packet-time order, numbered as in the capture', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ gapUs: fc.integer({ min: 1, max: 5000 }), partition: fc.integer({ min: 0, max: 3 }), newMessage: fc.boolean(), single: fc.boolean() }), { minLength: 1, maxLength: 60 }),
      (plan) => {
        let t = T0;
        const frames = plan.map((s, k) => frame(k, (t += s.gapUs)));
        // Each partition's frames in capture order, cut into batch or single-frame messages.
        const parts = new Map<number, InputMessage[]>();
        const open = new Map<number, TopicFrame[]>();
        const flush = (p: number) => {
          const batch = open.get(p);
          if (!batch?.length) return;
          const list = parts.get(p) ?? [];
          list.push(message(p, list.length, encodeFrameBatch(batch)));
          parts.set(p, list);
          open.delete(p);
        };
        plan.forEach((s, k) => {
          if (s.single) {
            flush(s.partition);
            const m = encodeSingleFrame(frames[k]);
            const list = parts.get(s.partition) ?? [];
            list.push(message(s.partition, list.length, m.value, m.headers));
            parts.set(s.partition, list);
            return;
          }
          if (s.newMessage) flush(s.partition);
          open.set(s.partition, [...(open.get(s.partition) ?? []), frames[k]]);
        });
        [...open.keys()].forEach(flush);
        const stream = mergedTopicPackets([...parts].map(([partition, messages]) => ({ partition, messages })), { topic: 't', zoneOf: carried });
        const out = [...stream] as ZonedCapturedPacket[];
        expect(out.map(sport)).toEqual(frames.map((_, k) => 1000 + k));
        expect(out.map((p) => p.frame)).toEqual(frames.map((_, k) => k));
        expect(out.map((p) => p.index)).toEqual(frames.map((_, k) => k));
        expect(stream.summary).toEqual({ frames: frames.length, ipPackets: frames.length, nonIp: 0, malformed: [] });
      },
    ),
  );
});

test('the window keeps the frames with packet time in [from, to), also those of a batch that starts before it', () => {
  const frames = [0, 1, 2, 3, 4, 5].map((k) => frame(k, T0 + k * 1000));
  const parts = [{ partition: 0, messages: [message(0, 0, encodeFrameBatch(frames.slice(0, 4))), message(0, 1, encodeFrameBatch(frames.slice(4)))] }];
  const out = [...mergedTopicPackets(parts, { topic: 't', zoneOf: carried, fromUs: T0 + 2000, toUs: T0 + 5000 })] as ZonedCapturedPacket[];
  expect(out.map(sport)).toEqual([1002, 1003, 1004]);
  // Numbered from the window's start, as a capture of just that slice would be.
  expect(out.map((p) => p.frame)).toEqual([0, 1, 2]);
});

test("each packet's zone comes from its message's header through the zone policy", () => {
  const zones: Array<number | undefined> = [];
  const zoneOf = (_p: unknown, zone?: number): number => {
    zones.push(zone);
    return (zone ?? 0) + 100;
  };
  const single = encodeSingleFrame(frame(1, T0 + 2));
  const parts = [
    { partition: 0, messages: [message(0, 0, encodeFrameBatch([frame(0, T0 + 1)]), { [ZONE_HEADER]: '7' })] },
    { partition: 1, messages: [message(1, 0, single.value, single.headers)] },
  ];
  const out = [...mergedTopicPackets(parts, { topic: 't', zoneOf })] as ZonedCapturedPacket[];
  expect(zones).toEqual([7, undefined]);
  expect(out.map((p) => p.zone)).toEqual([107, 100]);
});

test('unreadable messages and undecodable frames are listed with topic, partition and offset; the rest goes on', () => {
  const parts = [
    { partition: 0, messages: [message(0, 0, encodeFrameBatch([frame(0, T0 + 1000), { tsUs: T0 + 3000, linkType: RAW_IP, interfaceId: 0, data: Uint8Array.of(0x45), origLength: 1 }]))] },
    {
      partition: 2,
      messages: [
        message(2, 40, null, {}, (T0 + 2000) / 1000),
        message(2, 41, Buffer.from('CTFB'), {}, (T0 + 2500) / 1000),
        message(2, 42, encodeFrameBatch([frame(1, T0 + 4000)]), { [ZONE_HEADER]: 'seven' }, (T0 + 4000) / 1000),
        message(2, 43, encodeFrameBatch([frame(2, T0 + 5000)])),
      ],
    },
  ];
  const stream = mergedTopicPackets(parts, { topic: 't', zoneOf: carried });
  const out = [...stream] as ZonedCapturedPacket[];
  expect(out.map(sport)).toEqual([1000, 1002]);
  const m = stream.summary.malformed;
  expect(m.map((b) => [b.frame, b.message])).toEqual([
    [-1, { topic: 't', partition: 2, offset: '40' }],
    [-1, { topic: 't', partition: 2, offset: '41' }],
    [1, { topic: 't', partition: 0, offset: '0', frameInMessage: 1 }],
    [-1, { topic: 't', partition: 2, offset: '42' }],
  ]);
  expect(m[0].reason).toMatch(/tombstone/);
  expect(m[1].reason).toMatch(/shorter than its 12-byte header/);
  expect(m[3].reason).toMatch(/ctflow-zone='seven'/);
  expect(stream.summary.frames).toBe(3);
});
