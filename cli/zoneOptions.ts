/**
 * Zones on the command line and in the config file: where a packet's zone comes from
 * (`--zone-from`, `zones.source`), a map from what is found there to zones (`--zone-map`,
 * `zones.map`) and the zone of everything else (`--zone-default`, `zones.default`). The
 * resolution itself is processors/zones.ts; here the text is checked, and a bad value is an
 * error naming the option or key and the value. See docs/zones.md.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { z } from 'zod';
import { MAX_ZONE, ZONE_SOURCES, zoneResolver } from '../processors/zones';
import type { ZoneOf, ZonePolicy, ZoneSource } from '../processors/zones';

export interface ZoneFlags {
  zoneFrom?: string;
  zoneMap?: string[];
  zoneDefault?: string;
}

/** Where a capture file's zones can come from; Kafka input adds the message's zone and the topic. */
export const CAPTURE_ZONE_SOURCES: readonly ZoneSource[] = ['interface', 'vlan'];
export const KAFKA_ZONE_SOURCES: readonly ZoneSource[] = ZONE_SOURCES;


/** The --zone-map prefix of each source (`iface:` as nft's iif/iifname, the others by name). */
const PREFIX: Readonly<Record<string, ZoneSource>> = { iface: 'interface', vlan: 'vlan', header: 'header', topic: 'topic' };

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Adds --zone-from, --zone-map and --zone-default to a command that reads packets. */
export function addZoneOptions(cmd: Command, sources: readonly ZoneSource[]): Command {
  const prefixes = Object.keys(PREFIX).filter((p) => sources.includes(PREFIX[p]));
  return cmd
    .addOption(new Option('--zone-from <source>', `where a packet's conntrack zone comes from: ${sources.join(', ')} (as nft 'ct zone set iif map' / 'ct zone set vlan id')`))
    .addOption(new Option('--zone-map <key=zone>', `map a key to a zone (repeatable): ${prefixes.map((p) => `${p}:KEY=ZONE`).join(', ')}`).default([]).argParser(collect))
    .addOption(new Option('--zone-default <zone>', 'the zone of packets nothing maps (default 0)'));
}

/** Why `text` is not a zone id, or undefined when it is one. */
function zoneProblem(n: number): string | undefined {
  return Number.isInteger(n) && n >= 0 && n <= MAX_ZONE ? undefined : `a zone is an integer from 0 to ${MAX_ZONE}`;
}

/** Why `key` cannot be a map key for `source`, or undefined when it can. */
export function mapKeyProblem(source: ZoneSource, key: string): string | undefined {
  if (key === '') return 'the key is empty';
  if (source === 'vlan' && !(/^\d{1,4}$/.test(key) && Number(key) <= 4095)) return 'a VLAN id is a number from 0 to 4095';
  if (source === 'header' && !(/^\d{1,5}$/.test(key) && Number(key) <= MAX_ZONE)) return `a header zone is a number from 0 to ${MAX_ZONE}`;
  if (source === 'interface' && /^\d+$/.test(key) && Number(key) > 0xffffffff) return 'an interface index is a number from 0 to 4294967295';
  return undefined;
}

/** Why source and map cannot go together (the topic source has no number to use as the zone). */
export function policyProblem(source: ZoneSource | undefined, mapSize: number): string | undefined {
  if (source === 'topic' && mapSize === 0) return "the topic source needs a map from topic name to zone (a topic name is no zone number)";
  return undefined;
}

function parseZone(option: string, text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  const problem = zoneProblem(n);
  if (problem) throw new Error(`${option}: '${text}' is not a zone: ${problem}`);
  return n;
}

/** The source the --zone-map prefixes name (all must agree with each other and with --zone-from). */
function sourceOf(o: ZoneFlags, sources: readonly ZoneSource[]): ZoneSource | undefined {
  let source = o.zoneFrom as ZoneSource | undefined;
  if (source !== undefined && !sources.includes(source)) {
    const kafkaOnly = !sources.includes('header') ? ' (header and topic apply to Kafka input)' : '';
    throw new Error(`--zone-from: '${source}' is not one of ${sources.join(', ')}${kafkaOnly}`);
  }
  let from = source !== undefined ? '--zone-from' : '';
  for (const entry of o.zoneMap ?? []) {
    const prefix = /^([a-z]+):/.exec(entry)?.[1];
    const named = prefix !== undefined ? PREFIX[prefix] : undefined;
    if (named === undefined) continue;
    if (!sources.includes(named)) throw new Error(`--zone-map: '${entry}': ${prefix}: keys apply to Kafka input, not to a capture file`);
    if (source !== undefined && named !== source) throw new Error(`--zone-map: '${entry}' maps a ${named} key, but ${from} says ${source}: one source at a time`);
    source = named;
    from ||= `'${entry}'`;
  }
  return source;
}

