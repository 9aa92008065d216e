/**
 * The expectation table (the kernel's nf_conntrack_expect.c): connections a helper announced and
 * that have not arrived yet. One table per engine, not per shard, because an expected connection
 * may have another address pair than its master (PORT/EPRT to a third address) and so hash to
 * another shard; the engine judges one packet at a time, so a shared table keeps the output the
 * same for any number of shards.
 *
 * Kernel behaviour mirrored:
 * - An expectation matches a new connection's original tuple under its masks: the address and
 *   the destination port exactly, the source port wildcarded (FTP and TFTP data connections come
 *   from any port), in the master's zone (nf_ct_exp_equal).
 * - The first matching new connection consumes it (nf_ct_find_expectation unlinks it, with a
 *   DESTROY event) unless it is PERMANENT.
 * - Adding one (__nf_ct_expect_check): an identical expectation of the same master is replaced;
 *   one that clashes with another master's fails; past the helper's max_expected the master's
 *   oldest is evicted; past nf_conntrack_expect_max the new one is refused.
 * - Each lives for its helper's policy timeout from insertion (a timer: no refresh) and goes when
 *   its master is destroyed (nf_ct_remove_expectations).
 */
import type { Tuple } from '../../flow';

/** NF_CT_EXPECT_PERMANENT: survives being matched. */
export const EXPECT_PERMANENT = 1;

export interface ExpectationSpec {
  zone: number;
  family: 4 | 6;
  proto: number;
  src: string;
  dst: string;
  /** The source port, and whether it must match (FTP and TFTP leave it open: mask 0). */
  sport: number;
  sportExact: boolean;
  dport: number;
  flags: number;
  helper: string;
  /** The master connection: its id and original tuple (conntrack -L expect prints it). */
  masterId: number;
  master: Tuple;
  /** The master's helper data, for whoever consumes the expectation (not printed). */
  masterHelp?: unknown;
  /** Set by a NAT helper (exp->expectfn = nf_nat_follow_master): the binding the connection gets (not printed). */
  follow?: NatFollow;
}

/**
 * nf_nat_follow_master's binding for an expected connection: its source mapped to `srcAddr`,
 * its destination to `dstAddr` port `dport` (the master's addresses in the direction the
 * expectation was made for, and the announced port the NAT helper saved).
 */
export interface NatFollow {
  srcAddr: string;
  dstAddr: string;
  dport: number;
}

export interface Expectation extends ExpectationSpec {
  /** Packet time (µs) at which the timer fires. */
  expiresUs: number;
  /** Insertion order, for the oldest-first rules. */
  seq: number;
}

/** One expectation as `conntrack -L expect` shows it; `timeout` is whole seconds left. */
export interface ExpectationRecord extends ExpectationSpec {
  timeout: number;
}

export interface ExpectEvent {
  type: 'NEW' | 'DESTROY';
  tsUs: number;
  expectation: ExpectationRecord;
  /** DESTROY only: consumed by a connection, timed out, replaced, evicted, or its master went. */
  reason?: 'matched' | 'timeout' | 'replaced' | 'evicted' | 'master_destroyed';
}

/** `clash`: another master's expectation overlaps under the masks, an identical one included (-EBUSY). */
export type AddResult = 'added' | 'clash' | 'table_full' | 'max_expected';

export interface AddPolicy {
  maxExpected: number;
  timeoutSec: number;
}

/** The key every lookup can build from a new connection's tuple: what no mask ever opens. */
function keyOf(zone: number, proto: number, src: string, dst: string, dport: number): string {
  return `${zone}|${proto}|${src}|${dst}|${dport}`;
}

export class ExpectationTable {
  private readonly byKey = new Map<string, Expectation[]>();
  private readonly byMaster = new Map<number, Expectation[]>();
  private live = 0;
  private nextSeq = 0;
  private nextDeadline = Infinity;

  constructor(
    private readonly limit: () => number,
    private readonly emit: (e: ExpectEvent) => void,
  ) {}

  /** Expectations waiting (cnet->expect_count). A new entry looks here only when it is not 0. */
  get count(): number {
    return this.live;
  }

  /** __nf_ct_expect_check + nf_ct_expect_insert. */
  add(spec: ExpectationSpec, policy: AddPolicy, nowUs: number): AddResult {
    const key = keyOf(spec.zone, spec.proto, spec.src, spec.dst, spec.dport);
    for (const other of [...(this.byKey.get(key) ?? [])]) {
      const same = other.sportExact === spec.sportExact && (!spec.sportExact || other.sport === spec.sport);
      if (same) {
        // Another master's identical expectation is no match for this master (master_matches): a clash, -EBUSY.
        if (other.masterId !== spec.masterId) return 'clash';
        this.remove(other, nowUs, 'replaced');
        break;
      } else if (!other.sportExact || !spec.sportExact) {
        return 'clash'; // expect_clash: the tuples overlap under both masks (-EBUSY), whoever the master
      }
    }
    const mine = this.byMaster.get(spec.masterId);
    if (policy.maxExpected && mine && mine.length >= policy.maxExpected) {
      this.remove(mine[0], nowUs, 'evicted'); // evict_oldest_expect
      if (mine.length >= policy.maxExpected) return 'max_expected';
    }
    if (this.live >= this.limit()) return 'table_full'; // "nf_conntrack: expectation table full"
    const exp: Expectation = { ...spec, expiresUs: nowUs + policy.timeoutSec * 1e6, seq: this.nextSeq++ };
    push(this.byKey, key, exp);
    push(this.byMaster, spec.masterId, exp);
    this.live++;
    if (exp.expiresUs < this.nextDeadline) this.nextDeadline = exp.expiresUs;
    this.emit({ type: 'NEW', tsUs: nowUs, expectation: record(exp, nowUs) });
    return 'added';
  }

