/**
 * The local checkpoint's file format (cli/checkpointFile.ts): whatever it holds comes back as it
 * was written, and any change to the bytes (a flipped bit anywhere, a cut at any length, bytes
 * added, another version) is refused with the reason, never read as another state.
 */
import fc from 'fast-check';
import { CheckpointFormatError, CHECKPOINT_VERSION, decodeCheckpoint, encodeCheckpoint } from '../../cli/checkpointFile';
import type { Checkpoint } from '../../cli/checkpointFile';

const checkpointArb: fc.Arbitrary<Checkpoint> = fc.record({
  group: fc.string({ unit: 'grapheme', maxLength: 40 }),
  inputTopic: fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/),
  partition: fc.nat({ max: 0xffffffff }),
  writtenMs: fc.nat({ max: 2 ** 50 }),
  changelogOffset: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
  position: fc.option(fc.record({ nextOffset: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String), lastPacketUs: fc.double({ noNaN: true }) }), { nil: undefined }),
  records: fc.uniqueArray(fc.tuple(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.uint8Array({ maxLength: 300 })), { selector: ([k]) => k, maxLength: 40 }).map((entries) => new Map(entries)),
}, { requiredKeys: ['group', 'inputTopic', 'partition', 'writtenMs', 'changelogOffset', 'records'] });

const bytesOf = (c: Checkpoint): Buffer => Buffer.concat(encodeCheckpoint(c));

/** The checkpoint as plain values, for comparing: entry values as arrays, in key order. */
function plain(c: Checkpoint): unknown {
  return { ...c, records: [...c.records].map(([k, v]) => [k, [...v]]).sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)) };
}

describe('checkpoint file format', () => {
  test('round trip: what is written is what is read', () => {
    fc.assert(
      fc.property(checkpointArb, (c) => {
        const back = decodeCheckpoint(bytesOf(c));
        expect(plain(back)).toEqual(plain(c));
        if (!c.position) expect(back.position).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  test('a large state crosses the 1 MiB chunks it is written in', () => {
    const records = new Map<string, Uint8Array>();
    for (let i = 0; i < 5000; i++) records.set(`c${i + 1}`, new Uint8Array(240 + (i % 50)).fill(i & 255));
    records.set('big', new Uint8Array(3 << 20).fill(7));
    const c: Checkpoint = { group: 'g', inputTopic: 't', partition: 3, writtenMs: 1, changelogOffset: 12345n, position: { nextOffset: '99', lastPacketUs: 1.5 }, records };
    expect(encodeCheckpoint(c).length).toBeGreaterThan(3);
    const back = decodeCheckpoint(bytesOf(c));
    expect([...back.records.keys()]).toEqual([...records.keys()]);
    // Compared as bytes: jest's deep equality over millions of array elements takes most of a minute.
    const differing = [...records].filter(([k, v]) => !Buffer.from(v).equals(Buffer.from(back.records.get(k)!)));
    expect(differing.map(([k]) => k)).toEqual([]);
    expect({ ...back, records: undefined }).toEqual({ ...c, records: undefined });
  });

  test('any flipped bit is refused', () => {
    fc.assert(
      fc.property(checkpointArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (c, at, bit) => {
        const b = bytesOf(c);
        b[at % b.length] ^= 1 << bit;
        expect(() => decodeCheckpoint(b)).toThrow(CheckpointFormatError);
      }),
      { numRuns: 300 },
    );
  });

  test('a file cut short at any length is refused, and one past its end too', () => {
    fc.assert(
      fc.property(checkpointArb, fc.nat(), (c, cut) => {
        const b = bytesOf(c);
        const n = cut % b.length;
        // Past the fixed header the length field says what is missing.
        expect(() => decodeCheckpoint(b.subarray(0, n))).toThrow(n >= 20 ? /truncated: \d+ of \d+ bytes/ : /not a ctflow checkpoint/);
        expect(() => decodeCheckpoint(Buffer.concat([b, Buffer.from([0])]))).toThrow(/1 bytes past its end/);
      }),
      { numRuns: 200 },
    );
  });

  test('another format version is refused by its number, whatever follows', () => {
    fc.assert(
      fc.property(checkpointArb, fc.integer({ min: 0, max: 0xffff }).filter((v) => v !== CHECKPOINT_VERSION), (c, version) => {
        const b = bytesOf(c);
        b.writeUInt16BE(version, 8);
        expect(() => decodeCheckpoint(b)).toThrow(`format version ${version} (this build reads version ${CHECKPOINT_VERSION})`);
      }),
    );
  });

  test('other files are not taken for a checkpoint', () => {
    expect(() => decodeCheckpoint(Buffer.from('{"not":"a checkpoint at all, but long enough"}'))).toThrow(/no CTFLOWCP magic/);
    expect(() => decodeCheckpoint(new Uint8Array(0))).toThrow(/0 bytes/);
  });
});
