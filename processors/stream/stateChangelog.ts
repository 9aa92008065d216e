/**
 * A partition's conntrack state as changelog records, the way a Kafka Streams state store is
 * backed by a compacted topic: each record is the latest value of one key, and a new owner of
 * the partition rebuilds the PartitionProcessor from the topic read to its end instead of
 * replaying the input (issue 6). Pure: records in, records out; the Kafka side is elsewhere.
 *
 * Keys (per partition, so no partition prefix):
 * - `c<id>`: one conntrack entry (state/entryCodec.ts) followed by the partition's accounting of
 *   the flow when it has any (OpenFlow: what the next active or end record counts from). A
 *   destroyed entry's key gets a tombstone (null).
 * - `m`: the partition-wide rest: META_FORMAT, then one tagged value holding the clock, the
 *   counters (conntrack -S, untracked), the next packet index, the expectation table, and the
 *   packets held back (fragments being reassembled, verdicts waiting for an earlier fragment).
 *   It is small except while fragments are held: a lost fragment holds back every later packet's
 *   verdict for up to ipfrag_time, and those packets ride in `m` until then.
 *
 * Which entries to write is tracked, not searched for: the shard notes every slot a packet,
 * helper or NAT binding touched and every entry destroyed (state/changes.ts); the partition
 * notes the flows whose accounting moved. `m` is written when its bytes changed.
 */
import type { CapturedPacket, IpPacket } from '../packet';
import type { CtStats, FlowRecord } from '../flow';
import type { ConntrackPipeline, PacketVerdict } from '../pipeline';
import type { Pending } from '../conntrack/defrag';
import type { Expectation } from '../conntrack/helpers/expectations';
import { Conn } from '../conntrack/conn';
import { EntryChanges } from '../conntrack/state/changes';
import { ByteReader, ByteWriter, StateFormatError } from '../conntrack/state/bytes';
import { linkMasters, readEntry, writeEntry } from '../conntrack/state/entryCodec';
import type { LoadedEntry } from '../conntrack/state/entryCodec';
import type { ConntrackShard } from '../conntrack/shard';
import { LIFE_CONFIRMED, LIFE_USED } from '../conntrack/store';
import type { OpenFlow, ZonedPacket } from './partitionProcessor';

/** One changelog record: the latest value of a key, or null to delete it (a Kafka tombstone). */
export interface StateRecord {
  key: string;
  value: Uint8Array | null;
}

/** Bump on any change of the meta record's content. */
export const META_FORMAT = 1;
export const META_KEY = 'm';
const ENTRY_PREFIX = 'c';

/** The latest value of every key (a compacted topic read to its end): the last record wins, null deletes. */
export function compact(records: Iterable<StateRecord>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const r of records) {
    if (r.value === null) out.delete(r.key);
    else out.set(r.key, r.value);
  }
  return out;
}

/** The partition processor's own state next to its pipeline's: what it lends the changelog. */
export interface ProcessorParts {
  pipeline: ConntrackPipeline;
  open: Map<number, OpenFlow>;
  waiting: Map<number, ZonedPacket>;
  nextIndex: number;
}

/** What restore() gives back for the processor to adopt (the pipeline and engine are restored in place). */
export interface RestoredParts {
  open: Array<[number, OpenFlow]>;
  waiting: Array<[number, ZonedPacket]>;
  nextIndex: number;
}

/** Tracks one processor's changes and turns them into records. */
export class StateTracker {
  readonly entries = new EntryChanges();
  /** Flows whose accounting changed (their entry may not have: a verdict held behind a fragment). */
  private readonly flows = new Set<number>();
  private lastMeta: Uint8Array | null = null;
  private readonly w = new ByteWriter();

  flowChanged(id: number): void {
    this.flows.add(id);
  }

  /** The meta record a restore started from: unchanged, it is not written again. */
  restoredFrom(meta: Uint8Array | null): void {
    this.lastMeta = meta;
  }

