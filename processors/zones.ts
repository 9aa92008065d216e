/**
 * Which conntrack zone a packet is in. The kernel never infers a zone: a rule sets it before
 * conntrack looks the packet up, in nft `ct zone set iif map { "eth1" : 1, "eth2" : 2 }` or
 * `ct zone set vlan id` (iptables: `-t raw -j CT --zone N`), and a packet no rule touched is in
 * zone 0. The zone is then part of the lookup (nf_ct_zone_equal), so one 5-tuple in two zones is
 * two entries. A ZonePolicy is that rule for ctflow: where the zone comes from, a map from what
 * is found there to zones, and the zone of everything else.
 */

/**
 * Where a packet's zone key comes from: the capturing interface (pcapng interface name or index),
 * the outermost VLAN id, the zone the Kafka message carries (its `ctflow-zone` header, or a packet
 * event's `zone` field), or the Kafka topic it was read from.
 */
export const ZONE_SOURCES = ['interface', 'vlan', 'header', 'topic'] as const;

export type ZoneSource = (typeof ZONE_SOURCES)[number];

/** A zone id is 16 bits in the kernel (struct nf_conntrack_zone.id). */
export const MAX_ZONE = 0xffff;

export interface ZonePolicy {
  /** Undefined: every packet is in `defaultZone` (an unconditional `ct zone set N`). */
  source?: ZoneSource;
  /**
   * What is found at the source -> zone. Interface keys are names, or indices when all digits;
   * VLAN and header keys are numbers; topic keys are topic names. Empty: the number found is the
   * zone itself (VLAN id, interface index, header value), as `ct zone set vlan id` does.
   */
  map: ReadonlyMap<string, number>;
  /** The zone of a packet nothing maps: no VLAN tag, an interface not in the map, no header. */
  defaultZone: number;
}

/** What a packet offers for its zone: CapturedPacket and a Kafka topic's packets both have these. */
export interface ZoneKeys {
  interfaceId: number;
  interfaceName?: string;
  vlan?: number;
}

/** A packet's zone; `carried` is the zone its message names (header or packet-event field), if any. */
export type ZoneOf = (p: ZoneKeys, carried?: number) => number;

export const DEFAULT_ZONE_POLICY: ZonePolicy = { map: new Map(), defaultZone: 0 };

const DIGITS = /^\d+$/;

/** Map entries keyed by number (the all-digit keys). */
function numberKeys(map: ReadonlyMap<string, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, zone] of map) if (DIGITS.test(k)) out.set(Number(k), zone);
  return out;
}

/** The number found, as a zone: itself with no map (when it fits 16 bits), else its mapping. */
function byNumber(map: ReadonlyMap<number, number>, identity: boolean, dflt: number): (n: number | undefined) => number {
  if (identity) return (n) => (n !== undefined && n <= MAX_ZONE ? n : dflt);
  return (n) => (n === undefined ? dflt : (map.get(n) ?? dflt));
}

/**
 * The policy as a function. `topic` is the Kafka topic the packets come from (the source topic,
 * before any repartitioning), for the topic source; it is fixed, so that zone is found once.
 */
export function zoneResolver(policy: ZonePolicy, topic?: string): ZoneOf {
  const dflt = policy.defaultZone;
  const identity = policy.map.size === 0;
  const of = byNumber(numberKeys(policy.map), identity, dflt);
  switch (policy.source) {
    case undefined:
      return () => dflt;
    case 'topic': {
      const zone = topic === undefined ? dflt : (policy.map.get(topic) ?? dflt);
      return () => zone;
    }
    case 'vlan':
      return (p) => of(p.vlan);
    case 'header':
      return (_p, carried) => of(carried);
    case 'interface': {
      if (identity) return (p) => of(p.interfaceId);
      // A name is the more specific key: it wins over the interface's index.
      const names = new Map([...policy.map].filter(([k]) => !DIGITS.test(k)));
      return (p) => (p.interfaceName !== undefined ? names.get(p.interfaceName) : undefined) ?? of(p.interfaceId);
    }
  }
}
