/**
 * The flow table: every flow of the replay (those destroyed on the way and those still open at
 * the end), filterable like `ctflow list` (protocol, state, address, port, plus how it ended) and
 * sortable by any column. Only the rows in view exist in the DOM, so a million flows scroll
 * smoothly; filtering and sorting work on the typed-array columns.
 */
import { FATES } from '../reportData';
import type { ReportData } from './data';
import { bytesText, durationText, esc, fateText, num, protoText, timeText, absUs, tupleText } from './format';

const ROW_HEIGHT = 22;
/** Rows drawn beyond the visible ones, above and below, so fast scrolling shows no gaps. */
const OVERSCAN = 10;

type SortKey = 'id' | 'proto' | 'state' | 'orig' | 'reply' | 'packets' | 'bytes' | 'first' | 'duration' | 'end';
const HEADINGS: Array<[SortKey, string]> = [
  ['id', 'id'], ['proto', 'proto'], ['state', 'state'], ['orig', 'original'], ['reply', 'reply'],
  ['packets', 'packets o/r'], ['bytes', 'bytes o/r'], ['first', 'first seen (UTC)'], ['duration', 'duration'], ['end', 'end'],
];

export interface FlowFilter {
  proto?: number;
  /** A states index. */
  state?: number;
  /** 'open', 'destroyed' or a FATES name. */
  end?: string;
  /** An address, or the start of one. */
  address?: string;
  port?: number;
  /** Only flows seen in this window (column time units, inclusive): first seen before its end, last seen after its start. */
  active?: { from: number; to: number };
}

/** The rows that pass `f`, in row order. */
export function filterRows(d: ReportData, f: FlowFilter): Uint32Array {
  const c = d.col;
  const n = c.fId.length;
  let addressOk: Uint8Array | undefined;
  if (f.address) {
    const want = f.address.trim();
    addressOk = new Uint8Array(d.meta.strings.addresses.length);
    d.meta.strings.addresses.forEach((a, k) => { if (a && (a === want || a.startsWith(want))) addressOk![k] = 1; });
  }
  const fate = f.end === undefined || f.end === 'destroyed' ? -1 : FATES.indexOf(f.end as (typeof FATES)[number]);
  const out = new Uint32Array(n);
  let m = 0;
  for (let r = 0; r < n; r++) {
    if (f.proto !== undefined && c.fProto[r] !== f.proto) continue;
    if (f.state !== undefined && c.fState[r] !== f.state) continue;
    if (f.end === 'destroyed' ? c.fFate[r] === 0 : fate >= 0 && c.fFate[r] !== fate) continue;
    if (addressOk && !(addressOk[c.fOrigSrc[r]] || addressOk[c.fOrigDst[r]] || addressOk[c.fReplySrc[r]] || addressOk[c.fReplyDst[r]])) continue;
    if (f.active && (c.fFirst[r] > f.active.to || c.fLast[r] < f.active.from)) continue;
    if (f.port !== undefined && c.fOrigSport[r] !== f.port && c.fOrigDport[r] !== f.port && c.fReplySport[r] !== f.port && c.fReplyDport[r] !== f.port) continue;
    out[m++] = r;
  }
  return out.slice(0, m);
}

