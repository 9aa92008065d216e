/** delta()/undelta(): any column round-trips, including values that wrap the type's range. */
import fc from 'fast-check';
import { delta, undelta } from '../../../sinks/report/reportData';

test.each([
  ['Uint32Array', (v: number[]) => Uint32Array.from(v, (x) => x >>> 0)],
  ['Int32Array', (v: number[]) => Int32Array.from(v, (x) => x | 0)],
  ['Uint16Array', (v: number[]) => Uint16Array.from(v, (x) => x & 0xffff)],
])('%s round-trips through delta and undelta', (_name, make) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), { maxLength: 200 }), (values) => {
      const original = make(values);
      const d = delta(original);
      expect(d.constructor).toBe(original.constructor);
      undelta(d);
      expect(Array.from(d)).toEqual(Array.from(original));
    }),
  );
});

test('a counting-up column becomes mostly ones', () => {
  expect(Array.from(delta(Uint32Array.of(7, 8, 9, 10)))).toEqual([7, 1, 1, 1]);
});
