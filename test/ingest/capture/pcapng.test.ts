import { openPcapng } from '../../../ingest/capture/pcapng';
import { CaptureFormatError, LINKTYPE } from '../../../ingest/capture/types';
import { sampleTcpSyn, writePcapng } from '../helpers';

const BASE_S = 1_700_000_000n;

describe('pcapng reader', () => {
  const pkt = sampleTcpSyn();

  test('two interfaces with different timestamp resolutions', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET } }, // default 10^-6
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW, tsresol: 9 } }, // nanoseconds
          { kind: 'epb', interfaceId: 0, ts: BASE_S * 1_000_000n + 250_000n, data: pkt },
          { kind: 'epb', interfaceId: 1, ts: BASE_S * 1_000_000_000n + 500_000_999n, data: pkt, origLength: 9000 },
        ],
      },
    ]);
    const got = [...openPcapng(file)];
    expect(got.map((f) => [f.frame, f.interfaceId, f.linkType, f.tsUs, f.origLength])).toEqual([
      [0, 0, LINKTYPE.ETHERNET, 1_700_000_000_250_000, pkt.length],
      [1, 1, LINKTYPE.RAW, 1_700_000_000_500_000, 9000],
    ]);
    expect(got[1].data).toEqual(pkt);
  });

  test('power-of-two resolution, millisecond resolution and if_tsoffset', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW, tsresol: 0x80 | 10 } }, // 1/1024 s
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW, tsresol: 3, tsoffset: 1_000_000_000 } },
          { kind: 'epb', interfaceId: 0, ts: BASE_S * 1024n + 512n, data: pkt },
          { kind: 'epb', interfaceId: 1, ts: 700_000_000_123n, data: pkt },
        ],
      },
    ]);
    expect([...openPcapng(file)].map((f) => f.tsUs)).toEqual([1_700_000_000_500_000, 1_700_000_000_123_000]);
  });

  test('sections in both byte orders; interface ids restart per section', () => {
    const file = writePcapng([
      { blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET } }, { kind: 'epb', interfaceId: 0, ts: 1n, data: pkt }] },
      {
        bigEndian: true,
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.LINUX_SLL } },
          { kind: 'epb', interfaceId: 0, ts: 2n, data: pkt },
          { kind: 'pb', interfaceId: 0, ts: 3n, data: pkt },
        ],
      },
    ]);
    const got = [...openPcapng(file)];
    expect(got.map((f) => [f.frame, f.linkType, f.tsUs])).toEqual([
      [0, LINKTYPE.ETHERNET, 1],
      [1, LINKTYPE.LINUX_SLL, 2],
      [2, LINKTYPE.LINUX_SLL, 3],
    ]);
    expect(got.every((f) => f.data.length === pkt.length)).toBe(true);
  });

  test('simple packet blocks: interface 0, snaplen applied, time of the previous packet', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW, snapLen: 30 } },
          { kind: 'epb', interfaceId: 0, ts: 77n, data: pkt.subarray(0, 30), origLength: pkt.length },
          { kind: 'spb', data: pkt.subarray(0, 30), origLength: pkt.length },
        ],
      },
    ]);
    const got = [...openPcapng(file)];
    expect(got[1]).toMatchObject({ frame: 1, interfaceId: 0, linkType: LINKTYPE.RAW, tsUs: 77, origLength: pkt.length });
    expect(got[1].data).toEqual(pkt.subarray(0, 30));
  });

  test('interface names (if_name) reach every frame of their interface, per section, in either byte order', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'eth1' } },
          { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET } }, // no name: none is made up
          { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'wan0', tsresol: 9 } }, // beside other options
          { kind: 'epb', interfaceId: 1, ts: 1n, data: pkt },
          { kind: 'epb', interfaceId: 0, ts: 2n, data: pkt },
          { kind: 'epb', interfaceId: 2, ts: 3000n, data: pkt },
          { kind: 'spb', data: pkt },
        ],
      },
      // A new section starts its interface list again: id 0 is now a different interface.
      { bigEndian: true, blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.RAW, name: 'ens3' } }, { kind: 'pb', interfaceId: 0, ts: 4n, data: pkt }] },
    ]);
    expect([...openPcapng(file)].map((f) => [f.interfaceId, f.interfaceName])).toEqual([
      [1, undefined],
      [0, 'eth1'],
      [2, 'wan0'],
      [0, 'eth1'],
      [0, 'ens3'],
    ]);
  });

  test('skips unknown blocks (name resolution, statistics, custom)', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'raw', type: 4, body: new Uint8Array(8) },
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW } },
          { kind: 'raw', type: 5, body: new Uint8Array(12) },
          { kind: 'epb', interfaceId: 0, ts: 5n, data: pkt },
          { kind: 'raw', type: 0x40000bad, body: new Uint8Array(4) },
        ],
      },
    ]);
    const cap = openPcapng(file);
    expect([...cap].map((f) => f.frame)).toEqual([0]);
    expect(cap.problem).toBeUndefined();
  });

  test('a packet for an undeclared interface is delivered with LINKTYPE.UNDECLARED', () => {
    const file = writePcapng([{ blocks: [{ kind: 'epb', interfaceId: 3, ts: 5n, data: pkt }] }]);
    expect([...openPcapng(file)][0]).toMatchObject({ interfaceId: 3, linkType: LINKTYPE.UNDECLARED });
  });

  test('a truncated block ends reading with a report; earlier frames are kept', () => {
    const file = writePcapng([
      {
        blocks: [
          { kind: 'idb', iface: { linkType: LINKTYPE.RAW } },
          { kind: 'epb', interfaceId: 0, ts: 1n, data: pkt },
          { kind: 'epb', interfaceId: 0, ts: 2n, data: pkt },
        ],
      },
    ]);
    const cap = openPcapng(file.subarray(0, file.length - 10));
    expect([...cap].map((f) => f.tsUs)).toEqual([1]);
    expect(cap.problem).toMatchObject({ frame: 1, reason: expect.stringMatching(/^truncated block: \d+ of \d+ bytes$/) });
  });

  test('a corrupt block length is reported', () => {
    const file = writePcapng([{ blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.RAW } }] }]);
    new DataView(file.buffer).setUint32(28 + 4, 13, true); // the IDB's length: not a multiple of 4
    const cap = openPcapng(file);
    expect([...cap]).toEqual([]);
    expect(cap.problem).toEqual({ frame: 0, offset: 28, reason: 'bad block length 13' });
  });

  test('a bad byte-order magic in the first section is a format error', () => {
    const file = writePcapng([{ blocks: [] }]);
    file.set([1, 2, 3, 4], 8);
    expect(() => openPcapng(file)).toThrow(CaptureFormatError);
  });
});
