/**
 * Builds the report's model from one replay: fed each packet with its verdict and each event as
 * the pipeline produces them, then the engine's final table. Everything the report shows comes
 * from here, so its numbers are the engine's own (the same that `ctflow stats`, `list` and
 * `events` print).
 */
import type { CtStats, FlowEvent, FlowRecord } from '../../processors/flow';
import type { CapturedPacket } from '../../processors/packet';
import { IPPROTO } from '../../processors/packet';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ConntrackEngine } from '../../processors/conntrack/engine';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import { SYSCTL_DEFAULTS } from '../../processors/conntrack/sysctl';
import type { ReadSummary } from '../../ingest/packetSource';
import { protoName } from '../conntrackText';
import { ColumnGroup } from './growable';
import { TimeBuckets } from './timeBuckets';
import { CTSTATES, EVENT_COLUMNS, EVENT_TYPES, FATES, FLOW_COLUMNS, PACKET_COLUMNS, verdictCode } from './reportData';
import type { ColumnName, ColumnType, ReportMeta } from './reportData';

/** The model before it is written into HTML: the JSON part (without column refs) and the columns. */
export interface ReportModel {
  meta: Omit<ReportMeta, 'columns'>;
  columns: Record<ColumnName, ArrayLike<number> & ArrayBufferView>;
}

/** How a replay ended: the table after the last packet (oldest entry first), the counters, the reader's summary. */
export interface RunEnd {
  flows: readonly FlowRecord[];
  count: number;
  stats: CtStats;
  untracked: number;
  summary: ReadSummary;
  packets: number;
}

/** A single engine's RunEnd. */
export function runEnd(r: { engine: ConntrackEngine; summary: ReadSummary; packets: number }): RunEnd {
  return { flows: r.engine.list(), count: r.engine.count, stats: r.engine.stats(), untracked: r.engine.untracked, summary: r.summary, packets: r.packets };
}

export interface CollectOptions {
  /** Time-series buckets at most (between half and all of them are used). */
  maxBuckets?: number;
  /** INVALID packets whose window values and notes are kept, at most. */
  maxDetails?: number;
}

type PacketColumn = (typeof PACKET_COLUMNS)[number];
type EventColumn = (typeof EVENT_COLUMNS)[number];
type FlowColumn = (typeof FLOW_COLUMNS)[number];

const PACKET_COLUMN_TYPES: Record<PacketColumn, ColumnType> = { pTime: 'f64', pFrame: 'u32', pFlow: 'i32', pVerdict: 'u8', pState: 'u8', pReason: 'u16', pLength: 'u16', pFlags: 'u8' };
const EVENT_COLUMN_TYPES: Record<EventColumn, ColumnType> = { eFlow: 'i32', eType: 'u8', eTime: 'f64', eState: 'u8', eFate: 'u8', ePacket: 'i32' };
const FLOW_COLUMN_TYPES: Record<FlowColumn, ColumnType> = {
  fId: 'u32', fZone: 'u16', fFamily: 'u8', fProto: 'u8', fState: 'u8', fFate: 'u8', fStatus: 'u16', fTimeout: 'u32',
  fOrigSrc: 'u32', fOrigDst: 'u32', fOrigSport: 'u16', fOrigDport: 'u16', fReplySrc: 'u32', fReplyDst: 'u32', fReplySport: 'u16', fReplyDport: 'u16',
  fOrigPackets: 'u32', fReplyPackets: 'u32', fOrigBytes: 'f64', fReplyBytes: 'f64', fFirst: 'f64', fLast: 'f64',
};
/** Time columns are collected in µs and written as offsets in the capture's time unit. */
const TIME_COLUMNS: ColumnName[] = ['pTime', 'eTime', 'fFirst', 'fLast'];

/**
 * Strings stored once and referred to by index. `undefined` gets `none`: by default 0, which holds
 * the empty string (the report's "none"); with -1 it stays apart from every string (rows crossing
 * threads, cli/workers/reportRecords.ts).
 */
export class StringTable {
  readonly list: string[];
  private readonly index: Map<string, number>;
  constructor(private readonly none: 0 | -1 = 0) {
    this.list = none === 0 ? [''] : [];
    this.index = new Map(none === 0 ? [['', 0]] : []);
  }
  of(s: string | undefined): number {
    if (s === undefined) return this.none;
    let k = this.index.get(s);
    if (k === undefined) {
      k = this.list.length;
      this.list.push(s);
      this.index.set(s, k);
    }
    return k;
  }
}

