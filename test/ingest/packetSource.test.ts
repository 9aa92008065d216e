import { ethernetFrame, ipv4Packet, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import { CaptureFormatError, LINKTYPE, type CaptureFrame } from '../../ingest/capture/types';
import { readAllPackets, readPackets } from '../../ingest/packetSource';
import { IPPROTO } from '../../processors/packet';
import { sampleTcpSyn, writePcapng } from './helpers';

const udp = (sport: number) =>
  ethernetFrame({ payload: ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udpDatagram({ sport, dport: 53 }) }) });
const arp = ethernetFrame({ etherType: 0x0806, payload: new Uint8Array(28) });
const brokenTcp = ethernetFrame({ payload: sampleTcpSyn().subarray(0, 30) }); // TCP header cut to 10 bytes
const badIp = ethernetFrame({ payload: Uint8Array.of(0x41, 0, 0, 20, ...new Array(16).fill(0)) }); // IHL 1

describe('readPackets', () => {
  const file = writePcap(
    [udp(1), arp, udp(2), brokenTcp, badIp, udp(3)].map((data, i) => ({ tsUs: 1000 + i, data })),
    LINKTYPE.ETHERNET,
  );

  test('index counts IP packets only; frame keeps the file position', () => {
    const { packets, summary } = readAllPackets(file);
    expect(packets.map((p) => [p.index, p.frame, p.tsUs, p.interfaceId])).toEqual([
      [0, 0, 1000, 0],
      [1, 2, 1002, 0],
      [2, 3, 1003, 0],
      [3, 5, 1005, 0],
    ]);
    expect(packets.map((p) => (p.ip.l4 as { sport: number } | undefined)?.sport)).toEqual([1, 2, undefined, 3]);
    expect(packets[2].ip.l4Error).toBe('truncated tcp header: 10 of 20 bytes');
    expect(summary).toEqual({
      frames: 6,
      ipPackets: 4,
      nonIp: 1,
      malformed: [{ frame: 4, reason: 'bad ipv4 header length 4 bytes (ihl 1)' }],
    });
  });

  test('callbacks see the skipped frames with their reasons', () => {
    const nonIp: Array<[number, string]> = [];
    const malformed: Array<[number, string]> = [];
    readAllPackets(file, {
      onNonIp: (f: CaptureFrame, reason) => nonIp.push([f.frame, reason]),
      onMalformed: (f: CaptureFrame, reason) => malformed.push([f.frame, reason]),
    });
    expect(nonIp).toEqual([[1, 'arp']]);
    expect(malformed).toEqual([[4, 'bad ipv4 header length 4 bytes (ihl 1)']]);
  });

  test('the summary is live while iterating and is the generator’s return value', () => {
    const stream = readPackets(file);
    const first = stream.next();
    expect(first.done).toBe(false);
    expect(stream.summary.ipPackets).toBe(1);
    let r = stream.next();
    while (!r.done) r = stream.next();
    expect(r.value).toBe(stream.summary);
    expect(r.value.frames).toBe(6);
  });

  test('a truncated capture keeps its good packets and reports the cut', () => {
    const { packets, summary } = readAllPackets(file.subarray(0, file.length - 3));
    expect(packets.map((p) => p.index)).toEqual([0, 1, 2]);
    expect(summary.frames).toBe(5);
    expect(summary.captureProblem).toMatchObject({ frame: 5, reason: expect.stringMatching(/^truncated record/) });
  });

  test('pcapng interface ids and names, and VLANs, are carried through', () => {
    const ng = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW } },
          { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'eth1' } },
          { kind: 'epb', interfaceId: 1, ts: 1n, data: ethernetFrame({ payload: sampleTcpSyn(), vlans: [300] }) },
          { kind: 'epb', interfaceId: 0, ts: 2n, data: sampleTcpSyn() },
        ],
      },
    ]);
    const { packets } = readAllPackets(ng);
    expect(packets.map((p) => [p.index, p.interfaceId, p.interfaceName, p.vlan])).toEqual([
      [0, 1, 'eth1', 300],
      [1, 0, undefined, undefined],
    ]);
  });

  test('not a capture: throws the format error at once', () => {
    expect(() => readPackets(new Uint8Array(64))).toThrow(CaptureFormatError);
  });
});
