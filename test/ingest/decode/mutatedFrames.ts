/**
 * Frames for the decoder's property tests: a valid frame of a given list with some bytes
 * overwritten and possibly cut short, the inputs a broken capture or a hostile sender gives.
 */
import fc from 'fast-check';

export function mutatedFrames(valid: ReadonlyArray<readonly [number, Uint8Array]>): fc.Arbitrary<{ linkType: number; data: Uint8Array }> {
  return fc
    .record({
      which: fc.integer({ min: 0, max: valid.length - 1 }),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
    })
    .map(({ which, edits, cut }) => {
      const [linkType, frame] = valid[which];
      const data = Uint8Array.from(frame);
      for (const [at, value] of edits) data[at % data.length] = value;
      return { linkType, data: cut === undefined ? data : data.subarray(0, cut % (data.length + 1)) };
    });
}