export class ReportCollector {
  private readonly packets = new ColumnGroup(PACKET_COLUMN_TYPES);
  private readonly events = new ColumnGroup(EVENT_COLUMN_TYPES);
  private readonly flowCols = new ColumnGroup(FLOW_COLUMN_TYPES);
  /** Packets judged against an entry that had no flow row yet, with that entry's id. */
  private readonly unlinked = new ColumnGroup({ packet: 'u32', flowId: 'u32' } as const, 64);
  private readonly addresses = new StringTable();
  private readonly states = new StringTable();
  private readonly reasons = new StringTable();
  private buckets: TimeBuckets | undefined;
  private firstUs = Infinity;
  private lastUs = -Infinity;
  private bytes = 0;
  private readonly verdicts: Record<string, number> = Object.fromEntries(CTSTATES.map((s) => [s, 0]));
  private readonly invalidReasons = new Map<string, number>();
  private readonly eventCounts: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  private readonly details: ReportMeta['details'] = {};
  private detailsKept = 0;
  private detailsOmitted = 0;
  /** The conntrack id's current flow row. */
  private readonly rowOfId = new Map<number, number>();
  /** Each open row's table-entry category (protocol << 8 | states index), and the entries per category now. */
  private readonly categoryOfRow = new Map<number, number>();
  private readonly entriesByCategory = new Map<number, number>();
  /** TCP state after each row's latest packet (a states index), for the transition matrix. */
  private readonly tcpStateOfRow = new Map<number, number>();
  private readonly transitions = new Map<string, number>();

  constructor(private readonly opts: CollectOptions = {}) {}

  onPacket(p: CapturedPacket, v: PacketVerdict): void {
    this.onJudged(v, p.tsUs, p.frame, p.ip.length, p.ip.l4?.kind === 'tcp' ? p.ip.l4.flags : 0);
  }

  /**
   * onPacket() with only what the report keeps of the packet (what a --workers share sends): its
   * time, frame, IP length and TCP flags (0 for other protocols). As arguments, not an object, so
   * that a packet costs no allocation here.
   */
  onJudged(v: PacketVerdict, t: number, frame: number, length: number, tcpFlags: number): void {
    const i = v.index;
    this.packets.ensure(i);
    const c = this.packets.arrays;
    const f = this.flowCols.arrays;
    if (t < this.firstUs) this.firstUs = t;
    if (t > this.lastUs) this.lastUs = t;
    this.buckets ??= new TimeBuckets(t, this.opts.maxBuckets);
    this.bytes += length;
    const row = v.flowId === undefined ? -1 : this.rowOfId.get(v.flowId) ?? -1;
    if (row < 0 && v.flowId !== undefined) {
      // No event made a row for this entry (nf_conntrack_events=0): linked at the end if it is still open.
      const k = this.unlinked.add();
      this.unlinked.arrays.packet[k] = i;
      this.unlinked.arrays.flowId[k] = v.flowId;
    }
    const ctstate = CTSTATES.indexOf(v.ctstate);
    const stateIndex = this.states.of(v.state);
    c.pTime[i] = t;
    c.pFrame[i] = frame;
    c.pFlow[i] = row;
    c.pVerdict[i] = verdictCode(ctstate, v.dir === 'original' ? 1 : v.dir === 'reply' ? 2 : 0);
    c.pState[i] = stateIndex;
    c.pReason[i] = this.reasons.of(v.reason);
    c.pLength[i] = Math.min(length, 0xffff);
    c.pFlags[i] = tcpFlags;
    this.verdicts[v.ctstate]++;
    this.buckets.count(v.ctstate, t);
    if (v.ctstate === 'INVALID') {
      const reason = v.reason ?? 'unknown';
      this.invalidReasons.set(reason, (this.invalidReasons.get(reason) ?? 0) + 1);
      this.buckets.count(`invalid ${reason}`, t);
      if (v.detail || v.note) {
        if (this.detailsKept++ < (this.opts.maxDetails ?? 100_000)) this.details[i] = { ...(v.note ? { note: v.note } : {}), ...(v.detail ? { detail: v.detail } : {}) };
        else this.detailsOmitted++;
      }
    }
    if (row >= 0 && v.state !== undefined && f.fProto[row] === IPPROTO.TCP) {
      const before = this.tcpStateOfRow.get(row) ?? 0;
      if (before !== stateIndex) {
        const key = `${before},${stateIndex}`;
        this.transitions.set(key, (this.transitions.get(key) ?? 0) + 1);
        this.tcpStateOfRow.set(row, stateIndex);
      }
    }
  }

