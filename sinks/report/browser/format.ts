/** How the report writes times, numbers, tuples and TCP flags. */
import { FATES } from '../reportData';
import type { ReportData } from './data';

const ICMP = new Set([1, 58]);
const GRE = 47;

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export const num = (n: number): string => n.toLocaleString('en-US');

export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let k = 0;
  while (v >= 1024 && k < units.length - 1) {
    v /= 1024;
    k++;
  }
  return `${v.toFixed(1)} ${units[k]}`;
}

/** Epoch µs as UTC "YYYY-MM-DD HH:MM:SS.ffffff". */
export function timeText(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(Math.round(us - Math.floor(us / 1e6) * 1e6)).padStart(6, '0')}`;
}

export function durationText(us: number): string {
  const s = us / 1e6;
  if (s < 1) return `${(us / 1000).toFixed(1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** A column time (offset in the report's unit) as epoch µs. */
export const absUs = (d: ReportData, t: number): number => d.meta.capture.firstUs + t * d.meta.timeUnitUs;

const FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];
export function flagsText(flags: number): string {
  return FLAG_NAMES.filter((_, k) => flags & (1 << k)).join(',');
}

export const protoText = (d: ReportData, proto: number): string => d.meta.strings.protos[proto] ?? String(proto);

/** One direction of flow `row`, as "src:sport → dst:dport" (ICMP: type/code/id; GRE: keys). */
export function tupleText(d: ReportData, row: number, dir: 'orig' | 'reply'): string {
  const c = d.col;
  const a = d.meta.strings.addresses;
  const [src, dst, sport, dport] = dir === 'orig' ? [c.fOrigSrc, c.fOrigDst, c.fOrigSport, c.fOrigDport] : [c.fReplySrc, c.fReplyDst, c.fReplySport, c.fReplyDport];
  const proto = c.fProto[row];
  const s = a[src[row]];
  const t = a[dst[row]];
  if (ICMP.has(proto)) return `${s} → ${t} type=${dport[row] >> 8} code=${dport[row] & 255} id=${sport[row]}`;
  if (proto === GRE) return `${s} → ${t} keys 0x${sport[row].toString(16)}/0x${dport[row].toString(16)}`;
  return `${bracket(s)}:${sport[row]} → ${bracket(t)}:${dport[row]}`;
}

const bracket = (addr: string): string => (addr.includes(':') ? `[${addr}]` : addr);

/** How flow `row` ended, with the status flags conntrack shows. */
export function fateText(d: ReportData, row: number): string {
  const fate = FATES[d.col.fFate[row]] ?? 'unknown';
  const status = d.col.fStatus[row];
  const flags = `${status & 2 ? '' : ' [UNREPLIED]'}${status & 4 ? ' [ASSURED]' : ''}`;
  return `${fate === 'open' ? 'open' : `destroyed: ${fate}`}${flags}`;
}
