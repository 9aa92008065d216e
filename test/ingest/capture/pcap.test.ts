import { openPcap } from '../../../ingest/capture/pcap';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { CaptureFormatError, LINKTYPE, type CaptureFrame } from '../../../ingest/capture/types';
import { sampleTcpSyn, writePcapVariant } from '../helpers';

const frames = (bytes: Uint8Array): CaptureFrame[] => [...openPcap(bytes)];

describe('pcap reader', () => {
  const a = sampleTcpSyn(1);
  const b = sampleTcpSyn(2);

  test('reads what writePcap writes (little-endian, microseconds)', () => {
    const file = writePcap([{ tsUs: 1_700_000_000_123_456, data: a }, { tsUs: 1_700_000_001_000_001, data: b }], LINKTYPE.RAW);
    const got = frames(file);
    expect(got.map((f) => [f.frame, f.tsUs, f.linkType, f.interfaceId, f.origLength])).toEqual([
      [0, 1_700_000_000_123_456, 101, 0, a.length],
      [1, 1_700_000_001_000_001, 101, 0, b.length],
    ]);
    expect(got[0].data).toEqual(a);
    expect(got[1].data).toEqual(b);
  });

  test.each([
    ['little-endian µs', { bigEndian: false, nanos: false }, 123456, 123456],
    ['big-endian µs', { bigEndian: true, nanos: false }, 123456, 123456],
    ['little-endian ns', { bigEndian: false, nanos: true }, 123456789, 123456],
    ['big-endian ns', { bigEndian: true, nanos: true }, 999_999_999, 999_999],
  ])('%s', (_name, opts, frac, expectFracUs) => {
    const file = writePcapVariant([{ sec: 1_700_000_000, frac, data: a, origLength: 1500 }], LINKTYPE.ETHERNET, opts);
    const [f] = frames(file);
    expect(f.tsUs).toBe(1_700_000_000 * 1_000_000 + expectFracUs);
    expect(f.linkType).toBe(LINKTYPE.ETHERNET);
    expect(f.origLength).toBe(1500);
    expect(f.data).toEqual(a);
  });

  test('masks the FCS bits out of the link type', () => {
    const file = writePcap([{ tsUs: 0, data: a }], LINKTYPE.ETHERNET | 0x14000000);
    expect(frames(file)[0].linkType).toBe(LINKTYPE.ETHERNET);
  });

  test('a record cut short delivers the frames before it and reports the cut', () => {
    const file = writePcap([{ tsUs: 1, data: a }, { tsUs: 2, data: b }], LINKTYPE.RAW);
    const cap = openPcap(file.subarray(0, file.length - 5));
    expect([...cap].map((f) => f.frame)).toEqual([0]);
    expect(cap.problem).toEqual({ frame: 1, offset: 24 + 16 + a.length, reason: `truncated record: ${b.length - 5} of ${b.length} captured bytes` });
  });

  test('a record header cut short is reported too', () => {
    const file = writePcap([{ tsUs: 1, data: a }], LINKTYPE.RAW);
    const cut = new Uint8Array(file.length + 7);
    cut.set(file);
    const cap = openPcap(cut);
    expect([...cap]).toHaveLength(1);
    expect(cap.problem?.reason).toBe('truncated record header: 7 of 16 bytes');
  });

  test('iterating again starts over and clears the problem', () => {
    const file = writePcap([{ tsUs: 1, data: a }, { tsUs: 2, data: b }], LINKTYPE.RAW);
    const cap = openPcap(file.subarray(0, file.length - 1));
    expect([...cap]).toHaveLength(1);
    expect([...cap]).toHaveLength(1);
    expect(cap.problem?.frame).toBe(1);
  });

  test('an empty capture (header only) has no frames and no problem', () => {
    const cap = openPcap(writePcap([], LINKTYPE.RAW));
    expect([...cap]).toEqual([]);
    expect(cap.problem).toBeUndefined();
  });

  test('a file header cut short is a format error', () => {
    const file = writePcap([], LINKTYPE.RAW).subarray(0, 10);
    expect(() => openPcap(file)).toThrow(new CaptureFormatError('truncated pcap file header: 10 of 24 bytes'));
  });
});
