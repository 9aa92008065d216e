/**
 * The fleet-wide flow table: the conntrack tables of many hosts, rebuilt from the events their
 * kernels publish (conntrack -E) instead of from packets. Each host is a zone of its own
 * (hostZones.ts). Nothing here re-runs a state machine: the host's nf_conntrack already decided,
 * and the table only keeps what the events say.
 *
 * How events apply, mirroring what ctnetlink reports:
 * - NEW inserts the entry (IPCT_NEW is sent once, when the entry is confirmed).
 * - UPDATE merges: the protocol state only when the event carries one (ctnetlink includes
 *   CTA_PROTOINFO only when it changed), the status bits (SEEN_REPLY and ASSURED are never cleared
 *   by the kernel, so they are kept once seen), the timeout with the time it was reported, and the
 *   counters when present (they are the kernel's running totals, so they replace, never add).
 * - DESTROY removes the entry and returns its final record, for a flow-accounting sink. With
 *   nf_conntrack_acct=1 the kernel puts the counters in DESTROY events only, so that is where the
 *   totals of a flow seen only through -E come from.
 * - A stream joined mid-way: an UPDATE for an unknown entry inserts it (first seen = that event,
 *   or its `delta-time` back when the host has nf_conntrack_timestamp=1); a DESTROY for an unknown
 *   entry returns a record built from the event alone and changes nothing.
 *
 * Identity: an entry is keyed by (fleet zone, the host's own zone, family, protocol, original
 * tuple), which the kernel keeps unique among live entries, and also indexed by the conntrack id
 * when events carry one. An event whose tuple is already held under another id means the old
 * entry ended without its DESTROY reaching us (the kernel cannot hold both), and the same for an
 * id that reappears with another tuple: the old entry is dropped ("superseded"). XML prints ICMP
 * tuples without type, code or id, so for those the id is part of the key.
 *
 * Redelivered or late events (Kafka is at-least-once): a bounded memory of destroyed ids makes an
 * event for an entry already destroyed, and not newer than its DESTROY, count as ignored instead of
 * resurrecting the entry or accounting the flow twice.
 *
 * Timeouts are not swept: the kernel refreshes them on every packet without an event (UDP and
 * ESTABLISHED TCP most of all), so a reported timeout running out does not mean the entry is gone.
 * `list(nowUs)` shows what is left of the last reported timeout, as conntrack -L would if nothing
 * had refreshed it.
 */
import { STATUS } from '../flow';
import type { Counters, FlowAccountingRecord, FlowRecord, Tuple } from '../flow';
import type { FlowSnapshot, HostFlowEvent } from './hostFlowEvent';
import { HostZones } from './hostZones';

/** A fleet entry: a FlowRecord whose `zone` is the fleet zone, plus where it came from. */
export interface FleetRecord extends FlowRecord {
  /** The reporting host, when the events named one. */
  host?: string;
  /** The conntrack zone inside that host. */
  hostCtZone: number;
  /** Whether `counters` come from the host (nf_conntrack_acct=1) or are the zeros of "not reported". */
  countersKnown: boolean;
  /** Whether `id` is the kernel's (false when the events carried none; `id` is then 0). */
  idKnown: boolean;
  /** When `timeout` was reported (µs), if the event carried a time. */
  timeoutReportedUs?: number;
  mark?: number;
}

export type FleetApplyResult =
  | { action: 'inserted' | 'updated'; record: FleetRecord }
  /** `known`: false when the entry was not in the table (the record is then built from the event alone). */
  | { action: 'destroyed'; record: FleetRecord; known: boolean }
  | { action: 'ignored'; reason: string };

export interface FleetStats {
  /** Events that changed the table. */
  applied: number;
  /** Events that did not: DESTROYs of entries not in the table, and events for entries already destroyed. */
  ignored: number;
  inserted: number;
  updated: number;
  destroyed: number;
  /** Inserted by an UPDATE (the stream was joined after the entry's NEW). */
  adopted: number;
  /** Dropped because their tuple or id turned up on another entry. */
  superseded: number;
  /** DESTROYs of entries not in the table (among `ignored`). */
  unknownDestroys: number;
  /** Events for entries already destroyed, not newer than the DESTROY (among `ignored`). */
  afterDestroy: number;
}

export interface FleetTableOptions {
  /** Host-to-zone assignment (shared if several tables must agree); a fresh one by default. */
  zones?: HostZones;
  /** How many destroyed ids to remember against redelivered events. */
  tombstones?: number;
}

interface Entry {
  key: string;
  idKey?: string;
  seq: number;
  rec: FleetRecord;
}

