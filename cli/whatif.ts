/**
 * `ctflow whatif`: the same capture twice, with the default knobs and with the changed ones, and
 * what differs: packets whose verdict changes and flows whose fate (final state, how they ended)
 * changes. For example, what nf_conntrack_tcp_be_liberal=1 would have let through.
 */
import type { FlowEvent } from '../processors/flow';
import type { PacketVerdict } from '../processors/pipeline';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { SYSCTL_DEFAULTS } from '../processors/conntrack/sysctl';
import { runCapture } from './runCapture';

interface Fate {
  key: string;
  end: string;
}

export interface WhatIfReport {
  changed: Record<string, number>;
  packets: number;
  verdictChanges: Array<{ i: number; before: string; after: string; beforeReason?: string; afterReason?: string }>;
  flowChanges: Array<{ flow: string; before: string; after: string }>;
  lines: string[];
}

function flowKey(e: FlowEvent): string {
  const o = e.flow.orig;
  return `${e.flow.zone}/${e.flow.proto} ${o.src}:${o.sport} -> ${o.dst}:${o.dport}${o.icmp ? ` icmp id ${o.icmp.id}` : ''}`;
}

function run(bytes: Uint8Array, sysctl: Sysctl, shards: number, rules?: ConntrackRules): { verdicts: PacketVerdict[]; fates: Map<string, Fate> } {
  const verdicts: PacketVerdict[] = [];
  const fates = new Map<string, Fate>();
  const r = runCapture(bytes, {
    sysctl,
    shards,
    rules,
    onVerdict: (v) => verdicts.push(v),
    onEvent: (e) => {
      const key = flowKey(e);
      const prev = fates.get(key)?.end;
      const end = e.type === 'DESTROY' ? `destroyed (${e.reason}) in ${e.flow.state ?? '-'}` : `${e.flow.state ?? 'tracked'}`;
      fates.set(key, { key, end: prev && e.type === 'NEW' ? `${prev}, reopened` : end });
    },
  });
  for (const f of r.engine.list()) {
    const key = flowKey({ type: 'NEW', tsUs: 0, flow: f, protoinfo: true });
    fates.set(key, { key, end: `open in ${f.state ?? 'tracked'}${f.status & 4 ? ' [ASSURED]' : ''}` });
  }
  return { verdicts, fates };
}

/** Both runs take the same rules (helpers): only the knobs differ. */
export function whatIf(bytes: Uint8Array, base: Sysctl, changed: Sysctl, shards: number, rules?: ConntrackRules): WhatIfReport {
  const a = run(bytes, base, shards, rules);
  const b = run(bytes, changed, shards, rules);
  const diff: Record<string, number> = {};
  for (const k of Object.keys(SYSCTL_DEFAULTS) as Array<keyof Sysctl>) if (base[k] !== changed[k]) diff[k] = changed[k];
  const verdictChanges: WhatIfReport['verdictChanges'] = [];
  for (let i = 0; i < Math.min(a.verdicts.length, b.verdicts.length); i++) {
    const x = a.verdicts[i];
    const y = b.verdicts[i];
    if (x.ctstate !== y.ctstate || x.dir !== y.dir) {
      const c: WhatIfReport['verdictChanges'][number] = { i: x.index, before: x.ctstate, after: y.ctstate };
      if (x.reason) c.beforeReason = x.reason;
      if (y.reason) c.afterReason = y.reason;
      verdictChanges.push(c);
    }
  }
  const flowChanges: WhatIfReport['flowChanges'] = [];
  for (const key of new Set([...a.fates.keys(), ...b.fates.keys()])) {
    const x = a.fates.get(key)?.end ?? 'never tracked';
    const y = b.fates.get(key)?.end ?? 'never tracked';
    if (x !== y) flowChanges.push({ flow: key, before: x, after: y });
  }
  const lines = [
    `whatif ${Object.entries(diff).map(([k, v]) => `${k}=${v}`).join(' ') || '(no knob differs from the defaults)'}`,
    `  ${verdictChanges.length} of ${a.verdicts.length} packets change verdict, ${flowChanges.length} flows change fate`,
    ...verdictChanges.slice(0, 200).map((c) => `  packet ${c.i}: ${c.before}${c.beforeReason ? ` (${c.beforeReason})` : ''} -> ${c.after}${c.afterReason ? ` (${c.afterReason})` : ''}`),
    ...(verdictChanges.length > 200 ? [`  ... ${verdictChanges.length - 200} more packets`] : []),
    ...flowChanges.map((f) => `  flow ${f.flow}: ${f.before} -> ${f.after}`),
  ];
  return { changed: diff, packets: a.verdicts.length, verdictChanges, flowChanges, lines };
}
