/**
 * Host to zone: in the fleet table every host is a conntrack zone of its own, so the same
 * 5-tuple on two hosts is two entries, as two zones keep them apart in one kernel.
 *
 * The rule (docs/flow-events.md): a zone fixed by configuration wins; otherwise a host's zone is
 * 1 + (FNV-1a-32 of its name's UTF-8 bytes mod 65535), a number from 1 to 65535 like a kernel
 * zone id, the same in every run and every process without coordination. Zone 0 stays for input
 * that names no host. If two hosts hash alike, the one seen second takes the next free number
 * (wrapping from 65535 to 1); only then does the order of arrival matter, and `collisions`
 * counts it.
 */

export const HOST_ZONE_MIN = 1;
export const HOST_ZONE_MAX = 0xffff;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** The zone a host gets when nothing else claims it: 1 + FNV-1a-32(UTF-8 name) mod 65535. */
export function hostZoneHash(host: string): number {
  let h = FNV_OFFSET;
  for (const byte of utf8.encode(host)) h = Math.imul(h ^ byte, FNV_PRIME) >>> 0;
  return HOST_ZONE_MIN + (h % HOST_ZONE_MAX);
}

export class HostZones {
  readonly #byHost = new Map<string, number>();
  readonly #byZone = new Map<number, string>();
  #collisions = 0;

  /** `fixed`: zones assigned by configuration (each from 1 to 65535, no two alike). */
  constructor(fixed: Readonly<Record<string, number>> = {}) {
    for (const [host, zone] of Object.entries(fixed)) {
      if (!Number.isInteger(zone) || zone < HOST_ZONE_MIN || zone > HOST_ZONE_MAX) throw new Error(`zone of host '${host}': ${zone} is not an integer from 1 to 65535`);
      const other = this.#byZone.get(zone);
      if (other !== undefined) throw new Error(`zone ${zone} is given to both '${other}' and '${host}'`);
      this.#claim(host, zone);
    }
  }

  zoneOf(host: string): number {
    const known = this.#byHost.get(host);
    if (known !== undefined) return known;
    let zone = hostZoneHash(host);
    if (this.#byZone.has(zone)) this.#collisions++;
    for (let tries = 0; this.#byZone.has(zone); tries++) {
      if (tries >= HOST_ZONE_MAX) throw new Error('every zone from 1 to 65535 is taken');
      zone = zone === HOST_ZONE_MAX ? HOST_ZONE_MIN : zone + 1;
    }
    this.#claim(host, zone);
    return zone;
  }

  /** The host a zone belongs to, if one was assigned. */
  hostOf(zone: number): string | undefined {
    return this.#byZone.get(zone);
  }

  /** Hosts that hashed to a zone already taken and were moved on. */
  get collisions(): number {
    return this.#collisions;
  }

  #claim(host: string, zone: number): void {
    this.#byHost.set(host, zone);
    this.#byZone.set(zone, host);
  }
}
