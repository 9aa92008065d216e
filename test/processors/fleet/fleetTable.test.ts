/** The fleet table: events applied as ctnetlink means them, hosts as zones, streams joined late. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlowEvents } from '../../../ingest/flowEvents';
import type { HostFlowEvent } from '../../../ingest/flowEvents';
import { FleetTable, endRecord } from '../../../processors/fleet/fleetTable';
import type { FleetRecord } from '../../../processors/fleet/fleetTable';
import { HostZones, hostZoneHash } from '../../../processors/fleet/hostZones';
import { STATUS } from '../../../processors/flow';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'flowEvents');
const read = (name: string): HostFlowEvent[] => {
  const r = parseFlowEvents(readFileSync(join(fixtures, name), 'utf8'));
  expect(r.errors).toEqual([]);
  return r.events;
};

/** An entry as conntrack -L shows it, timeouts and counters aside. */
const view = (r: FleetRecord): string =>
  `${r.id} z${r.zone} ${r.proto} ${r.state ?? '-'} ${r.orig.src}:${r.orig.sport}>${r.orig.dst}:${r.orig.dport} ${r.reply.src}:${r.reply.sport}>${r.reply.dst}:${r.reply.dport} ` +
  `${r.status & STATUS.SEEN_REPLY ? '' : 'UNREPLIED '}${r.status & STATUS.ASSURED ? 'ASSURED ' : ''}mark=${r.mark ?? 0}`;

function udp(type: HostFlowEvent['type'], over: Partial<HostFlowEvent> & { id?: number; sport?: number; state?: string } = {}): HostFlowEvent {
  const { id = 1, sport = 1000, state, ...rest } = over;
  const e: HostFlowEvent = {
    type,
    tsUs: 1_000_000,
    flow: {
      id,
      zone: 0,
      family: 4,
      proto: 17,
      timeout: 30,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', sport, dport: 53 },
      reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport: sport },
      status: STATUS.CONFIRMED | (type === 'NEW' ? 0 : STATUS.SEEN_REPLY),
    },
    ...rest,
  };
  if (state !== undefined) e.flow.state = state;
  return e;
}

describe('one host, from its real conntrack output', () => {
  const events = read('events.txt');
  const flushAt = events.findIndex((e) => e.type === 'DESTROY' && e.flow.proto === 58);
  const listing = read('table.txt');

  test('the events up to the listing rebuild the listing (NAT, zone, mark, IPv6, ICMP, SCTP)', () => {
    const t = new FleetTable();
    events.slice(0, flushAt).forEach((e) => expect(t.apply(e).action).not.toBe('ignored'));
    const kernel = new FleetTable();
    listing.forEach((e) => kernel.apply(e));
    expect(t.list().map(view).sort()).toEqual(kernel.list().map(view).sort());
    expect(t.size).toBe(9);
    // -E carries counters only on DESTROY: the live entries have none yet.
    expect(t.list().every((r) => !r.countersKnown)).toBe(true);
    const dnat = t.list().find((r) => r.orig.dst === '192.0.2.80')!;
    expect(dnat.status & STATUS.DST_NAT).toBeTruthy();
    expect(dnat.state).toBe('TIME_WAIT');
    expect(dnat.startUs).toBe(1795657409048518);
    expect(dnat.lastUs).toBe(1795657409050187);
    expect(t.stats()).toMatchObject({ applied: flushAt, inserted: 10, destroyed: 1, ignored: 0, adopted: 0 });
  });

  test('the flush returns every entry once, with the counters the listing showed', () => {
    const t = new FleetTable();
    events.slice(0, flushAt).forEach((e) => t.apply(e));
    const finals = events.slice(flushAt).map((e) => t.apply(e));
    expect(finals.every((r) => r.action === 'destroyed' && r.known)).toBe(true);
    expect(t.size).toBe(0);
    const counted = (r: { orig: { src: string; sport: number; dport: number }; counters?: unknown }): string => `${r.orig.sport}>${r.orig.dport} ${JSON.stringify(r.counters)}`;
    const fromDestroy = finals.map((r) => (r.action === 'destroyed' ? counted(r.record) : '')).sort();
    expect(fromDestroy).toEqual(listing.map((e) => counted(e.flow)).sort());
    const sctp = finals.find((r) => r.action === 'destroyed' && r.record.proto === 132);
    expect(sctp && sctp.action === 'destroyed' && sctp.record).toMatchObject({ state: 'ESTABLISHED', countersKnown: true, counters: { orig: { packets: 2, bytes: 92 } } });
  });

  test('the XML of the same events builds the same table', () => {
    const xml = read('events.xml');
    const a = new FleetTable();
    const b = new FleetTable();
    events.slice(0, flushAt).forEach((e) => a.apply(e));
    xml.slice(0, flushAt).forEach((e) => b.apply(e));
    expect(b.list().map(view)).toEqual(a.list().map(view));
    xml.slice(flushAt).forEach((e) => b.apply(e));
    expect(b.size).toBe(0);
  });

  test('a stream joined mid-way: UPDATEs adopt their entries, a DESTROY of an unknown entry still gives its record', () => {
    const t = new FleetTable();
    const late = events.filter((e, k) => e.type !== 'NEW' && k < flushAt);
    late.forEach((e) => t.apply(e));
    expect(t.stats().adopted).toBeGreaterThan(5);
    const refused = events.find((e) => e.type === 'DESTROY' && e.flow.orig.dport === 9)!;
    const r = new FleetTable().apply(refused);
    expect(r).toMatchObject({ action: 'destroyed', known: false, record: { state: 'CLOSE', countersKnown: true } });
    // delta-time=0: it began when it ended.
    expect(r.action === 'destroyed' && r.record.startUs).toBe(refused.tsUs);
    const udpFlush = events.find((e) => e.type === 'DESTROY' && e.flow.orig.dport === 5300)!;
    const u = new FleetTable().apply(udpFlush);
    expect(u.action === 'destroyed' && u.record.startUs).toBe(udpFlush.tsUs! - 4e6);
  });
});