  collect(parts: ProcessorParts): StateRecord[] {
    const shard = parts.pipeline.engine.soleShard();
    const store = shard.store;
    const { slots, gone } = this.entries.take();
    const out: StateRecord[] = [];
    const written = new Set<number>();
    const write = (slot: number): void => {
      const id = store.id(slot);
      if (written.has(id)) return;
      written.add(id);
      out.push({ key: ENTRY_PREFIX + id, value: this.entryValue(shard, slot, parts.open.get(id)) });
    };
    for (const slot of slots) if (store.life(slot) === (LIFE_USED | LIFE_CONFIRMED)) write(slot);
    for (const id of this.flows) {
      const f = parts.open.get(id);
      if (f === undefined || written.has(id)) continue;
      const slot = slotOfFlow(shard, f.flow);
      if (slot < 0) throw new Error(`state changelog: open flow ${id} has no entry`);
      write(slot);
    }
    this.flows.clear();
    for (const id of gone) if (!written.has(id)) out.push({ key: ENTRY_PREFIX + id, value: null });
    const meta = encodeMeta(this.w.reset(), parts);
    if (this.lastMeta === null || !sameBytes(meta, this.lastMeta)) {
      out.push({ key: META_KEY, value: meta });
      this.lastMeta = meta;
    }
    return out;
  }

  /**
   * The whole state as changelog records, key by key: what the changelog holds once compacted,
   * if everything collect() returned was written. Undefined while changes are pending (not
   * collected yet, so not in the changelog either): the state is ahead of what was written.
   */
  snapshot(parts: ProcessorParts): Map<string, Uint8Array> | undefined {
    if (this.entries.pending || this.flows.size > 0) return undefined;
    const meta = encodeMeta(this.w.reset(), parts);
    if (this.lastMeta === null || !sameBytes(meta, this.lastMeta)) return undefined;
    const shard = parts.pipeline.engine.soleShard();
    const store = shard.store;
    const out = new Map<string, Uint8Array>();
    for (let slot = 0; slot < store.capacity; slot++) {
      if (store.life(slot) !== (LIFE_USED | LIFE_CONFIRMED)) continue;
      const id = store.id(slot);
      out.set(ENTRY_PREFIX + id, this.entryValue(shard, slot, parts.open.get(id)));
    }
    out.set(META_KEY, meta);
    return out;
  }

  private entryValue(shard: ConntrackShard, slot: number, f: OpenFlow | undefined): Uint8Array {
    const w = this.w.reset();
    writeEntry(w, shard, slot);
    if (f !== undefined) writeOpenFlow(w, f);
    return w.bytes();
  }
}

/**
 * The changelog as read: records in log order, or a map already holding the latest value of each
 * key (what a reader that compacts as it reads has; taken as is, not copied: at a million entries
 * a second map costs seconds and hundreds of megabytes).
 */
export type ChangelogState = Iterable<StateRecord> | ReadonlyMap<string, Uint8Array>;

