/** EarlyDropOrder on its own: oldest droppable first, and a size bounded by the table whatever the churn. */
import { EarlyDropOrder } from '../../../processors/conntrack/earlyDrop';
import { ConnStore } from '../../../processors/conntrack/store';

/** A store with `n` confirmed entries (ids 1..n); `droppable` decides per slot. */
function setup(n: number, droppable: (slot: number) => boolean) {
  const store = new ConnStore();
  const order = new EarlyDropOrder(store, droppable);
  const slots: number[] = [];
  for (let i = 0; i < n; i++) {
    const slot = store.alloc();
    store.setId(slot, i + 1);
    store.setLife(slot, store.life(slot) | 2); // LIFE_CONFIRMED
    store.link(slot);
    order.added(slot);
    slots.push(slot);
  }
  return { store, order, slots };
}

test('the oldest droppable entry is found, passing over those that are not', () => {
  const notDroppable = new Set<number>();
  const { order, slots } = setup(10, (slot) => !notDroppable.has(slot));
  expect(order.oldest()).toBe(slots[0]);
  notDroppable.add(slots[0]).add(slots[1]);
  expect(order.oldest()).toBe(slots[2]);
  // The first one becomes droppable again (a connection closing): it is the oldest once more.
  notDroppable.delete(slots[0]);
  order.droppableAgain(slots[0]);
  expect(order.oldest()).toBe(slots[0]);
});

test('an entry that becomes droppable again many times is held once, so the size stays bounded', () => {
  const { order, slots } = setup(3, () => true);
  for (let k = 0; k < 100_000; k++) order.droppableAgain(slots[k % 3]);
  expect(order.size).toBeLessThanOrEqual(3 + 3);
});

test('released entries do not pile up: compaction keeps the size in proportion to the table', () => {
  const { store, order } = setup(0, () => true);
  for (let i = 0; i < 50_000; i++) {
    const slot = store.alloc();
    store.setId(slot, i + 1);
    store.setLife(slot, store.life(slot) | 2);
    store.link(slot);
    order.added(slot);
    order.droppableAgain(slot);
    store.release(slot); // gone at once: every candidate it left is stale
  }
  expect(order.size).toBeLessThanOrEqual(2 * (4096 + 1));
  expect(order.oldest()).toBe(-1);
});