describe('hosts are zones', () => {
  test('the same events from two hosts are two sets of entries, each in its host zone', () => {
    const events = read('events.txt').filter((e) => e.type !== 'DESTROY');
    const t = new FleetTable();
    for (const host of ['edge-a', 'edge-b']) events.forEach((e) => t.apply({ ...e, host }));
    const list = t.list();
    expect(list).toHaveLength(20);
    const zones = [...new Set(list.map((r) => r.zone))];
    expect(zones).toEqual([hostZoneHash('edge-a'), hostZoneHash('edge-b')].sort((x, y) => x - y));
    // Listed by zone, then in the order first seen.
    expect(list.map((r) => r.zone)).toEqual([...list.map((r) => r.zone)].sort((x, y) => x - y));
    expect(list.filter((r) => r.host === 'edge-a').map((r) => r.orig.dport).slice(0, 3)).toEqual([80, 443, 22]);
    // The kernel's own zone inside a host is kept apart.
    expect(list.find((r) => r.host === 'edge-b' && r.orig.dport === 5353)!.hostCtZone).toBe(7);
  });

  test('a zone given by the caller wins over the host rule', () => {
    const t = new FleetTable();
    expect(t.apply(udp('NEW', { host: 'edge-a', hostZone: 900 })).action).toBe('inserted');
    expect(t.list()[0].zone).toBe(900);
  });

  test('zoneOf is the FNV-1a hash rule, the same in every table', () => {
    // FNV-1a-32("a") = 0xe40c292c; 1 + 0xe40c292c mod 65535.
    expect(hostZoneHash('a')).toBe(1 + (0xe40c292c % 65535));
    expect(new HostZones().zoneOf('db-1')).toBe(new HostZones().zoneOf('db-1'));
    expect(hostZoneHash('db-1')).toBeGreaterThanOrEqual(1);
  });

  test('two hosts that hash alike: the second takes the next free zone', () => {
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let k = 0; !pair; k++) {
      const host = `host-${k}`;
      const z = hostZoneHash(host);
      const other = seen.get(z);
      if (other) pair = [other, host];
      seen.set(z, host);
    }
    const zones = new HostZones();
    const first = zones.zoneOf(pair[0]);
    expect(zones.zoneOf(pair[1])).toBe(first === 65535 ? 1 : first + 1);
    expect(zones.zoneOf(pair[0])).toBe(first);
    expect(zones.collisions).toBe(1);
    expect(zones.hostOf(first)).toBe(pair[0]);
  });

  test('fixed zones are checked', () => {
    expect(new HostZones({ a: 5 }).zoneOf('a')).toBe(5);
    expect(() => new HostZones({ a: 0 })).toThrow(/not an integer from 1 to 65535/);
    expect(() => new HostZones({ a: 5, b: 5 })).toThrow(/zone 5 is given to both 'a' and 'b'/);
  });
});