/** Rebuilds `parts.pipeline` (a fresh one) in place from the latest records; returns the processor's parts and the meta bytes. */
export function restoreState(pipeline: ConntrackPipeline, records: ChangelogState): { parts: RestoredParts; meta: Uint8Array | null } {
  const latest = records instanceof Map ? (records as ReadonlyMap<string, Uint8Array>) : compact(records as Iterable<StateRecord>);
  const meta = latest.get(META_KEY) ?? null;
  if (meta === null) {
    if (latest.size > 0) throw new StateFormatError(META_KEY, `missing, but ${latest.size} other keys are present`);
    return { parts: { open: [], waiting: [], nextIndex: 0 }, meta };
  }
  const engine = pipeline.engine;
  const shard = engine.soleShard();
  const r = new ByteReader(META_KEY, meta);
  const version = r.u8();
  if (version !== META_FORMAT) r.fail(`unknown meta format version ${version} (this build reads version ${META_FORMAT})`);
  const m = r.value() as MetaValue;
  r.end();
  engine.restoreClock(m.clock, m.untracked);
  shard.nowUs = m.shardClock;
  Object.assign(shard.stats, m.stats);

  // Id order is confirmation order: the order the shard's structures were built in (restoreEntry).
  // Each entry is decoded and put in place in turn, so what decoding it allocates dies young
  // instead of staying alive until the whole table is read (kept, that garbage made most of a
  // million-entry restore's time old-generation collections).
  const ids: Array<{ id: number; value: Uint8Array; key: string }> = [];
  for (const [key, value] of latest) {
    if (key === META_KEY) continue;
    if (key[0] !== ENTRY_PREFIX || !/^c[1-9][0-9]*$/.test(key)) new ByteReader(key, value).fail('unknown key');
    ids.push({ id: Number(key.slice(1)), value, key });
  }
  ids.sort((x, y) => x.id - y.id);
  shard.reserveEntries(ids.length);
  const open: Array<[number, OpenFlow]> = [];
  // Entries with helper data wait until every entry is loaded: their master pointers are linked
  // first, and their snapshots show the helper.
  const withHelp: Array<{ entry: LoadedEntry; toOpen?: (shard: ConntrackShard, slot: number) => RestoredOpenFlow }> = [];
  for (const { value, key } of ids) {
    const er = new ByteReader(key, value);
    const entry = readEntry(er, shard);
    if (ENTRY_PREFIX + entry.id !== key) er.fail(`holds entry ${entry.id}`);
    const toOpen = er.done ? undefined : readOpenFlow(er);
    er.end();
    shard.restoreEntry(entry.slot, entry.help, entry.natIndexed);
    if (entry.help !== undefined) {
      withHelp.push({ entry, toOpen });
    } else if (toOpen) {
      // Built when first read (usually never: the flow's next event replaces it), not here: at a
      // million open flows the snapshots were half of a restore's time, most of it collecting them.
      open.push([entry.id, toOpen(shard, entry.slot)]);
    }
  }
  const helps = linkMasters(withHelp.map((l) => l.entry));
  // A helper entry's snapshot shows its master, which may end before the snapshot is read: built now.
  for (const { entry, toOpen } of withHelp) if (toOpen) open.push([entry.id, toOpen(shard, entry.slot).built(engine.clockUs)]);
  if (withHelp.length > 0) open.sort((a, b) => a[0] - b[0]); // back in id order, the order flows started in

  const table = engine.expectationTable;
  if (table) {
    const list = m.expect.map((e) => {
      const exp = e as unknown as Expectation & { hasMasterHelp?: boolean };
      if (exp.hasMasterHelp) exp.masterHelp = helps.get(exp.masterId);
      delete exp.hasMasterHelp;
      return exp;
    });
    table.restore(list, m.expectSeq);
  } else if (m.expect.length) {
    r.fail('holds expectations, but no helper is assigned');
  }
  const waiting = new Map(m.waiting);
  const held = m.held.map((i): [number, CapturedPacket] => {
    const p = waiting.get(i);
    if (!p) return r.fail(`held fragment ${i} is not among the waiting packets`);
    return [i, { ...(p as CapturedPacket), index: i }];
  });
  const heldById = new Map(held);
  const pending = m.pending.map(([key, p]): [string, Pending] => {
    const q: Pending = { firstUs: p.firstUs, family: p.family, ranges: p.ranges, total: p.total, members: p.members };
    if (p.head >= 0) q.head = heldById.get(p.head)?.ip ?? r.fail(`fragment head ${p.head} is not held`);
    return [key, q];
  });
  pipeline.restore({ nextOut: m.nextOut, slots: m.slots, held, pending });

  return { parts: { open, waiting: m.waiting, nextIndex: m.nextIndex }, meta };
}

// meta -------------------------------------------------------------------------------------------

interface MetaValue {
  clock: number;
  shardClock: number;
  untracked: number;
  stats: CtStats;
  nextIndex: number;
  expect: Array<Record<string, unknown>>;
  expectSeq: number;
  nextOut: number;
  slots: Array<[number, PacketVerdict | null]>;
  held: number[];
  pending: Array<[string, { firstUs: number; family: 4 | 6; ranges: Array<[number, number]>; total: number; head: number; members: number[] }]>;
  waiting: Array<[number, ZonedPacket]>;
}

function encodeMeta(w: ByteWriter, parts: ProcessorParts): Uint8Array {
  const engine = parts.pipeline.engine;
  const shard = engine.soleShard();
  const saved = engine.expectationTable?.saved();
  const p = parts.pipeline.saved();
  const heldIp = new Map<IpPacket, number>(p.held.map(([i, packet]) => [packet.ip, i]));
  const m: MetaValue = {
    clock: engine.clockUs,
    shardClock: shard.nowUs,
    untracked: engine.untracked,
    stats: shard.stats,
    nextIndex: parts.nextIndex,
    // An expectation points at its master's helper data: saved as a flag, pointed again on restore.
    expect: (saved?.list ?? []).map(({ masterHelp, ...rest }) => ({ ...rest, hasMasterHelp: masterHelp !== undefined })),
    expectSeq: saved?.nextSeq ?? 0,
    nextOut: p.nextOut,
    slots: p.slots,
    held: p.held.map(([i]) => i),
    pending: p.pending.map(([key, q]) => {
      const head = q.head === undefined ? -1 : heldIp.get(q.head);
      if (head === undefined) throw new Error('state changelog: a fragment head is not a held packet');
      return [key, { firstUs: q.firstUs, family: q.family, ranges: q.ranges, total: q.total, head, members: q.members }];
    }),
    waiting: [...parts.waiting],
  };
  w.u8(META_FORMAT);
  w.value(m);
  return w.bytes();
}

// the partition's accounting of a flow -------------------------------------------------------------

