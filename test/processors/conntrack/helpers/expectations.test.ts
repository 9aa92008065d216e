/** The expectation table: matching under masks, consumption, replacement, limits and timers. */
import { EXPECT_PERMANENT, ExpectationTable } from '../../../../processors/conntrack/helpers/expectations';
import type { ExpectEvent, ExpectationSpec } from '../../../../processors/conntrack/helpers/expectations';

const T0 = 1_700_000_000_000_000;
const policy = { maxExpected: 1, timeoutSec: 300 };

function spec(over: Partial<ExpectationSpec> = {}): ExpectationSpec {
  return {
    zone: 0, family: 4, proto: 6, src: '10.0.0.1', dst: '10.0.0.2', sport: 0, sportExact: false, dport: 50000, flags: 0,
    helper: 'ftp', masterId: 1, master: { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 21 }, ...over,
  };
}

function table(limit = 4096): { t: ExpectationTable; events: ExpectEvent[] } {
  const events: ExpectEvent[] = [];
  return { t: new ExpectationTable(() => limit, (e) => events.push(e)), events };
}

describe('ExpectationTable', () => {
  test('a new connection from any source port to the announced one consumes the expectation', () => {
    const { t, events } = table();
    expect(t.add(spec(), policy, T0)).toBe('added');
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 61234, 50001, T0 + 1)).toBeUndefined(); // another port
    expect(t.take(0, 6, '10.0.0.2', '10.0.0.1', 61234, 50000, T0 + 1)).toBeUndefined(); // the other way round
    expect(t.take(1, 6, '10.0.0.1', '10.0.0.2', 61234, 50000, T0 + 1)).toBeUndefined(); // another zone
    expect(t.take(0, 17, '10.0.0.1', '10.0.0.2', 61234, 50000, T0 + 1)).toBeUndefined(); // another protocol
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 61234, 50000, T0 + 2_500_000)?.masterId).toBe(1);
    expect(t.count).toBe(0);
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 61235, 50000, T0 + 3_000_000)).toBeUndefined(); // consumed
    expect(events.map((e) => [e.type, e.expectation.timeout, e.reason])).toEqual([['NEW', 300, undefined], ['DESTROY', 297, 'matched']]);
  });

  test('a PERMANENT expectation survives its matches', () => {
    const { t } = table();
    t.add(spec({ flags: EXPECT_PERMANENT }), policy, T0);
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 1, 50000, T0)).toBeDefined();
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 2, 50000, T0)).toBeDefined();
    expect(t.count).toBe(1);
  });

  test('an exact source port must match', () => {
    const { t } = table();
    t.add(spec({ sport: 20, sportExact: true }), policy, T0);
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 21, 50000, T0)).toBeUndefined();
    expect(t.take(0, 6, '10.0.0.1', '10.0.0.2', 20, 50000, T0)).toBeDefined();
  });

  test('max_expected: a second expectation of the same master evicts the first', () => {
    const { t, events } = table();
    t.add(spec({ dport: 50010 }), policy, T0);
    t.add(spec({ dport: 50011 }), policy, T0 + 1000);
    expect(t.list(T0 + 2000).map((x) => x.dport)).toEqual([50011]);
    expect(events.map((e) => `${e.type} ${e.expectation.dport} ${e.reason ?? ''}`)).toEqual(['NEW 50010 ', 'DESTROY 50010 evicted', 'NEW 50011 ']);
    // With room for two, both stay.
    const two = table();
    two.t.add(spec({ dport: 50010 }), { maxExpected: 2, timeoutSec: 300 }, T0);
    two.t.add(spec({ dport: 50011 }), { maxExpected: 2, timeoutSec: 300 }, T0);
    expect(two.t.count).toBe(2);
  });

  test('the same expectation again replaces it (DESTROY then NEW, with a fresh timer)', () => {
    const { t, events } = table();
    t.add(spec(), policy, T0);
    t.add(spec(), policy, T0 + 100e6);
    expect(events.map((e) => `${e.type} ${e.reason ?? ''}`)).toEqual(['NEW ', 'DESTROY replaced', 'NEW ']);
    expect(t.list(T0 + 100e6)[0].timeout).toBe(300);
  });

  test("another master's overlapping expectation is refused", () => {
    const { t } = table();
    t.add(spec(), policy, T0);
    expect(t.add(spec({ masterId: 2 }), policy, T0)).toBe('clash');
    expect(t.add(spec({ masterId: 2, sport: 7, sportExact: true }), policy, T0)).toBe('clash');
    expect(t.add(spec({ masterId: 2, dport: 50001 }), policy, T0)).toBe('added');
  });

  test('nf_conntrack_expect_max bounds the table', () => {
    const { t } = table(2);
    expect(t.add(spec({ masterId: 1 }), policy, T0)).toBe('added');
    expect(t.add(spec({ masterId: 2, dport: 2 }), policy, T0)).toBe('added');
    expect(t.add(spec({ masterId: 3, dport: 3 }), policy, T0)).toBe('table_full');
    expect(t.count).toBe(2);
  });

  test('an expectation vanishes at its timeout, in deadline order, with timeout 0', () => {
    const { t, events } = table();
    t.add(spec({ masterId: 1, dport: 1 }), policy, T0 + 5e6);
    t.add(spec({ masterId: 2, dport: 2 }), policy, T0);
    t.expire(T0 + 299_999_999);
    expect(t.count).toBe(2);
    t.expire(T0 + 400e6);
    expect(t.count).toBe(0);
    const gone = events.filter((e) => e.type === 'DESTROY');
    expect(gone.map((e) => [e.expectation.dport, e.tsUs - T0, e.expectation.timeout, e.reason])).toEqual([
      [2, 300e6, 0, 'timeout'],
      [1, 305e6, 0, 'timeout'],
    ]);
  });

  test("a master's destruction removes its expectations only", () => {
    const { t } = table();
    t.add(spec({ masterId: 1, dport: 1 }), policy, T0);
    t.add(spec({ masterId: 2, dport: 2 }), policy, T0);
    t.removeMaster(1, T0 + 1);
    expect(t.list(T0 + 1).map((x) => x.masterId)).toEqual([2]);
    expect(t.expecting(1)).toBe(0);
    expect(t.expecting(2)).toBe(1);
  });
});
