/**
 * FlowTable: a lookup finds exactly the tuples inserted and not removed, whatever the hash's check
 * bits in the cells say, also after the store has grown past the slots a table's value bits held
 * (the table then re-encodes its cells with fewer check bits).
 */
import fc from 'fast-check';
import { ConnStore, kindOf } from '../../../processors/conntrack/store';
import { FlowTable } from '../../../processors/conntrack/table';

interface Tuple {
  kind: number;
  ports: number;
  src4: number;
  dst4: number;
}

/** A small universe of tuples, so that home cells collide and probe paths cross deleted cells. */
const tupleArb = fc.record({
  kind: fc.constantFrom(kindOf(0, 6, 4), kindOf(0, 17, 4), kindOf(1, 6, 4)),
  ports: fc.integer({ min: 0, max: 7 }),
  src4: fc.integer({ min: 0, max: 7 }),
  dst4: fc.constantFrom(0, 0xc0000201),
});

const key = (t: Tuple): string => `${t.kind}/${t.ports}/${t.src4}/${t.dst4}`;

/** Puts a flow in a fresh slot: `t` as its original tuple, the swapped one as its reply. */
function add(store: ConnStore, table: FlowTable, t: Tuple): number {
  const slot = store.alloc();
  store.setKind(slot, t.kind);
  store.setTuple(slot, 0, 4, '', '', t.ports, t.src4, t.dst4);
  store.setTuple(slot, 1, 4, '', '', t.ports ^ 0x10000, t.dst4, t.src4);
  table.insert(slot);
  return slot;
}

describe('FlowTable', () => {
  it('finds what was inserted and not removed (insertions and removals in any order)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ t: tupleArb, remove: fc.boolean() }), { maxLength: 200 }), (ops) => {
        const store = new ConnStore();
        const table = new FlowTable(store);
        const live = new Map<string, number>();
        for (const { t, remove } of ops) {
          const k = key(t);
          const slot = live.get(k);
          if (slot === undefined) {
            live.set(k, add(store, table, t));
          } else if (remove) {
            table.remove(slot);
            store.release(slot);
            live.delete(k);
          }
        }
        for (const t of ops.map((o) => o.t)) {
          const slot = live.get(key(t));
          const found = table.find(t.kind, t.ports, t.src4, t.dst4, '', '');
          expect(found).toBe(slot === undefined ? -1 : 2 * slot);
          const reply = table.find(t.kind, t.ports ^ 0x10000, t.dst4, t.src4, '', '');
          expect(reply).toBe(slot === undefined ? -1 : 2 * slot + 1);
        }
      }),
    );
  });

  it('keeps finding every entry while the store grows past what the cells first held', () => {
    const store = new ConnStore();
    const table = new FlowTable(store);
    const n = 70_000; // 2 * slot + 2 passes 2^16 - 1, the value bits of a new table
    const slots: number[] = [];
    const ports = (i: number): number => (((1024 + (i % 60000)) << 16) | 443) >>> 0;
    for (let i = 0; i < n; i++) {
      slots.push(add(store, table, { kind: kindOf(0, 6, 4), ports: ports(i), src4: 0x0a000000 + i, dst4: 0xc0000201 }));
      if (i % 3 === 0) {
        table.remove(slots[i]);
        store.release(slots[i]);
      }
    }
    const found: number[] = [];
    const wanted: number[] = [];
    for (let i = 0; i < n; i++) {
      found.push(table.find(kindOf(0, 6, 4), ports(i), 0x0a000000 + i, 0xc0000201, '', ''));
      wanted.push(i % 3 === 0 ? -1 : 2 * slots[i]);
    }
    expect(found).toEqual(wanted);
  });
});
