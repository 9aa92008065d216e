/** TimeBuckets: counters keep their sums and gauges their latest values as buckets widen. */
import fc from 'fast-check';
import { TimeBuckets } from '../../../sinks/report/timeBuckets';

test('any sequence of counts and gauge settings: sums per series kept, buckets within bounds, gauges end at their last value', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ t: fc.integer({ min: 0, max: 5e9 }), series: fc.constantFrom('a', 'b'), n: fc.integer({ min: 0, max: 9 }) }), { minLength: 1, maxLength: 300 }), (ops) => {
      const b = new TimeBuckets(0, 16);
      const totals: Record<string, number> = { a: 0, b: 0 };
      const sorted = [...ops].sort((x, y) => x.t - y.t);
      for (const op of sorted) {
        b.count(op.series, op.t, op.n);
        b.gauge(`g${op.series}`, op.t, op.n);
        totals[op.series] += op.n;
      }
      expect(b.used).toBeLessThanOrEqual(16);
      const last = sorted[sorted.length - 1];
      expect(b.startUs + b.used * b.bucketUs).toBeGreaterThan(last.t);
      for (const s of ['a', 'b']) {
        expect(b.counter(s).reduce((x, y) => x + y, 0)).toBe(totals[s]);
        const ofSeries = sorted.filter((o) => o.series === s);
        if (ofSeries.length) expect(b.gaugeValues(`g${s}`).at(-1)).toBe(ofSeries[ofSeries.length - 1].n);
      }
    }),
  );
});

test('a gauge is carried forward through buckets where it did not change, and 0 before it was first set', () => {
  const b = new TimeBuckets(0, 8);
  b.gauge('g', 2500, 7);
  b.extendTo(6500);
  expect(b.bucketUs).toBe(1000);
  expect(b.gaugeValues('g')).toEqual([0, 0, 7, 7, 7, 7, 7]);
  b.count('c', 8000);
  expect(b.bucketUs).toBe(2000);
  expect(b.gaugeValues('g')).toEqual([0, 7, 7, 7, 7]);
});

test('an odd or tiny bucket limit is refused with a message naming it', () => {
  expect(() => new TimeBuckets(0, 7)).toThrow(/maxBuckets .* not 7/);
});
