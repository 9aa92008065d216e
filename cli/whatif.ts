/**
 * `ctflow whatif`: the same capture twice, with the default knobs and with the changed ones, and
 * what differs: packets whose verdict changes and flows whose fate (final state, how they ended)
 * changes. For example, what nf_conntrack_tcp_be_liberal=1 would have let through. With
 * --workers, each share compares its own packets and flows (cli/workers/whatIfShare.ts) and the
 * pieces are put back in the order this file gives them.
 */
import type { FlowEvent, FlowRecord } from '../processors/flow';
import type { PacketVerdict } from '../processors/pipeline';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { SYSCTL_DEFAULTS } from '../processors/conntrack/sysctl';
import { runCapture } from './runCapture';
import type { RunOptions } from './runCapture';

export type VerdictChange = { i: number; before: string; after: string; beforeReason?: string; afterReason?: string };
export type FlowChange = { flow: string; before: string; after: string };

export interface WhatIfReport {
  changed: Record<string, number>;
  packets: number;
  verdictChanges: VerdictChange[];
  flowChanges: FlowChange[];
  lines: string[];
}

/**
 * Where a flow's fate is first set in a run, in the order one engine's output has it: the place
 * of its first event, [packet index, phase, tsUs, entry id, n] (phase 0: an expiry found while the
 * clock moved to that packet, 1: caused by it; as cli/workers/protocol.ts places event lines), or
 * [AFTER_EVENTS, 2, 0, entry id, n] for an entry that only the final table shows (it lists oldest
 * first; with nf_conntrack_events=0 that is every entry). n counts the run's fates and keeps a
 * share's own order where places tie. (A flow's first event is its NEW, caused by a packet of its
 * own share; the order of expiries is given for completeness, as one engine orders them.)
 */
export type Place = [number, number, number, number, number];

const AFTER_EVENTS = Number.MAX_SAFE_INTEGER;

/** One engine's order of places (a share's places, merged, sort as one engine met them). */
export function comparePlaces(a: Place, b: Place): number {
  return a[0] - b[0] || a[1] - b[1] || (a[1] !== 1 ? a[2] - b[2] || a[3] - b[3] : 0) || a[4] - b[4];
}

function flowKey(f: FlowRecord): string {
  const o = f.orig;
  return `${f.zone}/${f.proto} ${o.src}:${o.sport} -> ${o.dst}:${o.dport}${o.icmp ? ` icmp id ${o.icmp.id}` : ''}`;
}

/** Each flow's fate over one run, by flow key, in the order the keys first appeared. */
export class FateRecorder {
  readonly fates = new Map<string, { end: string; first: Place }>();

  /** An event, at packet `index` in `phase` (see Place; a single engine passes none). */
  event(e: FlowEvent, index = 0, phase = 0): void {
    const key = flowKey(e.flow);
    const prev = this.fates.get(key);
    const end = e.type === 'DESTROY' ? `destroyed (${e.reason}) in ${e.flow.state ?? '-'}` : `${e.flow.state ?? 'tracked'}`;
    const first: Place = prev?.first ?? [index, phase, e.tsUs, e.flow.id, this.fates.size];
    this.fates.set(key, { end: prev && e.type === 'NEW' ? `${prev.end}, reopened` : end, first });
  }

  /** The table after the last packet: what is still open ends there. */
  table(flows: readonly FlowRecord[]): void {
    for (const f of flows) {
      const key = flowKey(f);
      const first: Place = this.fates.get(key)?.first ?? [AFTER_EVENTS, 2, 0, f.id, this.fates.size];
      this.fates.set(key, { end: `open in ${f.state ?? 'tracked'}${f.status & 4 ? ' [ASSURED]' : ''}`, first });
    }
  }
}

/** A flow whose fate differs, with where it first appeared in each run. */
export interface PlacedFlowChange extends FlowChange {
  placeBefore?: Place;
  placeAfter?: Place;
}