/** A rank for each string of `list` in text order, so rows sort by a number. */
function ranks(list: string[]): Uint32Array {
  const order = list.map((s, k) => [s, k] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const rank = new Uint32Array(list.length);
  order.forEach(([, k], pos) => { rank[k] = pos; });
  return rank;
}

function sortKey(d: ReportData, key: SortKey): (r: number) => number {
  const c = d.col;
  switch (key) {
    case 'id': return (r) => c.fId[r];
    case 'proto': return (r) => c.fProto[r];
    case 'state': { const rank = ranks(d.meta.strings.states); return (r) => rank[c.fState[r]]; }
    case 'orig': { const rank = ranks(d.meta.strings.addresses); return (r) => rank[c.fOrigSrc[r]] * 65536 + c.fOrigSport[r]; }
    case 'reply': { const rank = ranks(d.meta.strings.addresses); return (r) => rank[c.fReplySrc[r]] * 65536 + c.fReplySport[r]; }
    case 'packets': return (r) => c.fOrigPackets[r] + c.fReplyPackets[r];
    case 'bytes': return (r) => c.fOrigBytes[r] + c.fReplyBytes[r];
    case 'first': return (r) => c.fFirst[r];
    case 'duration': return (r) => c.fLast[r] - c.fFirst[r];
    case 'end': return (r) => c.fFate[r];
  }
}

export class FlowTable {
  private rows: Uint32Array;
  private sort: { key: SortKey; descending: boolean } = { key: 'first', descending: false };
  private selected = -1;
  private readonly grid: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly count: HTMLSpanElement;
  private readonly activeBox: HTMLInputElement;
  private readonly windowText: HTMLSpanElement;
  private window: { from: number; to: number } | undefined;
  private refilter: () => void = () => undefined;

  constructor(private readonly d: ReportData, host: HTMLElement, private readonly onSelect: (row: number) => void) {
    const c = d.col;
    const protos = [...new Set(Array.from(c.fProto))].sort((a, b) => a - b);
    const states = [...new Set(Array.from(c.fState))].filter((s) => s !== 0).sort((a, b) => (d.meta.strings.states[a] < d.meta.strings.states[b] ? -1 : 1));
    host.innerHTML = `
      <div class="filters">
        <label>protocol <select data-filter="proto"><option value="">any</option>${protos.map((p) => `<option value="${p}">${esc(protoText(d, p))}</option>`).join('')}</select></label>
        <label>state <select data-filter="state"><option value="">any</option>${states.map((s) => `<option value="${s}">${esc(d.meta.strings.states[s])}</option>`).join('')}</select></label>
        <label>end <select data-filter="end"><option value="">any</option><option value="open">open at the end</option><option value="destroyed">destroyed</option>${FATES.slice(1).map((f) => `<option value="${f}">destroyed: ${f}</option>`).join('')}</select></label>
        <label>address <input data-filter="address" size="18" placeholder="10.0.0.1 or 10.0."></label>
        <label>port <input data-filter="port" size="6" inputmode="numeric"></label>
        <label title="Zoom the charts (drag across one) to choose the window"><input type="checkbox" data-filter-active disabled> only flows active in the charts' window <span data-window class="muted">(whole capture)</span></label>
        <span class="muted" data-flow-count></span>
      </div>
      <div class="flowhead">${HEADINGS.map(([k, t]) => `<span data-sort="${k}">${t}</span>`).join('')}</div>
      <div class="flowgrid" data-flow-grid><div data-spacer></div></div>`;
    this.grid = host.querySelector('[data-flow-grid]')!;
    this.spacer = host.querySelector('[data-spacer]')!;
    this.count = host.querySelector('[data-flow-count]')!;
    this.activeBox = host.querySelector('[data-filter-active]')!;
    this.windowText = host.querySelector('[data-window]')!;
    this.rows = filterRows(d, {});
    const read = (name: string): string => (host.querySelector(`[data-filter="${name}"]`) as HTMLInputElement).value.trim();
    const refilter = (this.refilter = (): void => {
      const port = read('port');
      this.rows = filterRows(d, {
        ...(read('proto') ? { proto: Number(read('proto')) } : {}),
        ...(read('state') ? { state: Number(read('state')) } : {}),
        ...(read('end') ? { end: read('end') } : {}),
        ...(read('address') ? { address: read('address') } : {}),
        ...(port && /^\d+$/.test(port) ? { port: Number(port) } : {}),
        ...(this.activeBox.checked && this.window ? { active: this.window } : {}),
      });
      this.applySort();
    });
    this.activeBox.addEventListener('change', refilter);
    host.querySelectorAll('[data-filter]').forEach((el) => el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', refilter));
    host.querySelectorAll('[data-sort]').forEach((el) => el.addEventListener('click', () => {
      const key = (el as HTMLElement).dataset.sort as SortKey;
      this.sort = { key, descending: this.sort.key === key ? !this.sort.descending : key === 'packets' || key === 'bytes' || key === 'duration' };
      this.applySort();
    }));
    this.grid.addEventListener('scroll', () => this.render());
    this.grid.addEventListener('click', (ev) => {
      const rowEl = (ev.target as HTMLElement).closest('[data-row]') as HTMLElement | null;
      if (!rowEl) return;
      this.selected = Number(rowEl.dataset.row);
      this.render();
      this.onSelect(this.selected);
    });
    this.applySort();
  }

  /** The charts' zoom window (epoch seconds), or null for the whole capture: the "active" filter's window. */
  setWindow(w: { fromSec: number; toSec: number } | null): void {
    const d = this.d;
    const unit = d.meta.timeUnitUs;
    const first = d.meta.capture.firstUs;
    this.window = w ? { from: Math.max(0, Math.floor((w.fromSec * 1e6 - first) / unit)), to: Math.max(0, Math.ceil((w.toSec * 1e6 - first) / unit)) } : undefined;
    this.activeBox.disabled = !this.window;
    if (this.window) {
      this.windowText.dataset.from = String(this.window.from);
      this.windowText.dataset.to = String(this.window.to);
      this.windowText.textContent = `${timeText(absUs(d, this.window.from)).slice(11)} to ${timeText(absUs(d, this.window.to)).slice(11)}`;
    } else {
      delete this.windowText.dataset.from;
      delete this.windowText.dataset.to;
      this.windowText.textContent = '(whole capture)';
      this.activeBox.checked = false;
    }
    this.refilter();
  }

  /** Scrolls to flow `row` and selects it (the what-if lists link here). */
  show(row: number): void {
    let at = this.rows.indexOf(row);
    if (at < 0) {
      this.rows = filterRows(this.d, {});
      this.applySort();
      at = this.rows.indexOf(row);
    }
    this.selected = row;
    this.grid.scrollTop = Math.max(0, at * ROW_HEIGHT - this.grid.clientHeight / 2);
    this.render();
    this.onSelect(row);
  }

  private applySort(): void {
    const key = sortKey(this.d, this.sort.key);
    const sign = this.sort.descending ? -1 : 1;
    this.rows.sort((a, b) => sign * (key(a) - key(b)) || a - b);
    this.count.textContent = `${num(this.rows.length)} of ${num(this.d.col.fId.length)} flows`;
    this.spacer.style.height = `${this.rows.length * ROW_HEIGHT}px`;
    this.render();
  }

  private render(): void {
    const d = this.d;
    const c = d.col;
    const first = Math.max(0, Math.floor(this.grid.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((this.grid.scrollTop + this.grid.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    let html = '';
    for (let k = first; k < last; k++) {
      const r = this.rows[k];
      const cells = [
        String(c.fId[r]), protoText(d, c.fProto[r]), d.meta.strings.states[c.fState[r]] || '-', tupleText(d, r, 'orig'), tupleText(d, r, 'reply'),
        `${num(c.fOrigPackets[r])} / ${num(c.fReplyPackets[r])}`, `${bytesText(c.fOrigBytes[r])} / ${bytesText(c.fReplyBytes[r])}`,
        timeText(absUs(d, c.fFirst[r])).slice(5, 23), durationText((c.fLast[r] - c.fFirst[r]) * d.meta.timeUnitUs), fateText(d, r),
      ];
      html += `<div class="flowrow${r === this.selected ? ' selected' : ''}" style="top:${k * ROW_HEIGHT}px" data-row="${r}" data-flow-id="${c.fId[r]}">${cells.map((t) => `<span title="${esc(t)}">${esc(t)}</span>`).join('')}</div>`;
    }
    this.spacer.innerHTML = html;
  }
}
