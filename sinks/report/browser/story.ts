/**
 * A flow's story: its events and its packets in order, each packet with its verdict, direction,
 * TCP flags, the TCP state after it and, for INVALID ones, the reason and the window values the
 * check failed on. Packets of a flow are found by scanning the packet column (a few ms for 1.6M).
 */
import { CTSTATES, DIRECTIONS, EVENT_TYPES, FATES, ctstateOf, dirOf } from '../reportData';
import type { ReportData } from './data';
import { absUs, bytesText, esc, fateText, flagsText, num, protoText, timeText, tupleText } from './format';

/** Packet rows drawn at first and per click on "more" (a long download can have 100k packets). */
const FIRST_PAGE = 2000;

export function packetsOf(d: ReportData, row: number): number[] {
  const out: number[] = [];
  const flow = d.col.pFlow;
  for (let i = 0; i < flow.length; i++) if (flow[i] === row) out.push(i);
  return out;
}

function detailText(d: ReportData, i: number): string {
  const x = d.meta.details[i];
  if (!x) return '';
  const parts = x.detail ? Object.entries(x.detail).map(([k, v]) => `${k}=${v}`) : [];
  if (x.note) parts.unshift(x.note);
  return parts.join(' ');
}

function packetRow(d: ReportData, i: number, startUs: number): string {
  const c = d.col;
  const code = c.pVerdict[i];
  const ctstate = CTSTATES[ctstateOf(code)];
  const dir = DIRECTIONS[dirOf(code)];
  const t = absUs(d, c.pTime[i]);
  const reason = d.meta.strings.reasons[c.pReason[i]];
  return `<tr data-packet="${i}" data-ctstate="${ctstate}"><td>${i}</td><td>${c.pFrame[i]}</td><td>${timeText(t).slice(11)}</td><td class="n">+${((t - startUs) / 1000).toFixed(3)} ms</td>`
    + `<td>${dir === 'original' ? 'orig →' : dir === 'reply' ? '← reply' : '-'}</td><td>${flagsText(c.pFlags[i])}</td><td class="n">${c.pLength[i]}</td>`
    + `<td class="v-${ctstate}">${ctstate}</td><td>${esc(d.meta.strings.states[c.pState[i]] || '')}</td><td>${esc(reason)}</td><td class="wrap">${esc(detailText(d, i))}</td></tr>`;
}

export function renderStory(d: ReportData, row: number, host: HTMLElement): void {
  const c = d.col;
  const packets = packetsOf(d, row);
  const startUs = absUs(d, c.fFirst[row]);
  const events: string[] = [];
  for (let k = 0; k < c.eFlow.length; k++) {
    if (c.eFlow[k] !== row) continue;
    const type = EVENT_TYPES[c.eType[k]];
    const fate = type === 'DESTROY' ? ` (${FATES[c.eFate[k]]})` : '';
    const packet = c.ePacket[k] >= 0 ? `packet ${c.ePacket[k]}` : 'no packet (timer)';
    events.push(`<tr data-event="${type}"><td>${timeText(absUs(d, c.eTime[k]))}</td><td>${type}${fate}</td><td>${esc(d.meta.strings.states[c.eState[k]] || '')}</td><td>${packet}</td></tr>`);
  }
  const shown = packets.slice(0, FIRST_PAGE);
  host.dataset.flowId = String(c.fId[row]);
  host.innerHTML = `
    <h2>Flow ${c.fId[row]}: ${esc(protoText(d, c.fProto[row]))} ${esc(tupleText(d, row, 'orig'))}</h2>
    <p>reply ${esc(tupleText(d, row, 'reply'))}; zone ${c.fZone[row]}; state ${esc(d.meta.strings.states[c.fState[row]] || '-')}; ${esc(fateText(d, row))};
      ${num(c.fOrigPackets[row])} / ${num(c.fReplyPackets[row])} packets, ${bytesText(c.fOrigBytes[row])} / ${bytesText(c.fReplyBytes[row])} (original / reply)</p>
    <h3>Events</h3>
    <table data-story-events><tr><th>time (UTC)</th><th>event</th><th>state</th><th>caused by</th></tr>${events.join('') || '<tr><td colspan="4" class="muted">none (nf_conntrack_events=0?)</td></tr>'}</table>
    <h3>Packets (${num(packets.length)})</h3>
    <table data-story-packets><tr><th>i</th><th>frame</th><th>time</th><th>since first</th><th>dir</th><th>flags</th><th>len</th><th>verdict</th><th>state after</th><th>INVALID reason</th><th>detail</th></tr>
      ${shown.map((i) => packetRow(d, i, startUs)).join('')}</table>
    ${packets.length > shown.length ? `<button data-more>show ${num(Math.min(FIRST_PAGE, packets.length - shown.length))} more of the other ${num(packets.length - shown.length)} packets</button>` : ''}`;
  // The rest in pages, so a flow of a million packets never builds one enormous table at once.
  let next = shown.length;
  host.querySelector('[data-more]')?.addEventListener('click', (ev) => {
    const table = host.querySelector('[data-story-packets] tbody') ?? host.querySelector('[data-story-packets]')!;
    const page = packets.slice(next, next + FIRST_PAGE);
    table.insertAdjacentHTML('beforeend', page.map((i) => packetRow(d, i, startUs)).join(''));
    next += page.length;
    const button = ev.target as HTMLElement;
    if (next >= packets.length) button.remove();
    else button.textContent = `show ${num(Math.min(FIRST_PAGE, packets.length - next))} more of the other ${num(packets.length - next)} packets`;
  });
  host.scrollIntoView({ block: 'nearest' });
}