  /**
   * nf_ct_find_expectation for a new connection's original tuple: the oldest expectation that
   * matches, consumed unless PERMANENT. Undefined when none does.
   */
  take(zone: number, proto: number, src: string, dst: string, sport: number, dport: number, nowUs: number): Expectation | undefined {
    const list = this.byKey.get(keyOf(zone, proto, src, dst, dport));
    if (!list) return undefined;
    const exp = list.find((e) => !e.sportExact || e.sport === sport);
    if (exp && !(exp.flags & EXPECT_PERMANENT)) this.remove(exp, nowUs, 'matched');
    return exp;
  }

  /** nf_ct_remove_expectations: the master is being destroyed. */
  removeMaster(masterId: number, nowUs: number): void {
    const mine = this.byMaster.get(masterId);
    if (!mine) return;
    for (const exp of [...mine]) this.remove(exp, nowUs, 'master_destroyed');
  }

  /** Fires the timers due at or before `nowUs`, oldest deadline first. */
  expire(nowUs: number): void {
    if (nowUs < this.nextDeadline) return;
    const due: Expectation[] = [];
    let next = Infinity;
    for (const list of this.byMaster.values()) {
      for (const exp of list) {
        if (exp.expiresUs <= nowUs) due.push(exp);
        else if (exp.expiresUs < next) next = exp.expiresUs;
      }
    }
    due.sort((a, b) => a.expiresUs - b.expiresUs || a.seq - b.seq);
    for (const exp of due) this.remove(exp, exp.expiresUs, 'timeout');
    this.nextDeadline = next;
  }

  /** The expectations waiting, oldest first, as conntrack -L expect would show them at `nowUs`. */
  list(nowUs: number): ExpectationRecord[] {
    const all: Expectation[] = [];
    for (const list of this.byMaster.values()) all.push(...list);
    return all.sort((a, b) => a.seq - b.seq).map((e) => record(e, nowUs));
  }

  /** Every expectation waiting, in insertion order, and the next insertion number: the state changelog's copy. */
  saved(): { list: Expectation[]; nextSeq: number } {
    const all: Expectation[] = [];
    for (const list of this.byMaster.values()) all.push(...list);
    return { list: all.sort((a, b) => a.seq - b.seq), nextSeq: this.nextSeq };
  }

  /**
   * Puts back what saved() gave (into an empty table), without events. Inserted in insertion
   * order, each key's and each master's list comes out in the order the saved table had.
   */
  restore(list: readonly Expectation[], nextSeq: number): void {
    for (const exp of list) {
      push(this.byKey, keyOf(exp.zone, exp.proto, exp.src, exp.dst, exp.dport), exp);
      push(this.byMaster, exp.masterId, exp);
      this.live++;
      if (exp.expiresUs < this.nextDeadline) this.nextDeadline = exp.expiresUs;
    }
    this.nextSeq = nextSeq;
  }

  /** The master ids with expectations waiting (a master's use count includes them in the kernel). */
  expecting(masterId: number): number {
    return this.byMaster.get(masterId)?.length ?? 0;
  }

  private remove(exp: Expectation, tsUs: number, reason: NonNullable<ExpectEvent['reason']>): void {
    const key = keyOf(exp.zone, exp.proto, exp.src, exp.dst, exp.dport);
    if (!drop(this.byKey, key, exp)) return;
    drop(this.byMaster, exp.masterId, exp);
    this.live--;
    this.emit({ type: 'DESTROY', tsUs, expectation: record(exp, tsUs), reason });
  }
}

function record(exp: Expectation, nowUs: number): ExpectationRecord {
  const { expiresUs: _expires, seq: _seq, masterHelp: _help, follow: _follow, ...spec } = exp;
  // ctnetlink prints (expires - jiffies) / HZ, rounded down and never below 0.
  return { ...spec, timeout: Math.max(0, Math.floor((exp.expiresUs - nowUs) / 1e6 + 1e-9)) };
}

function push<K>(map: Map<K, Expectation[]>, key: K, exp: Expectation): void {
  const list = map.get(key);
  if (list) list.push(exp);
  else map.set(key, [exp]);
}

function drop<K>(map: Map<K, Expectation[]>, key: K, exp: Expectation): boolean {
  const list = map.get(key);
  const at = list ? list.indexOf(exp) : -1;
  if (!list || at < 0) return false;
  list.splice(at, 1);
  if (list.length === 0) map.delete(key);
  return true;
}
