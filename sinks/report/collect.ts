/**
 * Builds the report's model from one replay: fed each packet with its verdict and each event as
 * the pipeline produces them, then the engine's final table. Everything the report shows comes
 * from here, so its numbers are the engine's own (the same that `ctflow stats`, `list` and
 * `events` print).
 */
import type { FlowEvent, FlowRecord } from '../../processors/flow';
import type { CapturedPacket } from '../../processors/packet';
import { IPPROTO } from '../../processors/packet';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ConntrackEngine } from '../../processors/conntrack/engine';
import type { Sysctl } from '../../processors/conntrack/sysctl';
import { SYSCTL_DEFAULTS } from '../../processors/conntrack/sysctl';
import type { ReadSummary } from '../../ingest/packetSource';
import { protoName } from '../conntrackText';
import { Column } from './growable';
import { TimeBuckets } from './timeBuckets';
import { CTSTATES, EVENT_COLUMNS, EVENT_TYPES, FATES, FLOW_COLUMNS, PACKET_COLUMNS, verdictCode } from './reportData';
import type { ColumnName, ColumnType, ReportMeta } from './reportData';

/** The model before it is written into HTML: the JSON part (without column refs) and the columns. */
export interface ReportModel {
  meta: Omit<ReportMeta, 'columns'>;
  columns: Record<ColumnName, ArrayLike<number> & ArrayBufferView>;
}

export interface CollectOptions {
  /** Time-series buckets at most (between half and all of them are used). */
  maxBuckets?: number;
  /** INVALID packets whose window values and notes are kept, at most. */
  maxDetails?: number;
}

const COLUMN_TYPES: Record<ColumnName, ColumnType> = {
  pTime: 'f64', pFrame: 'u32', pFlow: 'i32', pVerdict: 'u8', pState: 'u8', pReason: 'u16', pLength: 'u16', pFlags: 'u8',
  eFlow: 'i32', eType: 'u8', eTime: 'f64', eState: 'u8', eFate: 'u8', ePacket: 'i32',
  fId: 'u32', fZone: 'u16', fFamily: 'u8', fProto: 'u8', fState: 'u8', fFate: 'u8', fStatus: 'u16', fTimeout: 'u32',
  fOrigSrc: 'u32', fOrigDst: 'u32', fOrigSport: 'u16', fOrigDport: 'u16', fReplySrc: 'u32', fReplyDst: 'u32', fReplySport: 'u16', fReplyDport: 'u16',
  fOrigPackets: 'u32', fReplyPackets: 'u32', fOrigBytes: 'f64', fReplyBytes: 'f64', fFirst: 'f64', fLast: 'f64',
};
/** Time columns are collected in µs and written as offsets in the capture's time unit. */
const TIME_COLUMNS: ColumnName[] = ['pTime', 'eTime', 'fFirst', 'fLast'];

