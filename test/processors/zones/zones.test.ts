/**
 * Zone resolution, against what the kernel does with the nft rules it mirrors: a packet keeps
 * zone 0 unless a rule sets one; `ct zone set vlan id` uses the VLAN id itself; a map lookup that
 * misses leaves the packet in the default zone; an untagged packet has no VLAN id to use.
 */
import { zoneResolver } from '../../../processors/zones';
import type { ZonePolicy } from '../../../processors/zones';

const policy = (p: Partial<ZonePolicy> & { entries?: Array<[string, number]> }): ZonePolicy => ({
  source: p.source,
  map: new Map(p.entries ?? []),
  defaultZone: p.defaultZone ?? 0,
});

describe('zoneResolver', () => {
  test('no source: every packet is in the default zone, whatever it carries', () => {
    expect(zoneResolver(policy({}))({ interfaceId: 3, interfaceName: 'eth1', vlan: 100 }, 9)).toBe(0);
    expect(zoneResolver(policy({ defaultZone: 7 }))({ interfaceId: 0 })).toBe(7);
  });

  test('vlan without a map: the VLAN id is the zone (ct zone set vlan id); untagged packets get the default', () => {
    const of = zoneResolver(policy({ source: 'vlan', defaultZone: 5 }));
    expect([of({ interfaceId: 0, vlan: 100 }), of({ interfaceId: 0, vlan: 0 }), of({ interfaceId: 0 })]).toEqual([100, 0, 5]);
  });

  test('vlan with a map: mapped ids get their zone, the rest the default', () => {
    const of = zoneResolver(policy({ source: 'vlan', entries: [['100', 1], ['200', 2]], defaultZone: 9 }));
    expect([100, 200, 300, undefined].map((vlan) => of({ interfaceId: 0, vlan }))).toEqual([1, 2, 9, 9]);
  });

  test('interface: a name wins over an index; an unnamed or unmapped interface falls back to its index, then the default', () => {
    const of = zoneResolver(policy({ source: 'interface', entries: [['eth1', 1], ['0', 2], ['wan0', 3]] }));
    expect(of({ interfaceId: 0, interfaceName: 'eth1' })).toBe(1); // index 0 is mapped too: the name is more specific
    expect(of({ interfaceId: 0 })).toBe(2);
    expect(of({ interfaceId: 0, interfaceName: 'lo' })).toBe(2);
    expect(of({ interfaceId: 4, interfaceName: 'wan0' })).toBe(3);
    expect(of({ interfaceId: 4 })).toBe(0);
  });

  test('interface without a map: the interface index is the zone (as ct zone set iif would use the ifindex)', () => {
    const of = zoneResolver(policy({ source: 'interface', defaultZone: 4 }));
    expect([of({ interfaceId: 2, interfaceName: 'eth1' }), of({ interfaceId: 70000 })]).toEqual([2, 4]);
  });

  test('header: the zone the message carries, renumbered by a map when there is one', () => {
    expect(zoneResolver(policy({ source: 'header', defaultZone: 3 }))({ interfaceId: 0, vlan: 8 }, 12)).toBe(12);
    expect(zoneResolver(policy({ source: 'header', defaultZone: 3 }))({ interfaceId: 0, vlan: 8 })).toBe(3);
    const mapped = zoneResolver(policy({ source: 'header', entries: [['12', 1]], defaultZone: 3 }));
    expect([mapped({ interfaceId: 0 }, 12), mapped({ interfaceId: 0 }, 13)]).toEqual([1, 3]);
  });

  test('topic: one zone for the whole topic, from the map, else the default', () => {
    const p = policy({ source: 'topic', entries: [['site-a', 10], ['site-b', 20]], defaultZone: 1 });
    expect(zoneResolver(p, 'site-b')({ interfaceId: 0, vlan: 5 }, 3)).toBe(20);
    expect(zoneResolver(p, 'site-c')({ interfaceId: 0 })).toBe(1);
    expect(zoneResolver(p)({ interfaceId: 0 })).toBe(1);
  });
});
