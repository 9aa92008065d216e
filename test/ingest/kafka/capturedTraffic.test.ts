import fc from 'fast-check';
import { decodeCapturedTraffic, decodeFrameBatch, encodeFrameBatch, encodeSingleFrame, TopicFormatError } from '../../../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../../../ingest/kafka/capturedTraffic';

const frameArb = fc.record({
  tsUs: fc.integer({ min: 0, max: 2 ** 32 * 1e6 - 1 }),
  linkType: fc.integer({ min: 0, max: 0xffff }),
  interfaceId: fc.integer({ min: 0, max: 0xffff }),
  data: fc.uint8Array({ maxLength: 200 }),
  extra: fc.integer({ min: 0, max: 1000 }),
}).map((r): TopicFrame => ({ tsUs: r.tsUs, linkType: r.linkType, interfaceId: r.interfaceId, data: r.data, origLength: r.data.length + r.extra }));

describe('captured-traffic frame batches', () => {
  test('a batch decodes to the frames it was made of, in order', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), (frames) => {
        const back = decodeFrameBatch(encodeFrameBatch(frames));
        expect(back.map((f) => ({ ...f, data: [...f.data] }))).toEqual(frames.map((f) => ({ ...f, data: [...f.data] })));
      }),
    );
  });

  test('arbitrary bytes after the magic never throw anything but TopicFormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        const value = new Uint8Array([0x43, 0x54, 0x46, 0x42, ...tail]);
        try {
          decodeCapturedTraffic(value, {}, 0);
        } catch (err) {
          expect(err).toBeInstanceOf(TopicFormatError);
        }
      }),
    );
  });

  test('a cut batch names the frame and the bytes missing', () => {
    const value = encodeFrameBatch([{ tsUs: 1, linkType: 1, interfaceId: 0, data: new Uint8Array(50), origLength: 50 }]);
    expect(() => decodeFrameBatch(value.subarray(0, value.length - 10))).toThrow(/frame 0 of 1 claims 50 bytes, 40 remain/);
    expect(() => decodeFrameBatch(Buffer.concat([value, Buffer.from([1])]))).toThrow(/1 bytes after its 1 frames/);
    const v2 = Buffer.from(value);
    v2[4] = 2;
    expect(() => decodeFrameBatch(v2)).toThrow(/version 2 is not supported/);
  });

  test('single-frame messages carry link type and time in headers; the message time is the fallback', () => {
    const f: TopicFrame = { tsUs: 1_700_000_000_123_456, linkType: 101, interfaceId: 3, data: new Uint8Array([0x45, 0, 0, 20]), origLength: 60 };
    const m = encodeSingleFrame(f);
    expect(decodeCapturedTraffic(m.value, m.headers, 0)).toEqual([{ ...f, data: m.value }]);
    const noTs = { ...m.headers };
    delete noTs['ctflow-ts-us'];
    expect(decodeCapturedTraffic(m.value, noTs, 1234)[0].tsUs).toBe(1_234_000);
    expect(() => decodeCapturedTraffic(m.value, { 'ctflow-linktype': 'ethernet' }, 0)).toThrow(/ctflow-linktype='ethernet' is not an integer/);
    expect(() => decodeCapturedTraffic(Buffer.from('hello'), {}, 0)).toThrow(/neither a frame batch .* nor a single frame/);
  });
});
