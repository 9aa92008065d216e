/**
 * Lines crossing threads as bytes come back exactly as written: any strings (non-ASCII, a leading
 * byte-order mark, lone surrogates, empty lines, newlines inside), in order, across batches, and
 * through a real transfer (structuredClone with the transfer list, as postMessage does).
 */
import fc from 'fast-check';
import { LineReader, LineWriter, transferOf } from '../../../cli/workers/lineBatch';

function roundTrip(batches: string[][], asStrings: boolean): string[][] {
  const writer = new LineWriter(asStrings);
  return batches.map((lines) => {
    for (const l of lines) writer.add(l);
    const sent = writer.take();
    const received = structuredClone(sent, { transfer: transferOf(sent) });
    const reader = new LineReader(received);
    return lines.map(() => reader.next());
  });
}

const line = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('', '\ufeff{"a":1}', 'x\ud800y', '\udc00', 'a\nb', '{"i":0,"ctstate":"NEW"}'));

test('any lines, in any batches, come back unchanged', () => {
  fc.assert(
    fc.property(fc.array(fc.array(line, { maxLength: 20 }), { maxLength: 5 }), fc.boolean(), (batches, asStrings) => {
      expect(roundTrip(batches, asStrings)).toEqual(batches);
    }),
    { numRuns: 500 },
  );
});

test('a batch bigger than the first buffer', () => {
  const lines = Array.from({ length: 5000 }, (_, i) => `{"i":${i},"note":"${'é'.repeat(i % 40)}"}`);
  expect(roundTrip([lines, lines.slice(0, 3)], false)).toEqual([lines, lines.slice(0, 3)]);
});