/**
 * The flows whose fate differs, in the order one thread lists them: the flows of the first run
 * as they first appeared in it, then those only the second run had, as they appeared there.
 */
export function fateChanges(a: FateRecorder, b: FateRecorder): PlacedFlowChange[] {
  const out: PlacedFlowChange[] = [];
  for (const key of new Set([...a.fates.keys(), ...b.fates.keys()])) {
    const x = a.fates.get(key);
    const y = b.fates.get(key);
    const before = x?.end ?? 'never tracked';
    const after = y?.end ?? 'never tracked';
    if (before !== after) out.push({ flow: key, before, after, placeBefore: x?.first, placeAfter: y?.first });
  }
  return out;
}

/** The change between two verdicts on one packet, or undefined when it keeps its verdict. */
export function verdictChange(x: PacketVerdict, y: PacketVerdict): VerdictChange | undefined {
  if (x.ctstate === y.ctstate && x.dir === y.dir) return undefined;
  const c: VerdictChange = { i: x.index, before: x.ctstate, after: y.ctstate };
  if (x.reason) c.beforeReason = x.reason;
  if (y.reason) c.afterReason = y.reason;
  return c;
}

function run(bytes: Uint8Array, sysctl: Sysctl, shards: number, rules: ConntrackRules, zoneOf: RunOptions['zoneOf']): { verdicts: PacketVerdict[]; fates: FateRecorder } {
  const verdicts: PacketVerdict[] = [];
  const fates = new FateRecorder();
  const r = runCapture(bytes, { sysctl, shards, rules, zoneOf, onVerdict: (v) => verdicts.push(v), onEvent: (e) => fates.event(e) });
  fates.table(r.engine.list());
  return { verdicts, fates };
}

/** Both runs apply the same rules and zones: what differs is the knobs. */
export function whatIf(bytes: Uint8Array, base: Sysctl, changed: Sysctl, shards: number, rules: ConntrackRules = {}, zoneOf?: RunOptions['zoneOf']): WhatIfReport {
  const a = run(bytes, base, shards, rules, zoneOf);
  const b = run(bytes, changed, shards, rules, zoneOf);
  const verdictChanges: VerdictChange[] = [];
  for (let i = 0; i < Math.min(a.verdicts.length, b.verdicts.length); i++) {
    const c = verdictChange(a.verdicts[i], b.verdicts[i]);
    if (c) verdictChanges.push(c);
  }
  const flowChanges = fateChanges(a.fates, b.fates).map(({ flow, before, after }) => ({ flow, before, after }));
  return whatIfReport(base, changed, a.verdicts.length, verdictChanges, flowChanges);
}

/** The report and its lines, from the changes in the order they are listed. */
export function whatIfReport(base: Sysctl, changed: Sysctl, packets: number, verdictChanges: VerdictChange[], flowChanges: FlowChange[]): WhatIfReport {
  const diff: Record<string, number> = {};
  for (const k of Object.keys(SYSCTL_DEFAULTS) as Array<keyof Sysctl>) if (base[k] !== changed[k]) diff[k] = changed[k];
  const lines = [
    `whatif ${Object.entries(diff).map(([k, v]) => `${k}=${v}`).join(' ') || '(no knob differs from the defaults)'}`,
    `  ${verdictChanges.length} of ${packets} packets change verdict, ${flowChanges.length} flows change fate`,
    ...verdictChanges.slice(0, 200).map((c) => `  packet ${c.i}: ${c.before}${c.beforeReason ? ` (${c.beforeReason})` : ''} -> ${c.after}${c.afterReason ? ` (${c.afterReason})` : ''}`),
    ...(verdictChanges.length > 200 ? [`  ... ${verdictChanges.length - 200} more packets`] : []),
    ...flowChanges.map((f) => `  flow ${f.flow}: ${f.before} -> ${f.after}`),
  ];
  return { changed: diff, packets, verdictChanges, flowChanges, lines };
}