const STICKY = STATUS.SEEN_REPLY | STATUS.ASSURED;
const zeroCounters = (): { orig: Counters; reply: Counters } => ({ orig: { packets: 0, bytes: 0 }, reply: { packets: 0, bytes: 0 } });
const copyTuple = (t: Tuple): Tuple => (t.icmp ? { ...t, icmp: { ...t.icmp } } : { ...t });

function copyRecord(r: FleetRecord): FleetRecord {
  return { ...r, orig: copyTuple(r.orig), reply: copyTuple(r.reply), counters: { orig: { ...r.counters.orig }, reply: { ...r.counters.reply } } };
}

function tupleKey(zone: number, f: FlowSnapshot): string {
  const o = f.orig;
  let key = `${zone}/${f.zone}/${f.family}/${f.proto}/${o.src}/${o.dst}/${o.sport}/${o.dport}`;
  if (o.icmp) key += `/${o.icmp.type}/${o.icmp.code}/${o.icmp.id}`;
  else if ((f.proto === 1 || f.proto === 58) && f.id !== undefined) key += `#${f.id}`;
  return key;
}

export class FleetTable {
  readonly zones: HostZones;
  readonly #byKey = new Map<string, Entry>();
  readonly #byId = new Map<string, Entry>();
  readonly #tombstones = new Map<string, { key: string; tsUs?: number }>();
  readonly #tombstoneLimit: number;
  #seq = 0;
  #clockUs: number | undefined;
  readonly #stats: FleetStats = { applied: 0, ignored: 0, inserted: 0, updated: 0, destroyed: 0, adopted: 0, superseded: 0, unknownDestroys: 0, afterDestroy: 0 };

  constructor({ zones = new HostZones(), tombstones = 65536 }: FleetTableOptions = {}) {
    this.zones = zones;
    this.#tombstoneLimit = tombstones;
  }

  /** The fleet zone of an event: the caller's, else its host's, else the kernel zone it reports. */
  zoneOf(e: HostFlowEvent): number {
    if (e.hostZone !== undefined) return e.hostZone;
    return e.host !== undefined ? this.zones.zoneOf(e.host) : e.flow.zone;
  }

