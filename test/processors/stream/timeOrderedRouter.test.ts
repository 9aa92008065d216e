import fc from 'fast-check';
import { TimeOrderedRouter } from '../../../processors/stream/timeOrderedRouter';

const item = (tsUs: number, payload: string) => ({ tsUs, target: 0, payload });

describe('TimeOrderedRouter', () => {
  test('holds items until every delivering partition has passed them, and commits only what is released', () => {
    const r = new TimeOrderedRouter<string>();
    r.expect(0);
    r.expect(1);
    r.add(0, 10n, [item(1, 'syn'), item(5, 'ack')]);
    expect(r.due()).toEqual([]); // partition 1 has said nothing yet
    r.add(1, 70n, [item(3, 'syn-ack')]);
    expect(r.due().map((i) => i.payload)).toEqual(['syn', 'syn-ack']);
    expect(r.committable()).toEqual(new Map([[0, '10'], [1, '71']]));
    r.release(1);
    expect(r.due().map((i) => i.payload)).toEqual(['ack']);
    expect(r.committable()).toEqual(new Map([[0, '11'], [1, '71']]));
  });

  test('whatever the interleaving of deliveries, the released order is the time order', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 8 }), { minLength: 1, maxLength: 4 }), fc.infiniteStream(fc.nat()), (lists, picks) => {
        const sorted = lists.map((l) => [...l].sort((a, b) => a - b));
        const r = new TimeOrderedRouter<number>();
        sorted.forEach((l, p) => (l.length ? r.expect(p) : undefined)); // as the stage does: only partitions with data hold the watermark
        const next = sorted.map(() => 0);
        const out: number[] = [];
        const it = picks[Symbol.iterator]();
        for (;;) {
          const open = sorted.map((_, p) => p).filter((p) => next[p] < sorted[p].length);
          if (open.length === 0) break;
          const p = open[it.next().value % open.length];
          const ts = sorted[p][next[p]++];
          r.add(p, BigInt(next[p]), [{ tsUs: ts, target: 0, payload: ts }]);
          if (next[p] === sorted[p].length) r.release(p);
          out.push(...r.due().map((i) => i.payload));
        }
        out.push(...r.due().map((i) => i.payload));
        expect(out).toEqual(sorted.flat().sort((a, b) => a - b));
      }),
    );
  });
});