/**
 * The policy from the flags, over `base` (the config file's, or none): --zone-from and
 * --zone-map together replace its source and map, --zone-default its default.
 */
export function zonePolicyFromFlags(o: ZoneFlags, sources: readonly ZoneSource[], base?: ZonePolicy): ZonePolicy {
  const entries = o.zoneMap ?? [];
  const source = sourceOf(o, sources);
  const map = new Map<string, number>();
  for (const entry of entries) {
    const eq = entry.lastIndexOf('=');
    if (eq < 0) throw new Error(`--zone-map: '${entry}' is not KEY=ZONE (for example iface:eth1=1 or vlan:100=2)`);
    if (source === undefined) {
      const forms = Object.keys(PREFIX).filter((p) => sources.includes(PREFIX[p])).map((p) => `${p}:KEY`);
      throw new Error(`--zone-map: '${entry}' names no source: write ${forms.join(' or ')}, or give --zone-from`);
    }
    let key = entry.slice(0, eq);
    const prefix = /^([a-z]+):/.exec(key)?.[1];
    if (prefix !== undefined && PREFIX[prefix] !== undefined) key = key.slice(prefix.length + 1);
    const problem = mapKeyProblem(source, key);
    if (problem) throw new Error(`--zone-map: '${entry}': ${problem}`);
    const zone = parseZone(`--zone-map: '${entry}'`, entry.slice(eq + 1));
    const before = map.get(key);
    if (before !== undefined && before !== zone) throw new Error(`--zone-map: ${source} key '${key}' is mapped twice, to ${before} and ${zone}`);
    map.set(key, zone);
  }
  const problem = policyProblem(source, map.size);
  if (problem) throw new Error(`--zone-from: ${problem}`);
  const flagsSetSource = source !== undefined;
  return {
    source: flagsSetSource ? source : base?.source,
    map: flagsSetSource ? map : (base?.map ?? new Map()),
    defaultZone: o.zoneDefault !== undefined ? parseZone('--zone-default', o.zoneDefault) : (base?.defaultZone ?? 0),
  };
}

const zoneId = z.number().int().min(0).max(MAX_ZONE);

/**
 * The config file's `zones:` section. Checked as a whole, so an error names the key and the
 * problem (`zones.map.eth1: ...`, `zones.source: ...`). Without the section, Kafka input takes
 * the zone each message carries (source `header`), else 0.
 */
export const zonesConfigSchema = z
  .strictObject({
    source: z.enum(ZONE_SOURCES).default('header'),
    map: z.record(z.string(), zoneId).default({}),
    default: zoneId.default(0),
  })
  .superRefine((c, ctx) => {
    for (const key of Object.keys(c.map)) {
      const problem = mapKeyProblem(c.source, key);
      if (problem) ctx.addIssue({ code: 'custom', path: ['map', key], message: `${problem} (zones.source is ${c.source})` });
    }
    const problem = policyProblem(c.source, Object.keys(c.map).length);
    if (problem) ctx.addIssue({ code: 'custom', path: ['map'], message: problem });
  });

export type ZonesConfig = z.output<typeof zonesConfigSchema>;

export const ZONES_CONFIG_DEFAULT: ZonesConfig = { source: 'header', map: {}, default: 0 };

export function zonePolicyFromConfig(c: ZonesConfig): ZonePolicy {
  return { source: c.source, map: new Map(Object.entries(c.map)), defaultZone: c.default };
}

/**
 * The zone of each packet of a capture file under these flags, or undefined when none is given:
 * the pipeline then stays on its zone-0 path rather than a resolver that always says 0.
 */
export function captureZoneOf(o: ZoneFlags): ZoneOf | undefined {
  const zones = zonePolicyFromFlags(o, CAPTURE_ZONE_SOURCES);
  return zones.source === undefined && zones.defaultZone === 0 ? undefined : zoneResolver(zones);
}