describe('merging and identity', () => {
  test('UPDATE keeps the state it does not carry, keeps ASSURED once seen, replaces counters', () => {
    const t = new FleetTable();
    t.apply(udp('NEW', { state: 'SYN_SENT' }));
    const assured = udp('UPDATE', { state: 'ESTABLISHED', tsUs: 2_000_000 });
    assured.flow.status |= STATUS.ASSURED;
    t.apply(assured);
    const bare = udp('UPDATE', { tsUs: 3_000_000 });
    bare.flow.counters = { orig: { packets: 4, bytes: 400 }, reply: { packets: 1, bytes: 100 } };
    bare.flow.timeout = 120;
    const r = t.apply(bare);
    expect(r).toMatchObject({ action: 'updated', record: { state: 'ESTABLISHED', timeout: 120, timeoutReportedUs: 3_000_000, startUs: 1_000_000, lastUs: 3_000_000, countersKnown: true } });
    expect(r.action === 'updated' && r.record.status & STATUS.ASSURED).toBeTruthy();
    const again = udp('UPDATE', { tsUs: 4_000_000 });
    again.flow.counters = { orig: { packets: 5, bytes: 500 }, reply: { packets: 1, bytes: 100 } };
    expect(t.apply(again)).toMatchObject({ record: { counters: { orig: { packets: 5, bytes: 500 } } } });
  });

  test('list(now) shows what is left of the last reported timeout', () => {
    const t = new FleetTable();
    t.apply(udp('NEW'));
    expect(t.list(11_500_000)[0].timeout).toBe(20);
    expect(t.list(90_000_000)[0].timeout).toBe(0);
    expect(t.list()[0].timeout).toBe(30);
  });

  test('a tuple that comes back under a new id replaces the entry whose DESTROY was lost', () => {
    const t = new FleetTable();
    t.apply(udp('NEW', { id: 1 }));
    expect(t.apply(udp('NEW', { id: 2, tsUs: 5_000_000 })).action).toBe('inserted');
    expect(t.list().map((r) => r.id)).toEqual([2]);
    expect(t.stats().superseded).toBe(1);
    // And an id that comes back with another tuple: the old connection is gone too.
    expect(t.apply(udp('UPDATE', { id: 2, sport: 2000, tsUs: 6_000_000 })).action).toBe('inserted');
    expect(t.list().map((r) => r.orig.sport)).toEqual([2000]);
    expect(t.stats().superseded).toBe(2);
  });

  test('events without ids still find their entry by tuple', () => {
    const t = new FleetTable();
    const noId = (e: HostFlowEvent): HostFlowEvent => ({ ...e, flow: { ...e.flow, id: undefined } });
    t.apply(noId(udp('NEW')));
    expect(t.apply(noId(udp('UPDATE'))).action).toBe('updated');
    expect(t.apply(udp('UPDATE', { id: 9 })).action).toBe('updated');
    expect(t.list()[0]).toMatchObject({ id: 9, idKnown: true });
    expect(t.apply(noId(udp('DESTROY')))).toMatchObject({ action: 'destroyed', known: true });
  });

  test('ICMP from XML has no echo id in the tuple, so the conntrack id keeps two pings apart', () => {
    const ping = (id: number): HostFlowEvent => ({
      type: 'NEW',
      flow: { id, zone: 0, family: 4, proto: 1, orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0 }, reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 0, dport: 0 }, status: STATUS.CONFIRMED },
    });
    const t = new FleetTable();
    t.apply(ping(1));
    t.apply(ping(2));
    expect(t.size).toBe(2);
  });

  test('redelivered and late events do not resurrect an entry or count a flow twice', () => {
    const t = new FleetTable();
    t.apply(udp('NEW'));
    const destroy = udp('DESTROY', { tsUs: 9_000_000 });
    expect(t.apply(destroy)).toMatchObject({ action: 'destroyed', known: true });
    expect(t.apply(destroy)).toMatchObject({ action: 'ignored' });
    expect(t.apply(udp('UPDATE', { tsUs: 8_000_000 }))).toMatchObject({ action: 'ignored' });
    expect(t.size).toBe(0);
    // The same id and tuple later than the DESTROY is a new connection (ids are reused).
    expect(t.apply(udp('NEW', { tsUs: 10_000_000 })).action).toBe('inserted');
    expect(t.stats()).toMatchObject({ applied: 3, ignored: 2, afterDestroy: 2, destroyed: 1, unknownDestroys: 0 });
  });

  test('endRecord turns a final record into a flow-accounting record', () => {
    const t = new FleetTable();
    t.apply(udp('NEW'));
    const d = udp('DESTROY', { tsUs: 7_000_000 });
    d.flow.counters = { orig: { packets: 2, bytes: 90 }, reply: { packets: 1, bytes: 60 } };
    const r = t.apply(d);
    if (r.action !== 'destroyed') throw new Error(r.action);
    expect(endRecord(r.record)).toEqual({
      kind: 'end',
      flow: r.record,
      firstUs: 1_000_000,
      lastUs: 7_000_000,
      delta: { orig: { packets: 2, bytes: 90 }, reply: { packets: 1, bytes: 60 } },
      tsUs: 7_000_000,
    });
  });

  test('records handed out are copies', () => {
    const t = new FleetTable();
    const r = t.apply(udp('NEW'));
    if (r.action !== 'inserted') throw new Error(r.action);
    r.record.orig.src = '192.0.2.99';
    t.list()[0].counters.orig.packets = 99;
    expect(t.list()[0].orig.src).toBe('10.0.0.1');
    expect(t.list()[0].counters.orig.packets).toBe(0);
  });
});