  onEvent(e: FlowEvent): void {
    const f = e.flow;
    let row = this.rowOfId.get(f.id);
    // A NEW for an id already seen starts a new row: the old entry is gone, this is another flow.
    if (row === undefined || e.type === 'NEW') row = this.addRow(f);
    else this.updateRow(row, f);
    this.eventCounts[e.type]++;
    const fate = e.type === 'DESTROY' ? Math.max(0, FATES.indexOf(e.reason ?? 'timeout')) : 0;
    if (e.type === 'DESTROY') this.flowCols.arrays.fFate[row] = fate;
    const k = this.events.add();
    const c = this.events.arrays;
    c.eFlow[k] = row;
    c.eType[k] = EVENT_TYPES.indexOf(e.type);
    c.eTime[k] = e.tsUs;
    c.eState[k] = this.states.of(f.state);
    c.eFate[k] = fate;
    c.ePacket[k] = e.packetIndex ?? -1;
    this.buckets ??= new TimeBuckets(e.tsUs, this.opts.maxBuckets);
    if (e.type === 'NEW') this.buckets.count('new entries', e.tsUs);
    const before = this.categoryOfRow.get(row);
    const after = e.type === 'DESTROY' ? undefined : (f.proto << 8) | this.states.of(f.state);
    if (before !== after) {
      if (before !== undefined) this.moveEntries(before, -1, e.tsUs);
      if (after !== undefined) this.moveEntries(after, 1, e.tsUs);
      if (after === undefined) this.categoryOfRow.delete(row);
      else this.categoryOfRow.set(row, after);
    }
  }

  private moveEntries(category: number, delta: number, tsUs: number): void {
    const n = (this.entriesByCategory.get(category) ?? 0) + delta;
    this.entriesByCategory.set(category, n);
    this.buckets!.gauge(category, tsUs, n);
  }

  private addRow(f: FlowRecord): number {
    const row = this.flowCols.add();
    const c = this.flowCols.arrays;
    this.rowOfId.set(f.id, row);
    c.fId[row] = f.id;
    c.fZone[row] = f.zone;
    c.fFamily[row] = f.family;
    c.fProto[row] = f.proto;
    const port = (t: FlowRecord['orig'], which: 'sport' | 'dport'): number => (t.icmp ? (which === 'sport' ? t.icmp.id : (t.icmp.type << 8) | t.icmp.code) : t[which]);
    c.fOrigSrc[row] = this.addresses.of(f.orig.src);
    c.fOrigDst[row] = this.addresses.of(f.orig.dst);
    c.fOrigSport[row] = port(f.orig, 'sport');
    c.fOrigDport[row] = port(f.orig, 'dport');
    c.fReplySrc[row] = this.addresses.of(f.reply.src);
    c.fReplyDst[row] = this.addresses.of(f.reply.dst);
    c.fReplySport[row] = port(f.reply, 'sport');
    c.fReplyDport[row] = port(f.reply, 'dport');
    c.fFirst[row] = f.startUs;
    c.fFate[row] = 0;
    this.updateRow(row, f);
    return row;
  }

  private updateRow(row: number, f: FlowRecord): void {
    const c = this.flowCols.arrays;
    c.fState[row] = this.states.of(f.state);
    c.fStatus[row] = f.status;
    c.fTimeout[row] = f.timeout;
    c.fOrigPackets[row] = f.counters.orig.packets;
    c.fReplyPackets[row] = f.counters.reply.packets;
    c.fOrigBytes[row] = f.counters.orig.bytes;
    c.fReplyBytes[row] = f.counters.reply.bytes;
    c.fLast[row] = f.lastUs;
  }

