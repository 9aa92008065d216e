/**
 * Zones through Kafka, against a real broker: one capture carries the same UDP exchange on two
 * interfaces (or VLANs); produced into a topic and replayed with a zone source, it is two flows in
 * every output (transitions, flow records, their keys), and one without. The kernel oracle cannot
 * set zones (it adds no `ct zone set` rules), so the expectations are the kernel's documented
 * behaviour: the zone is part of the lookup (nf_ct_zone_equal), packets no rule touched are in
 * zone 0, and a VLAN tag alone is no zone.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokers, cliAsync, readTopic, runId } from './helpers';
import { mainAsync } from '../../main';
import { ethernetFrame, ipv4Packet, udpDatagram } from '../../ingest/capture/frameBuilders';
import { LINKTYPE } from '../../ingest/capture/types';
import { ZONE_HEADER } from '../../ingest/kafka/capturedTraffic';
import { flowHash } from '../../processors/conntrack/tuple';
import { IPPROTO } from '../../processors/packet';
import { writePcapng } from '../ingest/helpers';
import type { NgBlock } from '../ingest/helpers';

const T0_US = 1_700_000_000_000_000n;
const HOUR_US = 3_600_000_000n;
const udp = (src: string, dst: string, sport: number, dport: number) => ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport, dport }) });

/**
 * A DNS-like exchange 10.0.0.1:5000 <-> 10.0.0.2:53 on each "link", then an hour later one more
 * query on the same address pair (same key, so same partition): its packet time carries the
 * partition's clock past the exchange's UDP timeout, so the exchange is destroyed and recorded.
 * A link is an interface (`vlan` undefined) or a VLAN tag on interface 0.
 */
function exchangeCapture(links: Array<{ interfaceId: number; vlan?: number }>): string {
  const blocks: NgBlock[] = [
    { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'eth1' } },
    { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'eth2' } },
  ];
  const packets: Array<[bigint, Uint8Array]> = [
    [0n, udp('10.0.0.1', '10.0.0.2', 5000, 53)],
    [1000n, udp('10.0.0.2', '10.0.0.1', 53, 5000)],
    [HOUR_US, udp('10.0.0.1', '10.0.0.2', 5001, 53)],
  ];
  for (const [at, ip] of packets) {
    links.forEach((l, k) => {
      blocks.push({ kind: 'epb', interfaceId: l.interfaceId, ts: T0_US + at + BigInt(k), data: ethernetFrame({ payload: ip, vlans: l.vlan === undefined ? [] : [l.vlan] }) });
    });
  }
  const path = join(mkdtempSync(join(tmpdir(), 'ctflow-kafka-zones-')), 'exchange.pcapng');
  writeFileSync(path, writePcapng([{ blocks }]));
  return path;
}

interface EventJson { type: string; zone: number; orig: { sport: number } }
interface RecordJson { zone: number; reason?: string; orig: { src: string; dst: string; sport: number; packets: number } }

async function replay(topic: string, prefix: string, ...args: string[]): Promise<{ events: EventJson[]; records: Array<{ key: string; r: RecordJson }>; err: string[] }> {
  const r = await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--events-out', '-', '--json', '--out-prefix', prefix, '--quiet', ...args);
  expect(r.code).toBe(0);
  const records = (await readTopic(`${prefix}flows`)).map((m) => ({ key: m.key!.toString(), r: JSON.parse(m.value!.toString()) as RecordJson }));
  return { events: r.out.map((l) => JSON.parse(l) as EventJson), records, err: r.err };
}

/** The exchange's flow (port 5000) by zone: its NEW and DESTROY events, and its flow record. */
const exchange = (x: { events: EventJson[]; records: Array<{ key: string; r: RecordJson }> }) => ({
  news: x.events.filter((e) => e.type === 'NEW' && e.orig.sport === 5000).map((e) => e.zone).sort((a, b) => a - b),
  destroys: x.events.filter((e) => e.type === 'DESTROY' && e.orig.sport === 5000).map((e) => e.zone).sort((a, b) => a - b),
  records: x.records.filter((m) => m.r.orig.sport === 5000).sort((a, b) => a.r.zone - b.r.zone),
});

const describeKafka = brokers ? describe : describe.skip;

