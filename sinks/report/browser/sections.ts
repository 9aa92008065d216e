/** The report's static sections: summary, TCP state transitions, what-if and bad frames. */
import { CTSTATES, ctstateOf } from '../reportData';
import type { ReportData } from './data';
import type { BadFrame } from '../reportData';
import { absUs, bytesText, durationText, esc, num, protoText, timeText, tupleText } from './format';

/** INVALID packets listed at most (the charts and the summary count them all). */
const INVALID_LIST_LIMIT = 2000;

const kv = (title: string, rows: Array<[string, string | number]>, attr = ''): string =>
  `<table class="kv" ${attr}><tr><th colspan="2">${title}</th></tr>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="n" data-key="${esc(k)}">${typeof v === 'number' ? num(v) : esc(v)}</td></tr>`).join('')}</table>`;

export function summaryHtml(d: ReportData): string {
  const m = d.meta;
  const c = m.capture;
  const changed = Object.entries(m.knobs.changed);
  return `<h2>Summary</h2>
    ${kv('capture', [
      ['file', c.name], ['first packet (UTC)', timeText(c.firstUs)], ['last packet (UTC)', timeText(c.lastUs)], ['span', durationText(c.lastUs - c.firstUs)],
      ['frames', c.frames], ['IP packets', c.packets], ['IP bytes', bytesText(c.bytes)], ['non-IP frames', c.nonIp], ['bad frames', c.badFrames.length],
    ], 'data-summary="capture"')}
    ${kv('verdicts (packets)', Object.entries(m.verdicts), 'data-summary="verdicts"')}
    ${kv('flows by protocol', [...Object.entries(m.flowsByProto).sort((a, b) => b[1] - a[1]), ['all', m.flowCount]], 'data-summary="flows"')}
    ${kv('events', Object.entries(m.events), 'data-summary="events"')}
    ${kv('conntrack -S', Object.entries(m.stats), 'data-summary="stats"')}
    ${kv('INVALID by reason', Object.entries(m.invalidReasons).length ? Object.entries(m.invalidReasons) : [['none', 0]], 'data-summary="invalid"')}
    ${kv('knobs', changed.length ? changed : [['all at the kernel defaults', '']], 'data-summary="knobs"')}
    <details><summary>all knob values</summary>${kv('sysctl', Object.entries(m.knobs.values))}</details>`;
}

/** TCP state changes on packets as a matrix: rows "from", columns "to", shaded by count. */
export function transitionsHtml(d: ReportData): string {
  const { states, counts } = d.meta.transitions;
  if (!states.length) return '<h2>TCP state transitions</h2><p class="muted">No TCP flows in this capture.</p>';
  const max = Math.max(1, ...counts.flat());
  const name = (s: string): string => (s === '' ? '(none)' : s);
  const cell = (n: number, from: string, to: string): string => {
    const shade = n ? 0.12 + 0.6 * (Math.log(n + 1) / Math.log(max + 1)) : 0;
    return `<td data-from="${esc(from)}" data-to="${esc(to)}" style="background:rgba(31,111,235,${shade.toFixed(3)})">${n ? num(n) : ''}</td>`;
  };
  return `<h2>TCP state transitions</h2>
    <p class="muted">Packets that moved a TCP entry from the row's state to the column's; (none) is a packet that created the entry.</p>
    <table class="matrix" data-transitions><tr><th>from \\ to</th>${states.map((s) => `<th>${esc(name(s))}</th>`).join('')}</tr>
    ${states.map((from, r) => `<tr><th>${esc(name(from))}</th>${states.map((to, k) => cell(counts[r][k], from, to)).join('')}</tr>`).join('')}</table>`;
}

/** The INVALID packets in capture order, with reason, window values and the flow they were judged against. */
export function invalidPacketsHtml(d: ReportData): string {
  const c = d.col;
  const invalid = CTSTATES.indexOf('INVALID');
  const rows: string[] = [];
  let total = 0;
  for (let i = 0; i < c.pVerdict.length; i++) {
    if (ctstateOf(c.pVerdict[i]) !== invalid) continue;
    if (++total > INVALID_LIST_LIMIT) continue;
    const row = c.pFlow[i];
    const x = d.meta.details[i];
    const detail = [x?.note ?? '', ...Object.entries(x?.detail ?? {}).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(' ');
    const flow = row >= 0 ? `<a href="#" data-goto-row="${row}">${c.fId[row]}</a> ${esc(protoText(d, c.fProto[row]))} ${esc(tupleText(d, row, 'orig'))}` : '<span class="muted">no entry</span>';
    rows.push(`<tr data-packet="${i}"><td>${i}</td><td>${timeText(absUs(d, c.pTime[i]))}</td><td>${esc(d.meta.strings.reasons[c.pReason[i]] || 'unknown')}</td><td class="wrap">${esc(detail)}</td><td>${flow}</td></tr>`);
  }
  if (!total) return '<h2>INVALID packets</h2><p class="muted">None.</p>';
  return `<h2>INVALID packets (${num(total)})</h2>
    <div class="list"><table data-invalid-packets><tr><th>i</th><th>time (UTC)</th><th>reason</th><th>detail</th><th>flow</th></tr>${rows.join('')}</table></div>
    ${total > INVALID_LIST_LIMIT ? `<p class="muted">first ${num(INVALID_LIST_LIMIT)} shown</p>` : ''}`;
}

/** A topic message's place, as kafka-console-consumer would be pointed at it. */
function messageText(m: NonNullable<BadFrame['message']>): string {
  const frame = m.frameInMessage === undefined ? ' (the whole message)' : ` frame ${m.frameInMessage}`;
  return `${esc(m.topic)} partition ${m.partition} offset ${esc(m.offset)}${frame}`;
}

export function badFramesHtml(d: ReportData): string {
  const c = d.meta.capture;
  const shown = c.badFrames.slice(0, 5000);
  const problem = c.captureProblem ? `<p class="bad" data-capture-problem>The capture ends early: frame ${c.captureProblem.frame} (byte ${c.captureProblem.offset}): ${esc(c.captureProblem.reason)}.</p>` : '';
  if (!c.badFrames.length) return `<h2>Bad frames</h2>${problem}<p class="muted">None: every frame decoded.</p>`;
  // A report of a Kafka topic says where each bad frame or message is: topic, partition, offset.
  const fromTopic = c.badFrames.some((b) => b.message);
  return `<h2>Bad frames (${num(c.badFrames.length)})</h2>${problem}
    <p class="muted">Frames that could not be decoded; they are skipped, as ctflow's other commands skip them.</p>
    <div class="list"><table data-bad-frames><tr><th>frame</th>${fromTopic ? '<th>message</th>' : ''}<th>reason</th></tr>${shown.map((b) => `<tr><td>${b.frame < 0 ? '—' : b.frame}</td>${fromTopic ? `<td>${b.message ? messageText(b.message) : ''}</td>` : ''}<td>${esc(b.reason)}</td></tr>`).join('')}</table></div>
    ${c.badFrames.length > shown.length ? `<p class="muted">and ${num(c.badFrames.length - shown.length)} more</p>` : ''}`;
}

export function whatIfHtml(d: ReportData): string {
  const w = d.meta.whatif;
  if (!w) return '';
  const knobs = (k: Record<string, number>): string => Object.entries(k).map(([n, v]) => `${n}=${v}`).join(' ') || 'kernel defaults';
  const verdict = (s: string, r?: string): string => `<span class="v-${s}">${s}</span>${r ? ` <span class="muted">${esc(r)}</span>` : ''}`;
  return `<h2>What if: ${esc(knobs(w.changed))}</h2>
    <p>${num(w.verdictChangesTotal)} of ${num(w.packets)} packets change verdict; ${num(w.flowChangesTotal)} flows change fate. Left: this replay (${esc(knobs(w.base.knobs))}); right: with ${esc(knobs(w.other.knobs))}. Click a packet to see its flow's story.</p>
    <div class="side">
      <div class="list"><h3>Packets whose verdict changes</h3><table data-whatif-packets><tr><th>i</th><th>this replay</th><th>what if</th></tr>
        ${w.verdictChanges.map((v) => `<tr data-packet="${v.i}"><td><a href="#" data-goto-packet="${v.i}">${v.i}</a></td><td>${verdict(v.before, v.beforeReason)}</td><td>${verdict(v.after, v.afterReason)}</td></tr>`).join('')}</table>
        ${w.verdictChangesTotal > w.verdictChanges.length ? `<p class="muted">first ${num(w.verdictChanges.length)} shown</p>` : ''}</div>
      <div class="list"><h3>Flows whose fate changes</h3><table data-whatif-flows><tr><th>flow</th><th>this replay</th><th>what if</th></tr>
        ${w.flowChanges.map((f) => `<tr><td>${esc(f.flow)}</td><td>${esc(f.before)}</td><td>${esc(f.after)}</td></tr>`).join('')}</table>
        ${w.flowChangesTotal > w.flowChanges.length ? `<p class="muted">first ${num(w.flowChanges.length)} shown</p>` : ''}</div>
    </div>`;
}
