/**
 * The report page: reads its data, then builds the summary, the charts, the transition matrix,
 * the flow table with its stories, the what-if comparison and the bad frames. When all is drawn
 * it sets body[data-ready] (the browser test waits for it); a failure is shown on the page and
 * logged to the console.
 */
import { drawCharts } from './charts';
import { loadReport } from './data';
import { FlowTable } from './flowTable';
import { timeText } from './format';
import { badFramesHtml, invalidPacketsHtml, summaryHtml, transitionsHtml, whatIfHtml } from './sections';
import { renderStory } from './story';

function section(parent: HTMLElement, id: string, html = ''): HTMLElement {
  const s = document.createElement('section');
  s.id = id;
  s.innerHTML = html;
  parent.appendChild(s);
  return s;
}

async function start(): Promise<void> {
  const main = document.getElementById('report')!;
  const d = await loadReport(document);
  document.getElementById('loading')?.remove();
  const c = d.meta.capture;
  document.getElementById('subtitle')!.textContent = `${timeText(c.firstUs)} to ${timeText(c.lastUs)} UTC · ${c.packets.toLocaleString('en-US')} IP packets · ${d.meta.flowCount.toLocaleString('en-US')} flows · ${d.meta.generatedBy}`;
  section(main, 'summary', summaryHtml(d));
  const charts = section(main, 'charts', '<h2>Over packet time</h2><p class="muted">Drag across a chart to zoom all of them; double-click to zoom out.</p><div class="charts"></div>');
  // The table is made after the charts (below them on the page) but hears their zoom.
  let table: FlowTable | undefined;
  drawCharts(d, charts.querySelector('.charts')!, (w) => table?.setWindow(w));
  section(main, 'transitions', transitionsHtml(d));
  const eventsOff = d.meta.knobs.values.nf_conntrack_events === 0;
  const flowsNote = eventsOff
    ? 'nf_conntrack_events=0: with no events, only the flows still open at the end are known (and no TCP transitions). Click one for its story.'
    : 'Every flow of the replay. Click one for its story.';
  const flows = section(main, 'flows', `<h2>Flows</h2><p class="muted">${flowsNote}</p><div data-flow-table></div>`);
  const story = section(main, 'story', '<h2>Flow story</h2><p class="muted">Click a flow in the table.</p>');
  table = new FlowTable(d, flows.querySelector('[data-flow-table]')!, (row) => renderStory(d, row, story));
  const flowTable = table;
  section(main, 'invalid', invalidPacketsHtml(d));
  if (d.meta.whatif) section(main, 'whatif', whatIfHtml(d));
  section(main, 'bad-frames', badFramesHtml(d));
  // Links to a flow (from the INVALID and what-if lists) open its story in the table.
  main.addEventListener('click', (ev) => {
    const link = (ev.target as HTMLElement).closest('[data-goto-packet], [data-goto-row]') as HTMLElement | null;
    if (!link) return;
    ev.preventDefault();
    const row = link.dataset.gotoRow !== undefined ? Number(link.dataset.gotoRow) : d.col.pFlow[Number(link.dataset.gotoPacket)];
    if (row >= 0) flowTable.show(row);
  });
  document.body.dataset.ready = '1';
}

start().catch((err: unknown) => {
  const p = document.createElement('p');
  p.className = 'bad';
  p.textContent = `The report could not be shown: ${(err as Error).message ?? String(err)}`;
  document.getElementById('report')?.prepend(p);
  console.error(err);
});
