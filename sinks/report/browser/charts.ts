/**
 * The time-series charts (uPlot): table entries, packets by verdict, INVALID by reason and new
 * entries, over packet time. One cursor for all (uPlot's sync), and zooming one (drag across it)
 * zooms the others; a double click zooms back out.
 */
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css';
import type { ReportData } from './data';

const PALETTE = ['#1f6feb', '#1a7f37', '#8250df', '#cf222e', '#6e7781', '#bf8700', '#0a7ea4', '#e16f24', '#a0456e', '#3b5bdb', '#2b8a3e', '#c92a2a', '#5f3dc4', '#087f5b', '#e8590c', '#495057'];
const VERDICT_COLOURS: Record<string, string> = { NEW: '#1f6feb', ESTABLISHED: '#1a7f37', RELATED: '#8250df', INVALID: '#cf222e', UNTRACKED: '#6e7781' };

interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  series: Array<{ label: string; values: number[]; colour?: string }>;
}

function specs(d: ReportData): ChartSpec[] {
  const s = d.meta.series;
  const perSecond = (a: number[]): number[] => a.map((n) => n / (s.bucketUs / 1e6));
  const entries = Object.entries(s.entries).map(([label, values]) => ({ label, values }));
  const reasons = Object.entries(s.invalidByReason).map(([label, values]) => ({ label, values: perSecond(values) }));
  return [
    { id: 'entries', title: 'Table entries by protocol and state', unit: 'entries', series: entries.length ? entries : [{ label: 'entries', values: new Array<number>(s.buckets).fill(0) }] },
    { id: 'verdicts', title: 'Packets per second by verdict', unit: 'packets/s', series: Object.entries(s.verdicts).map(([label, values]) => ({ label, values: perSecond(values), colour: VERDICT_COLOURS[label] })) },
    { id: 'invalid', title: 'INVALID packets per second by reason', unit: 'packets/s', series: reasons.length ? reasons : [{ label: 'INVALID (none in this capture)', values: new Array<number>(s.buckets).fill(0), colour: '#cf222e' }] },
    { id: 'new', title: 'New entries per second', unit: 'entries/s', series: [{ label: 'NEW', values: perSecond(s.newEntries), colour: '#1f6feb' }] },
  ];
}

/** The charts' time window in epoch seconds, or null when they show the whole capture. */
export type ZoomListener = (window: { fromSec: number; toSec: number } | null) => void;

/** Draws the charts into `host`; returns them (the page resizes them with the window). */
export function drawCharts(d: ReportData, host: HTMLElement, onZoom?: ZoomListener): uPlot[] {
  const style = document.createElement('style');
  style.textContent = uplotCss;
  document.head.appendChild(style);
  const s = d.meta.series;
  const xs = Array.from({ length: s.buckets }, (_, k) => (s.startUs + k * s.bucketUs) / 1e6);
  const charts: uPlot[] = [];
  let zooming = false;
  const syncZoom = (from: uPlot): void => {
    if (zooming) return;
    zooming = true;
    const { min, max } = from.scales.x;
    for (const other of charts) if (other !== from && min !== undefined && max !== undefined) other.setScale('x', { min, max });
    zooming = false;
    if (min === undefined || max === undefined) return;
    const whole = min <= xs[0] && max >= xs[xs.length - 1];
    onZoom?.(whole ? null : { fromSec: min, toSec: max });
  };
  for (const spec of specs(d)) {
    const box = document.createElement('div');
    box.className = 'chart';
    box.dataset.chart = spec.id;
    box.innerHTML = `<h3>${spec.title}</h3>`;
    host.appendChild(box);
    const opts: uPlot.Options = {
      width: Math.max(400, box.clientWidth || 560),
      height: 240,
      cursor: { sync: { key: 'ctflow-report' }, drag: { x: true, y: false } },
      scales: { x: { time: true } },
      // Packet times are shown in UTC, as the summary and the stories show them.
      tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      axes: [{}, { label: spec.unit, size: 60 }],
      series: [{ label: 'time (UTC)', value: (_u, v) => (v === null ? '-' : new Date(v * 1000).toISOString().replace('T', ' ').slice(0, 23)) }, ...spec.series.map((ser, k) => ({ label: ser.label, stroke: ser.colour ?? PALETTE[k % PALETTE.length], width: 1.5, points: { show: false } }))],
      hooks: {
        draw: [(u: uPlot) => { u.root.dataset.drawn = String(Number(u.root.dataset.drawn ?? 0) + 1); }],
        setScale: [(u: uPlot, key: string) => { if (key === 'x') syncZoom(u); }],
      },
    };
    charts.push(new uPlot(opts, [xs, ...spec.series.map((ser) => ser.values)] as uPlot.AlignedData, box));
  }
  window.addEventListener('resize', () => {
    for (const c of charts) c.setSize({ width: Math.max(400, c.root.parentElement?.clientWidth ?? 560), height: 240 });
  });
  return charts;
}
