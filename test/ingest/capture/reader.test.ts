import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { openCapture, readCaptureFile } from '../../../ingest/capture/reader';
import { CaptureFormatError, LINKTYPE } from '../../../ingest/capture/types';
import { sampleTcpSyn, writePcapVariant, writePcapng } from '../helpers';

describe('openCapture', () => {
  const pkt = sampleTcpSyn();

  test.each([
    ['pcap', writePcap([{ tsUs: 5, data: pkt }], LINKTYPE.RAW)],
    ['pcap', writePcapVariant([{ sec: 0, frac: 5000, data: pkt }], LINKTYPE.RAW, { bigEndian: true, nanos: true })],
    ['pcapng', writePcapng([{ blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.RAW } }, { kind: 'epb', interfaceId: 0, ts: 5n, data: pkt }] }])],
    ['pcapng', writePcapng([{ bigEndian: true, blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.RAW } }, { kind: 'epb', interfaceId: 0, ts: 5n, data: pkt }] }])],
  ])('detects %s by its magic', (format, file) => {
    const cap = openCapture(file);
    expect(cap.format).toBe(format);
    expect([...cap].map((f) => f.tsUs)).toEqual([5]);
  });

  test('unknown magic names the bytes', () => {
    expect(() => openCapture(Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0, 0))).toThrow(
      new CaptureFormatError('unsupported capture format: magic 0x12345678'),
    );
  });

  test('too short to hold a magic', () => {
    expect(() => openCapture(new Uint8Array(3))).toThrow(CaptureFormatError);
  });

  test('the format error carries a stable code', () => {
    try {
      openCapture(new Uint8Array(8));
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(CaptureFormatError);
      expect((err as CaptureFormatError).code).toBe('CTF_ERR_CAPTURE_FORMAT');
    }
  });

  test('readCaptureFile reads from disk', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctflow-reader-'));
    const file = path.join(dir, 'one.pcap');
    fs.writeFileSync(file, writePcap([{ tsUs: 42, data: pkt }], LINKTYPE.RAW));
    try {
      const frames = [...readCaptureFile(file)];
      expect(frames).toHaveLength(1);
      expect(frames[0].data).toEqual(pkt);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