  /** The model, once the capture is done: `run` holds the table after the last packet. */
  finish(run: RunEnd, info: { captureName: string; sysctl: Sysctl; generatedBy: string }): ReportModel {
    const c = this.flowCols.arrays;
    for (const f of run.flows) {
      const row = this.rowOfId.get(f.id);
      if (row === undefined || c.fFate[row] !== 0) this.addRow(f);
      else this.updateRow(row, f);
    }
    const u = this.unlinked.arrays;
    for (let k = 0; k < this.unlinked.length; k++) {
      const row = this.rowOfId.get(u.flowId[k]);
      if (row !== undefined) this.packets.arrays.pFlow[u.packet[k]] = row;
    }
    // States are stored in u8 columns and packed into a byte of the entry categories.
    if (this.states.list.length > 256) throw new Error(`report: ${this.states.list.length} protocol state names, more than the 256 the columns hold`);
    if (this.firstUs === Infinity) this.firstUs = this.lastUs = 0;
    const buckets = this.buckets ?? new TimeBuckets(this.firstUs, this.opts.maxBuckets);
    buckets.extendTo(this.lastUs);
    const timeUnitUs = Math.max(1, Math.ceil((this.lastUs - this.firstUs) / 0xffffffff));
    const columns = {} as ReportModel['columns'];
    for (const group of [this.packets, this.events, this.flowCols] as Array<ColumnGroup<ColumnName>>) {
      for (const name of Object.keys(group.arrays) as ColumnName[]) {
        const values = group.values(name);
        columns[name] = TIME_COLUMNS.includes(name) ? this.timeOffsets(values, timeUnitUs) : values;
      }
    }
    const flowsByProto: Record<string, number> = {};
    for (let r = 0; r < this.flowCols.length; r++) {
      const name = protoName(c.fProto[r]);
      flowsByProto[name] = (flowsByProto[name] ?? 0) + 1;
    }
    const changed: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.sysctl)) if (SYSCTL_DEFAULTS[k as keyof Sysctl] !== v) changed[k] = v;
    const protos: Record<number, string> = {};
    for (const p of new Set(Array.from(columns.fProto))) protos[p] = protoName(p);
    const summary = run.summary;
    return {
      meta: {
        format: 'ctflow-report/1',
        generatedBy: info.generatedBy,
        capture: {
          name: info.captureName,
          frames: summary.frames,
          packets: run.packets,
          bytes: this.bytes,
          firstUs: this.firstUs,
          lastUs: this.lastUs,
          nonIp: summary.nonIp,
          badFrames: summary.malformed.map((m) => ({ frame: m.frame, reason: m.reason, ...(m.message ? { message: { ...m.message } } : {}) })),
          ...(summary.captureProblem ? { captureProblem: { frame: summary.captureProblem.frame, offset: summary.captureProblem.offset, reason: summary.captureProblem.reason } } : {}),
        },
        knobs: { values: { ...info.sysctl }, changed },
        verdicts: { ...this.verdicts },
        invalidReasons: Object.fromEntries([...this.invalidReasons].sort((a, b) => b[1] - a[1])),
        events: { ...this.eventCounts },
        // As `ctflow stats --json` prints them: with `untracked`, the packets NOTRACK rules left alone.
        stats: { entries: run.count, ...run.stats, untracked: run.untracked },
        flowsByProto,
        flowCount: this.flowCols.length,
        eventCount: this.events.length,
        series: {
          bucketUs: buckets.bucketUs,
          startUs: buckets.startUs,
          buckets: buckets.used,
          verdicts: Object.fromEntries(CTSTATES.map((s) => [s, buckets.counter(s)])),
          invalidByReason: Object.fromEntries([...this.invalidReasons.keys()].map((r) => [r, buckets.counter(`invalid ${r}`)])),
          newEntries: buckets.counter('new entries'),
          entries: Object.fromEntries(
            [...this.entriesByCategory.keys()].map((k) => [`${protoName(k >> 8)}${k & 255 ? ` ${this.states.list[k & 255]}` : ''}`, buckets.gaugeValues(k)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
          ),
        },
        transitions: this.transitionMatrix(),
        strings: { addresses: this.addresses.list, states: this.states.list, reasons: this.reasons.list, protos },
        timeUnitUs,
        details: this.details,
        detailsOmitted: this.detailsOmitted,
      },
      columns,
    };
  }

  /** Times (µs) as offsets from the first packet in `unitUs`, to fit a Uint32Array. */
  private timeOffsets(values: ArrayLike<number>, unitUs: number): Uint32Array {
    const out = new Uint32Array(values.length);
    for (let k = 0; k < values.length; k++) out[k] = Math.max(0, Math.round((values[k] - this.firstUs) / unitUs));
    return out;
  }

  /** The TCP state changes as a square matrix over the states that occur ("" = no entry before). */
  private transitionMatrix(): ReportMeta['transitions'] {
    const used = new Set<number>();
    for (const key of this.transitions.keys()) key.split(',').forEach((s) => used.add(Number(s)));
    const order = [...used].sort((a, b) => a - b);
    const at = new Map(order.map((s, k) => [s, k]));
    const counts = order.map(() => order.map(() => 0));
    for (const [key, n] of this.transitions) {
      const [from, to] = key.split(',').map(Number);
      counts[at.get(from)!][at.get(to)!] = n;
    }
    return { states: order.map((s) => this.states.list[s]), counts };
  }
}
