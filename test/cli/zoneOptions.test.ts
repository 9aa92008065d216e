/** The zone flags and the config file's zones section: what they accept, and errors naming the option or key and the value. */
import { CAPTURE_ZONE_SOURCES, KAFKA_ZONE_SOURCES, zonePolicyFromConfig, zonePolicyFromFlags, zonesConfigSchema } from '../../cli/zoneOptions';

const flags = (zoneMap: string[], more: { zoneFrom?: string; zoneDefault?: string } = {}) => ({ zoneMap, ...more });
const capture = (zoneMap: string[], more: { zoneFrom?: string; zoneDefault?: string } = {}) => zonePolicyFromFlags(flags(zoneMap, more), CAPTURE_ZONE_SOURCES);

describe('zone flags', () => {
  test('prefixed keys name their source; bare keys take --zone-from', () => {
    const p = capture(['iface:eth1=1', 'iface:2=3']);
    expect(p.source).toBe('interface');
    expect([...p.map]).toEqual([['eth1', 1], ['2', 3]]);
    expect(capture(['100=7'], { zoneFrom: 'vlan' })).toEqual({ source: 'vlan', map: new Map([['100', 7]]), defaultZone: 0 });
    // An interface alias with a colon is a bare name, not a prefix.
    expect([...capture(['eth0:1=4'], { zoneFrom: 'interface' }).map]).toEqual([['eth0:1', 4]]);
  });

  test('--zone-default alone puts every packet in that zone; nothing given is zone 0', () => {
    expect(capture([], { zoneDefault: '42' })).toEqual({ source: undefined, map: new Map(), defaultZone: 42 });
    expect(capture([])).toEqual({ source: undefined, map: new Map(), defaultZone: 0 });
  });

  test.each([
    [['eth1'], {}, /--zone-map: 'eth1' is not KEY=ZONE/],
    [['eth1=1'], {}, /--zone-map: 'eth1=1' names no source: write iface:KEY or vlan:KEY, or give --zone-from/],
    [['vlan:5000=1'], {}, /--zone-map: 'vlan:5000=1': a VLAN id is a number from 0 to 4095/],
    [['vlan:100=70000'], {}, /--zone-map: 'vlan:100=70000': '70000' is not a zone: a zone is an integer from 0 to 65535/],
    [['vlan:100=x'], {}, /'x' is not a zone/],
    [['iface:eth1=1', 'vlan:100=2'], {}, /--zone-map: 'vlan:100=2' maps a vlan key, but 'iface:eth1=1' says interface: one source at a time/],
    [['vlan:100=2'], { zoneFrom: 'interface' }, /--zone-map: 'vlan:100=2' maps a vlan key, but --zone-from says interface/],
    [['vlan:100=1', 'vlan:100=2'], {}, /--zone-map: vlan key '100' is mapped twice, to 1 and 2/],
    [['header:3=1'], {}, /--zone-map: 'header:3=1': header: keys apply to Kafka input, not to a capture file/],
    [[], { zoneFrom: 'topic' }, /--zone-from: 'topic' is not one of interface, vlan \(header and topic apply to Kafka input\)/],
    [[], { zoneFrom: 'ethernet' }, /--zone-from: 'ethernet' is not one of interface, vlan/],
    [[], { zoneDefault: '-1' }, /--zone-default: '-1' is not a zone/],
  ])('%j %j is refused', (zoneMap, more, message) => {
    expect(() => capture(zoneMap, more)).toThrow(message);
  });

  test('Kafka input: header and topic sources; the topic source needs its map', () => {
    expect(zonePolicyFromFlags(flags(['topic:site-a=3']), KAFKA_ZONE_SOURCES).source).toBe('topic');
    expect(zonePolicyFromFlags(flags([], { zoneFrom: 'header' }), KAFKA_ZONE_SOURCES).source).toBe('header');
    expect(() => zonePolicyFromFlags(flags([], { zoneFrom: 'topic' }), KAFKA_ZONE_SOURCES)).toThrow(/--zone-from: the topic source needs a map from topic name to zone/);
  });

  test("flags override the config's policy: source and map together, the default on its own", () => {
    const base = zonePolicyFromConfig(zonesConfigSchema.parse({ source: 'vlan', map: { '100': 1 }, default: 5 }));
    expect(zonePolicyFromFlags(flags([], { zoneDefault: '6' }), KAFKA_ZONE_SOURCES, base)).toEqual({ ...base, defaultZone: 6 });
    expect(zonePolicyFromFlags(flags(['iface:eth1=2']), KAFKA_ZONE_SOURCES, base)).toEqual({ source: 'interface', map: new Map([['eth1', 2]]), defaultZone: 5 });
  });
});

describe('zones config section', () => {
  test('defaults: the zone the message carries (header), else 0', () => {
    expect(zonesConfigSchema.parse({})).toEqual({ source: 'header', map: {}, default: 0 });
  });

  test.each([
    [{ source: 'vlan', map: { eth1: 1 } }, ['map', 'eth1'], /a VLAN id is a number from 0 to 4095 \(zones.source is vlan\)/],
    [{ source: 'topic' }, ['map'], /the topic source needs a map/],
    [{ source: 'mac' }, ['source'], /interface|vlan/],
    [{ source: 'interface', map: { eth1: 65536 } }, ['map', 'eth1'], /65535|too big|<=/i],
    [{ default: -1 }, ['default'], /0|>=/],
    [{ sorce: 'vlan' }, [], /sorce/],
  ])('%j: the issue names %j', (raw, path, message) => {
    const r = zonesConfigSchema.safeParse(raw);
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0];
    expect(issue.path).toEqual(path);
    expect(`${issue.message} ${JSON.stringify(issue)}`).toMatch(message);
  });
});