/** Strings stored once and referred to by index; index 0 is the empty string ("none"). */
class StringTable {
  readonly list: string[] = [''];
  private readonly index = new Map<string, number>([['', 0]]);
  of(s: string | undefined): number {
    if (s === undefined) return 0;
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
  private readonly cols = {} as Record<ColumnName, Column>;
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
  private detailsOmitted = 0;
  /** The conntrack id's current flow row. */
  private readonly rowOfId = new Map<number, number>();
  private flows = 0;
  /** Each open row's table-entry category ("tcp ESTABLISHED"), and the entries per category now. */
  private readonly categoryOfRow = new Map<number, string>();
  private readonly entriesByCategory = new Map<string, number>();
  /** TCP state after each row's latest packet (a states index), for the transition matrix. */
  private readonly tcpStateOfRow = new Map<number, number>();
  private readonly transitions = new Map<string, number>();

  constructor(private readonly opts: CollectOptions = {}) {
    for (const name of [...PACKET_COLUMNS, ...EVENT_COLUMNS, ...FLOW_COLUMNS]) this.cols[name] = new Column(COLUMN_TYPES[name]);
  }

  onPacket(p: CapturedPacket, v: PacketVerdict): void {
    const i = v.index;
    const c = this.cols;
    const t = p.tsUs;
    if (t < this.firstUs) this.firstUs = t;
    if (t > this.lastUs) this.lastUs = t;
    this.buckets ??= new TimeBuckets(t, this.opts.maxBuckets);
    this.bytes += p.ip.length;
    const row = v.flowId === undefined ? -1 : this.rowOfId.get(v.flowId) ?? -1;
    const ctstate = CTSTATES.indexOf(v.ctstate);
    const stateIndex = this.states.of(v.state);
    c.pTime.set(i, t);
    c.pFrame.set(i, p.frame);
    c.pFlow.set(i, row);
    c.pVerdict.set(i, verdictCode(ctstate, v.dir === 'original' ? 1 : v.dir === 'reply' ? 2 : 0));
    c.pState.set(i, stateIndex);
    c.pReason.set(i, this.reasons.of(v.reason));
    c.pLength.set(i, Math.min(p.ip.length, 0xffff));
    c.pFlags.set(i, p.ip.l4?.kind === 'tcp' ? p.ip.l4.flags : 0);
    this.verdicts[v.ctstate]++;
    this.buckets.count(v.ctstate, t);
    if (v.ctstate === 'INVALID') {
      const reason = v.reason ?? 'unknown';
      this.invalidReasons.set(reason, (this.invalidReasons.get(reason) ?? 0) + 1);
      this.buckets.count(`invalid ${reason}`, t);
      if (v.detail || v.note) {
        if (Object.keys(this.details).length < (this.opts.maxDetails ?? 100_000)) this.details[i] = { ...(v.note ? { note: v.note } : {}), ...(v.detail ? { detail: v.detail } : {}) };
        else this.detailsOmitted++;
      }
    }
    if (row >= 0 && v.state !== undefined && c.fProto.get(row) === IPPROTO.TCP) {
      const before = this.tcpStateOfRow.get(row) ?? 0;
      if (before !== stateIndex) {
        const key = `${before},${stateIndex}`;
        this.transitions.set(key, (this.transitions.get(key) ?? 0) + 1);
        this.tcpStateOfRow.set(row, stateIndex);
      }
    }
  }

  onEvent(e: FlowEvent): void {
    const c = this.cols;
    const f = e.flow;
    let row = this.rowOfId.get(f.id);
    // A NEW for an id already seen starts a new row: the old entry is gone, this is another flow.
    if (row === undefined || e.type === 'NEW') row = this.addRow(f);
    else this.updateRow(row, f);
    this.eventCounts[e.type]++;
    const fate = e.type === 'DESTROY' ? Math.max(0, FATES.indexOf(e.reason ?? 'timeout')) : 0;
    if (e.type === 'DESTROY') c.fFate.set(row, fate);
    c.eFlow.push(row);
    c.eType.push(EVENT_TYPES.indexOf(e.type));
    c.eTime.push(e.tsUs);
    c.eState.push(this.states.of(f.state));
    c.eFate.push(fate);
    c.ePacket.push(e.packetIndex ?? -1);
    this.buckets ??= new TimeBuckets(e.tsUs, this.opts.maxBuckets);
    if (e.type === 'NEW') this.buckets.count('new entries', e.tsUs);
    const before = this.categoryOfRow.get(row);
    const after = e.type === 'DESTROY' ? undefined : `${protoName(f.proto)}${f.state ? ` ${f.state}` : ''}`;
    if (before !== after) {
      if (before !== undefined) this.moveEntries(before, -1, e.tsUs);
      if (after !== undefined) this.moveEntries(after, 1, e.tsUs);
      if (after === undefined) this.categoryOfRow.delete(row);
      else this.categoryOfRow.set(row, after);
    }
  }

  private moveEntries(category: string, delta: number, tsUs: number): void {
    const n = (this.entriesByCategory.get(category) ?? 0) + delta;
    this.entriesByCategory.set(category, n);
    this.buckets!.gauge(category, tsUs, n);
  }

  private addRow(f: FlowRecord): number {
    const c = this.cols;
    const row = this.flows++;
    this.rowOfId.set(f.id, row);
    c.fId.set(row, f.id);
    c.fZone.set(row, f.zone);
    c.fFamily.set(row, f.family);
    c.fProto.set(row, f.proto);
    const port = (t: FlowRecord['orig'], which: 'sport' | 'dport'): number => (t.icmp ? (which === 'sport' ? t.icmp.id : (t.icmp.type << 8) | t.icmp.code) : t[which]);
    c.fOrigSrc.set(row, this.addresses.of(f.orig.src));
    c.fOrigDst.set(row, this.addresses.of(f.orig.dst));
    c.fOrigSport.set(row, port(f.orig, 'sport'));
    c.fOrigDport.set(row, port(f.orig, 'dport'));
    c.fReplySrc.set(row, this.addresses.of(f.reply.src));
    c.fReplyDst.set(row, this.addresses.of(f.reply.dst));
    c.fReplySport.set(row, port(f.reply, 'sport'));
    c.fReplyDport.set(row, port(f.reply, 'dport'));
    c.fFirst.set(row, f.startUs);
    c.fFate.set(row, 0);
    this.updateRow(row, f);
    return row;
  }

  private updateRow(row: number, f: FlowRecord): void {
    const c = this.cols;
    c.fState.set(row, this.states.of(f.state));
    c.fStatus.set(row, f.status);
    c.fTimeout.set(row, f.timeout);
    c.fOrigPackets.set(row, f.counters.orig.packets);
    c.fReplyPackets.set(row, f.counters.reply.packets);
    c.fOrigBytes.set(row, f.counters.orig.bytes);
    c.fReplyBytes.set(row, f.counters.reply.bytes);
    c.fLast.set(row, f.lastUs);
  }

  /** The model, once the capture is done: `engine` holds the table after the last packet. */
  finish(run: { engine: ConntrackEngine; summary: ReadSummary; packets: number }, info: { captureName: string; sysctl: Sysctl; generatedBy: string }): ReportModel {
    const c = this.cols;
    for (const f of run.engine.list()) {
      const row = this.rowOfId.get(f.id);
      if (row === undefined || c.fFate.get(row) !== 0) this.addRow(f);
      else this.updateRow(row, f);
    }
    if (this.firstUs === Infinity) this.firstUs = this.lastUs = 0;
    const buckets = this.buckets ?? new TimeBuckets(this.firstUs, this.opts.maxBuckets);
    buckets.extendTo(this.lastUs);
    const timeUnitUs = Math.max(1, Math.ceil((this.lastUs - this.firstUs) / 0xffffffff));
    const columns = {} as ReportModel['columns'];
    for (const name of Object.keys(this.cols) as ColumnName[]) {
      const values = this.cols[name].values();
      columns[name] = TIME_COLUMNS.includes(name) ? Uint32Array.from(values, (t) => Math.max(0, Math.round((t - this.firstUs) / timeUnitUs))) : values;
    }
    const flowsByProto: Record<string, number> = {};
    for (let r = 0; r < this.flows; r++) {
      const name = protoName(c.fProto.get(r));
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
          badFrames: summary.malformed.map((m) => ({ frame: m.frame, reason: m.reason })),
          ...(summary.captureProblem ? { captureProblem: { frame: summary.captureProblem.frame, offset: summary.captureProblem.offset, reason: summary.captureProblem.reason } } : {}),
        },
        knobs: { values: { ...info.sysctl }, changed },
        verdicts: { ...this.verdicts },
        invalidReasons: Object.fromEntries([...this.invalidReasons].sort((a, b) => b[1] - a[1])),
        events: { ...this.eventCounts },
        stats: { entries: run.engine.count, ...run.engine.stats() },
        flowsByProto,
        flowCount: this.flows,
        eventCount: c.eType.length,
        series: {
          bucketUs: buckets.bucketUs,
          startUs: buckets.startUs,
          buckets: buckets.used,
          verdicts: Object.fromEntries(CTSTATES.map((s) => [s, buckets.counter(s)])),
          invalidByReason: Object.fromEntries([...this.invalidReasons.keys()].map((r) => [r, buckets.counter(`invalid ${r}`)])),
          newEntries: buckets.counter('new entries'),
          entries: Object.fromEntries([...this.entriesByCategory.keys()].sort().map((k) => [k, buckets.gaugeValues(k)])),
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