  apply(e: HostFlowEvent): FleetApplyResult {
    if (e.tsUs !== undefined && (this.#clockUs === undefined || e.tsUs > this.#clockUs)) this.#clockUs = e.tsUs;
    const zone = this.zoneOf(e);
    const snap = e.flow;
    const key = tupleKey(zone, snap);
    const idKey = snap.id !== undefined ? `${zone}/${snap.zone}/${snap.id}` : undefined;

    if (idKey !== undefined) {
      const dead = this.#tombstones.get(idKey);
      if (dead && dead.key === key && (e.tsUs === undefined || dead.tsUs === undefined || e.tsUs <= dead.tsUs)) {
        this.#stats.ignored++;
        this.#stats.afterDestroy++;
        return { action: 'ignored', reason: `entry ${snap.id} was already destroyed` };
      }
    }

    let entry = idKey !== undefined ? this.#byId.get(idKey) : undefined;
    if (entry && entry.key !== key) {
      this.#remove(entry);
      this.#stats.superseded++;
      entry = undefined;
    }
    if (!entry) {
      const other = this.#byKey.get(key);
      if (other && snap.id !== undefined && other.rec.idKnown && other.rec.id !== snap.id) {
        this.#remove(other);
        this.#stats.superseded++;
      } else {
        entry = other;
      }
    }

    if (e.type === 'DESTROY') {
      const known = entry !== undefined;
      const rec = entry ? entry.rec : this.#newRecord(e, zone);
      if (entry) {
        this.#merge(entry, e, idKey);
        this.#remove(entry);
        this.#stats.applied++;
        this.#stats.destroyed++;
      } else {
        this.#stats.ignored++;
        this.#stats.unknownDestroys++;
      }
      if (idKey !== undefined) this.#bury(idKey, key, e.tsUs);
      return { action: 'destroyed', record: copyRecord(rec), known };
    }

    this.#stats.applied++;
    if (entry) {
      this.#merge(entry, e, idKey);
      this.#stats.updated++;
      return { action: 'updated', record: copyRecord(entry.rec) };
    }
    const fresh: Entry = { key, seq: this.#seq++, rec: this.#newRecord(e, zone) };
    this.#byKey.set(key, fresh);
    if (idKey !== undefined) {
      fresh.idKey = idKey;
      this.#byId.set(idKey, fresh);
    }
    this.#stats.inserted++;
    if (e.type === 'UPDATE') this.#stats.adopted++;
    return { action: 'inserted', record: copyRecord(fresh.rec) };
  }

  /**
   * The live entries, grouped by fleet zone and in the order they were first seen within a zone.
   * With `nowUs`, `timeout` is what is left of the last reported one at that time.
   */
  list(nowUs?: number): FleetRecord[] {
    const entries = [...this.#byKey.values()].sort((a, b) => a.rec.zone - b.rec.zone || a.seq - b.seq);
    return entries.map((en) => {
      const r = copyRecord(en.rec);
      if (nowUs !== undefined && r.timeoutReportedUs !== undefined) r.timeout = Math.max(0, r.timeout - Math.floor((nowUs - r.timeoutReportedUs) / 1e6));
      return r;
    });
  }

  /** The latest event time applied (µs), the table's idea of "now" when the input carries times. */
  get clockUs(): number | undefined {
    return this.#clockUs;
  }

  get size(): number {
    return this.#byKey.size;
  }

  stats(): FleetStats {
    return { ...this.#stats };
  }

  #newRecord(e: HostFlowEvent, zone: number): FleetRecord {
    const f = e.flow;
    const ts = e.tsUs;
    let startUs = f.startUs;
    if (startUs === undefined && ts !== undefined) startUs = f.deltaTime !== undefined && e.type !== 'NEW' ? ts - f.deltaTime * 1e6 : ts;
    const rec: FleetRecord = {
      id: f.id ?? 0,
      idKnown: f.id !== undefined,
      zone,
      hostCtZone: f.zone,
      family: f.family,
      proto: f.proto,
      timeout: f.timeout ?? 0,
      orig: copyTuple(f.orig),
      reply: copyTuple(f.reply),
      status: f.status,
      counters: f.counters ? { orig: { ...f.counters.orig }, reply: { ...f.counters.reply } } : zeroCounters(),
      countersKnown: f.counters !== undefined,
      startUs: startUs ?? 0,
      lastUs: f.lastUs ?? ts ?? startUs ?? 0,
    };
    if (f.state !== undefined) rec.state = f.state;
    if (f.timeout !== undefined && ts !== undefined) rec.timeoutReportedUs = ts;
    if (e.host !== undefined) rec.host = e.host;
    if (f.helper !== undefined) rec.helper = f.helper;
    if (f.mark !== undefined) rec.mark = f.mark;
    return rec;
  }

  #merge(entry: Entry, e: HostFlowEvent, idKey: string | undefined): void {
    const rec = entry.rec;
    const f = e.flow;
    if (f.state !== undefined) rec.state = f.state;
    if (f.timeout !== undefined) {
      rec.timeout = f.timeout;
      if (e.tsUs !== undefined) rec.timeoutReportedUs = e.tsUs;
      else delete rec.timeoutReportedUs;
    }
    rec.status = (rec.status & STICKY) | f.status;
    rec.reply = copyTuple(f.reply);
    if (!rec.orig.icmp && f.orig.icmp) rec.orig = copyTuple(f.orig);
    if (f.counters) {
      rec.counters = { orig: { ...f.counters.orig }, reply: { ...f.counters.reply } };
      rec.countersKnown = true;
    }
    const last = f.lastUs ?? e.tsUs;
    if (last !== undefined && last > rec.lastUs) rec.lastUs = last;
    if (rec.startUs === 0 && f.startUs !== undefined) rec.startUs = f.startUs;
    if (f.helper !== undefined) rec.helper = f.helper;
    if (f.mark !== undefined) rec.mark = f.mark;
    if (e.host !== undefined) rec.host = e.host;
    if (!rec.idKnown && f.id !== undefined && idKey !== undefined) {
      rec.id = f.id;
      rec.idKnown = true;
      entry.idKey = idKey;
      this.#byId.set(idKey, entry);
    }
  }

  #remove(entry: Entry): void {
    this.#byKey.delete(entry.key);
    if (entry.idKey !== undefined && this.#byId.get(entry.idKey) === entry) this.#byId.delete(entry.idKey);
  }

  #bury(idKey: string, key: string, tsUs: number | undefined): void {
    this.#tombstones.delete(idKey);
    this.#tombstones.set(idKey, { key, tsUs });
    if (this.#tombstones.size > this.#tombstoneLimit) {
      const oldest = this.#tombstones.keys().next().value;
      if (oldest !== undefined) this.#tombstones.delete(oldest);
    }
  }
}

/**
 * The flow-accounting record of a destroyed fleet entry: kind 'end', its whole counters as the
 * delta (the fleet table makes no active-timeout records of its own), first and last seen.
 */
export function endRecord(final: FleetRecord, tsUs: number = final.lastUs): FlowAccountingRecord {
  return {
    kind: 'end',
    flow: final,
    firstUs: final.startUs,
    lastUs: final.lastUs,
    delta: { orig: { ...final.counters.orig }, reply: { ...final.counters.reply } },
    tsUs,
  };
}
