import { CommitPoint } from '../../../processors/stream/commitPoint';
import { EventTimeMerge } from '../../../processors/stream/eventTimeMerge';

describe('CommitPoint', () => {
  test('commits the message holding the oldest open flow, or the next offset when none is open', () => {
    const c = new CommitPoint();
    c.addMessage(0, '100'); // packets 0..4
    c.addMessage(5, '101'); // no packets (say, only ARP)
    c.addMessage(5, '102'); // packets 5..9
    expect(c.safeOffset(3, 10, '103')).toBe('100');
    expect(c.safeOffset(5, 10, '103')).toBe('102');
    expect(c.safeOffset(7, 10, '103')).toBe('102');
    expect(c.safeOffset(10, 10, '103')).toBe('103');
  });
});

describe('EventTimeMerge', () => {
  test('releases events in time order only once every running partition has passed them', () => {
    const m = new EventTimeMerge<{ tsUs: number; n: string }>([0, 1]);
    expect(m.push(0, [{ tsUs: 10, n: 'a' }, { tsUs: 30, n: 'b' }], 30)).toEqual([]);
    expect(m.push(1, [{ tsUs: 20, n: 'c' }], 20).map((e) => e.n)).toEqual(['a', 'c']);
    expect(m.finish(1).map((e) => e.n)).toEqual(['b']);
    expect(m.push(0, [{ tsUs: 40, n: 'd' }], 40).map((e) => e.n)).toEqual(['d']);
  });
});
