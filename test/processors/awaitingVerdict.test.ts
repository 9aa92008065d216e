import { AwaitingVerdict } from '../../processors/awaitingVerdict';

describe('AwaitingVerdict', () => {
  it('gives back the packet being pushed when its verdict comes out inside the push, holding nothing', () => {
    const a = new AwaitingVerdict<string>();
    a.pushing(0, 'p0');
    expect(a.take(0)).toBe('p0');
    a.pushed();
    expect(a.held.size).toBe(0);
    expect(a.take(0)).toBeUndefined();
  });

  it('holds a packet whose verdict did not come out, in index order, until its verdict does', () => {
    const a = new AwaitingVerdict<string>();
    for (const i of [3, 4, 5]) {
      a.pushing(i, `p${i}`);
      if (i === 4) expect(a.take(4)).toBe('p4');
      a.pushed();
    }
    expect([...a.held]).toEqual([[3, 'p3'], [5, 'p5']]);
    // A later push releases the held ones (a reassembled datagram) as well as its own packet.
    a.pushing(6, 'p6');
    expect(a.take(3)).toBe('p3');
    expect(a.take(5)).toBe('p5');
    expect(a.take(6)).toBe('p6');
    a.pushed();
    expect(a.held.size).toBe(0);
  });

  it('answers undefined for a verdict about a packet it was not given', () => {
    const a = new AwaitingVerdict<string>();
    a.pushing(1, 'p1');
    expect(a.take(0)).toBeUndefined();
    a.pushed();
    expect(a.take(2)).toBeUndefined();
    expect([...a.held]).toEqual([[1, 'p1']]);
  });
});