describeKafka('zones through Kafka (real broker)', () => {
  const run = runId;
  const ifaceTopic = `ctflow-test-zones-iface-${run}`;
  const twoInterfaces = exchangeCapture([{ interfaceId: 0 }, { interfaceId: 1 }]);

  beforeAll(async () => {
    const r = await cliAsync('produce', twoInterfaces, '--topic', ifaceTopic, '--partitions', '4', '--brokers', brokers, '--quiet');
    expect(r.err).toEqual([]);
  });

  test('without a zone source the two copies are one flow in zone 0', async () => {
    const x = exchange(await replay(ifaceTopic, `${ifaceTopic}.none.`));
    expect(x.news).toEqual([0]);
    expect(x.destroys).toEqual([0]);
    expect(x.records.map((m) => [m.r.zone, m.r.orig.packets])).toEqual([[0, 2]]); // both copies of the query counted on one entry
  });

  test('interfaces mapped to zones: two flows in the transitions and the flow records, keyed by zone', async () => {
    const x = exchange(await replay(ifaceTopic, `${ifaceTopic}.mapped.`, '--zone-map', 'iface:0=1', '--zone-map', 'iface:1=2'));
    expect(x.news).toEqual([1, 2]);
    expect(x.destroys).toEqual([1, 2]);
    expect(x.records.map((m) => [m.r.zone, m.r.orig.packets, m.r.reason])).toEqual([
      [1, 1, 'timeout'],
      [2, 1, 'timeout'],
    ]);
    // The output key hashes the zone with the address pair, as the input key does: the two differ.
    for (const m of x.records) expect(m.key).toBe(flowHash(m.r.zone, m.r.orig.src, m.r.orig.dst).toString(16).padStart(8, '0'));
    expect(x.records[0].key).not.toBe(x.records[1].key);
  });

  test('ctflow run takes zones from the config: events, the live table and the metrics by zone', async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'ctflow-run-zones-')), 'ctflow.yaml');
    const outputs = `${ifaceTopic}.run.`;
    writeFileSync(
      config,
      [
        `input: {topic: ${ifaceTopic}, group: g-zones-${run}}`,
        `outputs: {transitions: ${outputs}transitions, flows: ${outputs}flows, deadLetter: ${outputs}dead-letter}`,
        'zones:',
        '  source: interface',
        '  map: {0: 1, 1: 2}',
        '',
      ].join('\n'),
    );
    const out: string[] = [];
    const err: string[] = [];
    const done = mainAsync(['run', '--config', config, '--brokers', brokers, '--events-out', '-', '--json', '--http', '127.0.0.1:0'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    const later = () => out.map((l) => JSON.parse(l) as EventJson).filter((e) => e.type === 'NEW' && e.orig.sport === 5001);
    const deadline = Date.now() + 30_000;
    while (later().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(later().map((e) => e.zone).sort()).toEqual([1, 2]);
    const url = /serving (http:\/\/\S+)/.exec(err.join('\n'))?.[1];
    expect(url).toBeDefined();
    const zone2 = (await (await fetch(`${url}/flows?zone=2`)).json()) as { flows: Array<{ zone: number }> };
    expect(zone2.flows.map((f) => f.zone)).toEqual([2]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const zone of [1, 2]) expect(metrics).toMatch(new RegExp(`^ctflow_nf_conntrack_entries\\{partition="\\d+",zone="${zone}",proto="udp",state="UNREPLIED"\\} 1$`, 'm'));
    expect(metrics).not.toMatch(/^ctflow_nf_conntrack_entries\{[^}]*zone="0"/m);
    process.emit('SIGTERM');
    expect(await done).toBe(0);
  });

  test('the source topic as the zone: every packet of the topic in its mapped zone', async () => {
    const x = exchange(await replay(ifaceTopic, `${ifaceTopic}.topic.`, '--zone-map', `topic:${ifaceTopic}=9`));
    expect(x.news).toEqual([9]);
    expect(x.records.map((m) => m.r.zone)).toEqual([9]);
  });

  test('produce --zone tags every message with the ctflow-zone header and keys by that zone; replay takes it', async () => {
    const topic = `ctflow-test-zones-header-${run}`;
    const p = await cliAsync('produce', twoInterfaces, '--topic', topic, '--partitions', '4', '--brokers', brokers, '--quiet', '--single-frames', '--zone', '5');
    expect(p.err).toEqual([]);
    const messages = await readTopic(topic);
    expect(messages.length).toBe(6);
    for (const m of messages) {
      expect(m.headers[ZONE_HEADER]).toBe('5');
      // Every packet is on the pair 10.0.0.1/10.0.0.2, in either direction: one key, with zone 5 in it.
      expect(m.key!.toString()).toBe(flowHash(5, '10.0.0.1', '10.0.0.2').toString(16).padStart(8, '0'));
    }
    const x = exchange(await replay(topic, `${topic}.r.`));
    expect(x.news).toEqual([5]);
    expect(await cliAsync('produce', twoInterfaces, '--topic', topic, '--brokers', brokers, '--quiet', '--zone', '65536')).toMatchObject({
      code: 1,
      err: ["ctflow: --zone: '65536' is not a zone (an integer from 0 to 65535)"],
    });
  });

  test('VLANs as zones through the repartition stage: each tag its own flow, untagged in the default zone', async () => {
    const topic = `ctflow-test-zones-vlan-${run}`;
    const vlans = exchangeCapture([{ interfaceId: 0, vlan: 100 }, { interfaceId: 0, vlan: 200 }, { interfaceId: 0 }]);
    expect((await cliAsync('produce', vlans, '--topic', topic, '--partitions', '4', '--brokers', brokers, '--quiet')).err).toEqual([]);
    const x = exchange(await replay(topic, `${topic}.r.`, '--repartition', '--zone-from', 'vlan', '--zone-default', '3'));
    expect(x.news).toEqual([3, 100, 200]);
    expect(x.records.map((m) => m.r.zone)).toEqual([3, 100, 200]);
  });
});