/**
 * OpenFlow after the entry: u8 1 | f64 firstUs, lastUs, lastRecordUs | uint first | 8 uint
 * counters (seen, sent) | the flow as its last event showed it, by what can differ from the entry
 * now: uint timeout, status, 4 counters, f64 lastUs, state and use values. The rest of that
 * snapshot (tuples, id, start, helper, master) never changes after confirmation.
 */
function writeOpenFlow(w: ByteWriter, f: OpenFlow): void {
  w.u8(1);
  w.f64(f.firstUs);
  w.f64(f.lastUs);
  w.f64(f.lastRecordUs);
  w.uint(f.first);
  for (const c of [f.seen.orig, f.seen.reply, f.sent.orig, f.sent.reply]) {
    w.uint(c.packets);
    w.uint(c.bytes);
  }
  const s = f.flow;
  w.uint(s.timeout);
  w.uint(s.status);
  w.uint(s.counters.orig.packets);
  w.uint(s.counters.orig.bytes);
  w.uint(s.counters.reply.packets);
  w.uint(s.counters.reply.bytes);
  w.f64(s.lastUs);
  w.value(s.state);
  w.value(s.use);
}

function readOpenFlow(r: ByteReader): (shard: ConntrackShard, slot: number) => RestoredOpenFlow {
  if (r.u8() !== 1) r.fail('bad flow accounting marker');
  const firstUs = r.f64(), lastUs = r.f64(), lastRecordUs = r.f64(), first = r.uint();
  const c = (): { packets: number; bytes: number } => ({ packets: r.uint(), bytes: r.uint() });
  const seen = { orig: c(), reply: c() };
  const sent = { orig: c(), reply: c() };
  const timeout = r.uint(), status = r.uint();
  const counters = { orig: c(), reply: c() };
  const flowLastUs = r.f64();
  const state = r.value() as string | undefined;
  const use = r.value() as number | undefined;
  return (shard, slot) => new RestoredOpenFlow(shard, slot, { timeout, status, counters, lastUs: flowLastUs, state, use }, first, firstUs, lastUs, lastRecordUs, seen, sent);
}

/** What of a flow's last event view can differ from its entry now (the rest never changes after confirmation). */
interface SavedFlowView {
  timeout: number;
  status: number;
  counters: FlowRecord['counters'];
  lastUs: number;
  state: string | undefined;
  use: number | undefined;
}

/**
 * An open flow as restored: its last event view (`flow`) is the entry's snapshot with the saved
 * values laid over it, built on first read. Until then the entry is still the flow's (an open
 * flow's entry is alive: its DESTROY closes the flow before the slot is freed), and its tuples,
 * id and start never change after confirmation, so the view is the one an eager build would give.
 */
class RestoredOpenFlow implements OpenFlow {
  private view: FlowRecord | undefined;

  constructor(
    private readonly shard: ConntrackShard,
    private readonly slot: number,
    private saved: SavedFlowView | undefined,
    readonly first: number,
    public firstUs: number,
    public lastUs: number,
    public lastRecordUs: number,
    public seen: OpenFlow['seen'],
    public sent: OpenFlow['sent'],
  ) {}

  get flow(): FlowRecord {
    return this.view ?? this.built(0).view!;
  }

  set flow(f: FlowRecord) {
    this.view = f;
    this.saved = undefined;
  }

  /** Builds the view now (the clock only sets `timeout`, which the saved value replaces). */
  built(nowUs: number): this {
    if (this.view !== undefined) return this;
    const flow = this.shard.snapshotOf(new Conn(this.shard.store, this.slot), nowUs);
    const s = this.saved!;
    Object.assign(flow, { timeout: s.timeout, status: s.status, counters: s.counters, lastUs: s.lastUs });
    if (s.state === undefined) delete flow.state;
    else flow.state = s.state;
    if (s.use === undefined) delete flow.use;
    else flow.use = s.use;
    this.view = flow;
    this.saved = undefined;
    return this;
  }
}

// helpers ------------------------------------------------------------------------------------------

/** The slot of the live entry a flow snapshot describes, by its original tuple; -1 when gone. */
function slotOfFlow(shard: ConntrackShard, f: FlowRecord): number {
  const o = f.orig;
  const ports = o.icmp ? ((o.icmp.id << 16) | (o.icmp.type << 8) | o.icmp.code) >>> 0 : ((o.sport << 16) | o.dport) >>> 0;
  const found = shard.find(f.zone, f.proto, f.family, o.src, o.dst, ports);
  return found && found.dir === 0 && found.conn.id === f.id ? found.conn.slot : -1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
