/**
 * Zones on Kafka input, without a broker: the zone a message carries (`ctflow-zone` header, a
 * packet event's `zone` field) and the configured source decide each packet's zone, and the
 * repartition stage keys by that zone and passes the header on, so both stages agree.
 */
import { ethernetFrame } from '../../../ingest/capture/frameBuilders';
import { LINKTYPE } from '../../../ingest/capture/types';
import { decodeFrameBatch, encodeFrameBatch, encodeSingleFrame, ZONE_HEADER } from '../../../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../../../ingest/kafka/capturedTraffic';
import { decodeInputMessage } from '../../../ingest/kafka/inputMessages';
import type { InputKind, TopicPacket } from '../../../ingest/kafka/inputMessages';
import { flowKeyHash } from '../../../ingest/kafka/partitionKey';
import { decodePacketEvent } from '../../../ingest/kafka/packetEvents';
import { decodeFrame } from '../../../ingest/decode/index';
import { routeItems, toMessages } from '../../../cli/repartition';
import type { InputMessage } from '../../../kafka/client';
import { zoneResolver } from '../../../processors/zones';
import type { ZonePolicy } from '../../../processors/zones';
import { sampleTcpSyn } from '../helpers';

const syn = sampleTcpSyn();
const frame = (vlan?: number, interfaceId = 0): TopicFrame => {
  const data = ethernetFrame({ payload: syn, vlans: vlan === undefined ? [] : [vlan] });
  return { tsUs: 1_000_000, linkType: LINKTYPE.ETHERNET, interfaceId, data, origLength: data.length };
};
const message = (value: Buffer, headers: Record<string, string> = {}): InputMessage => ({ topic: 't', partition: 0, offset: '0', key: null, value, timestampMs: 1000, headers });
const policy = (source: ZonePolicy['source'], entries: Array<[string, number]> = [], defaultZone = 0): ZonePolicy => ({ source, map: new Map(entries), defaultZone });

function decode(kind: InputKind, m: InputMessage, p?: ZonePolicy, topic?: string): { zones: Array<number | undefined>; dead: string[] } {
  const zones: Array<number | undefined> = [];
  const dead: string[] = [];
  decodeInputMessage(kind, m, { packet: (pk: TopicPacket) => zones.push(pk.zone), dead: (r) => dead.push(r), skipped: () => undefined }, p && zoneResolver(p, topic));
  return { zones, dead };
}

const synIp = (() => {
  const d = decodeFrame({ frame: 0, tsUs: 0, linkType: LINKTYPE.ETHERNET, interfaceId: 0, data: frame().data });
  if (d.kind !== 'ip') throw new Error('the SYN does not decode');
  return d.packet.ip;
})();
const synKey = (zone: number) => flowKeyHash(synIp, zone);

const pev = (extra: object = {}) => Buffer.from(JSON.stringify({ ts: 1, src: '10.0.0.1', dst: '10.0.0.2', proto: 'udp', length: 28, sport: 1, dport: 2, ...extra }));

const udpKey = (zone: number) => flowKeyHash(decodePacketEvent(pev(), 0).ip, zone);

describe('the zone of a Kafka packet', () => {
  const batch = encodeFrameBatch([frame(100), frame(200), frame()]);

  test('by default: the ctflow-zone header for every frame of the message, else 0', () => {
    expect(decode('captured-traffic', message(batch)).zones).toEqual([0, 0, 0]);
    expect(decode('captured-traffic', message(batch, { [ZONE_HEADER]: '7' })).zones).toEqual([7, 7, 7]);
    const single = encodeSingleFrame(frame(100));
    expect(decode('captured-traffic', message(single.value, { ...single.headers, [ZONE_HEADER]: '9' })).zones).toEqual([9]);
  });

  test("by default a packet event's own zone field wins over the header; without either it is 0", () => {
    expect(decode('packet-events', message(pev({ zone: 3 }), { [ZONE_HEADER]: '7' })).zones).toEqual([3]);
    expect(decode('packet-events', message(pev(), { [ZONE_HEADER]: '7' })).zones).toEqual([7]);
    expect(decode('packet-events', message(pev())).zones).toEqual([0]);
  });

  test('a configured VLAN or interface source reads the frames, and the header no longer counts', () => {
    expect(decode('captured-traffic', message(batch, { [ZONE_HEADER]: '7' }), policy('vlan', [], 5)).zones).toEqual([100, 200, 5]);
    const twoIfaces = encodeFrameBatch([frame(undefined, 0), frame(undefined, 1)]);
    expect(decode('captured-traffic', message(twoIfaces), policy('interface', [['1', 11]], 4)).zones).toEqual([4, 11]);
  });

  test('the topic source: one zone for the topic the packets were read from', () => {
    const p = policy('topic', [['site-a', 21]], 2);
    expect(decode('captured-traffic', message(batch), p, 'site-a').zones).toEqual([21, 21, 21]);
    expect(decode('packet-events', message(pev({ zone: 3 })), p, 'site-b').zones).toEqual([2]);
  });

  test('a bad ctflow-zone header makes the message a dead letter, naming the header and value', () => {
    const r = decode('captured-traffic', message(batch, { [ZONE_HEADER]: '70000' }));
    expect(r.zones).toEqual([]);
    expect(r.dead).toEqual([`header ${ZONE_HEADER}='70000' is not a zone (an integer from 0 to 65535)`]);
  });
});

describe('repartitioning keys by the resolved zone', () => {
  const partitions = 64;

  test('each frame is keyed by its own zone, and the header travels with the frames', () => {
    const m = message(encodeFrameBatch([frame(100), frame(200)]), { [ZONE_HEADER]: '7' });
    const byVlan = routeItems('captured-traffic', m, partitions, zoneResolver(policy('vlan')));
    const expected = [100, 200].map((z) => synKey(z) % partitions);
    expect(expected[0]).not.toBe(expected[1]); // else this would not tell the zones apart
    expect(byVlan.map((it) => it.target)).toEqual(expected);
    const byHeader = routeItems('captured-traffic', m, partitions);
    expect(byHeader.map((it) => it.target)).toEqual([synKey(7) % partitions, synKey(7) % partitions]);
    const out = toMessages(byHeader, 'internal');
    expect(out).toHaveLength(1);
    expect(out[0].headers).toEqual({ [ZONE_HEADER]: '7' });
    expect(decodeFrameBatch(out[0].value as Buffer)).toHaveLength(2);
  });

  test('frames from messages with different zones do not share a batch, and keep their order', () => {
    const a = routeItems('captured-traffic', message(encodeFrameBatch([frame(1)]), { [ZONE_HEADER]: '1' }), 1);
    const b = routeItems('captured-traffic', message(encodeFrameBatch([frame(2)]), { [ZONE_HEADER]: '2' }), 1);
    const c = routeItems('captured-traffic', message(encodeFrameBatch([frame(3)]), { [ZONE_HEADER]: '1' }), 1);
    const out = toMessages([...a, ...b, ...c], 'internal');
    expect(out.map((o) => o.headers?.[ZONE_HEADER])).toEqual(['1', '2', '1']);
  });

  test("packet events are keyed by the event's zone", () => {
    const [it] = routeItems('packet-events', message(pev({ zone: 3 })), partitions);
    const [plain] = routeItems('packet-events', message(pev()), partitions);
    expect([it.target, plain.target]).toEqual([udpKey(3) % partitions, udpKey(0) % partitions]);
  });
});
