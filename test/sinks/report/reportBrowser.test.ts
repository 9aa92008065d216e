/**
 * The report in a real browser: Debian's chromium (installed by test/globalSetup.js through
 * ensureChromium.js) driven by playwright-core opens the file from file:// with the network cut
 * off, and the page must draw every chart, filter the flow table to the rows `ctflow list`
 * gives, and tell a flow's story with the verdicts `ctflow classify` gives.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { captureWithBadFrames, ctflow, jsonLines, longUdpFlow } from './reportHelpers';
import { buildReportModel } from '../../../cli/report';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { encodeReport } from '../../../sinks/report/encode';
import { reportHtml } from '../../../sinks/report/html';
import { browserScript } from '../../../sinks/report/browserBundle';

const sample = join(__dirname, '..', '..', 'fixtures', 'sample.pcap');
const WHATIF = 'nf_conntrack_tcp_be_liberal=1';
let dir: string;
let browser: Browser;

beforeAll(async () => {
  const missing = process.env.CTFLOW_CHROMIUM_MISSING;
  if (missing) throw new Error(missing);
  dir = mkdtempSync(join(tmpdir(), 'ctflow-report-browser-'));
  browser = await chromium.launch({ executablePath: process.env.CTFLOW_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  consoleErrors: string[];
  /** Every request that was not for a file: the report must make none. */
  offFile: string[];
}

async function open(htmlPath: string): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, offline: true });
  const offFile: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    offFile.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  page.on('request', (r) => { if (!r.url().startsWith('file:')) offFile.push(r.url()); });
  await page.goto(pathToFileURL(htmlPath).href);
  await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
  return { page, consoleErrors, offFile };
}

function report(capture: string, out: string, ...extra: string[]): void {
  const r = ctflow('report', capture, '-o', out, ...extra);
  if (r.code !== 0) throw new Error(`ctflow report failed: ${r.err.join('\n')}`);
}

test('the harness notices a request off the file, so the checks below can fail', async () => {
  const page = join(dir, 'fetches.html');
  writeFileSync(page, '<!doctype html><body data-ready="1"><img src="http://192.0.2.1/pixel.png"></body>');
  const o = await open(page);
  await o.page.waitForTimeout(200);
  expect(o.offFile).toContain('http://192.0.2.1/pixel.png');
});

describe('the report of sample.pcap with --whatif', () => {
  let o: Opened;
  beforeAll(async () => {
    const html = join(dir, 'sample.html');
    report(sample, html, '--whatif', WHATIF);
    o = await open(html);
  });

  test('opens offline with no console error and no request off the file', () => {
    expect(o.consoleErrors).toEqual([]);
    expect(o.offFile).toEqual([]);
  });

  test('every chart has drawn: uPlot has run its draw hook and the canvas holds plotted pixels', async () => {
    const charts = await o.page.evaluate<Array<{ id: string; drawn: number; inked: number }>>(`
      [...document.querySelectorAll('.chart')].map((box) => {
        const canvas = box.querySelector('canvas');
        const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let k = 3; k < px.length; k += 4) if (px[k] !== 0) inked++;
        return { id: box.dataset.chart, drawn: Number(box.querySelector('.uplot').dataset.drawn || 0), inked };
      })`);
    expect(charts.map((c) => c.id)).toEqual(['entries', 'verdicts', 'invalid', 'new']);
    for (const c of charts) {
      expect(c.drawn).toBeGreaterThan(0);
      expect(c.inked).toBeGreaterThan(2000);
    }
  });

  test('the summary shows the verdict totals of ctflow classify and the counters of ctflow stats', async () => {
    const totals: Record<string, number> = {};
    jsonLines('classify', sample).forEach((l) => (totals[l.ctstate] = (totals[l.ctstate] ?? 0) + 1));
    for (const [state, n] of Object.entries(totals)) {
      expect(await o.page.locator(`[data-summary="verdicts"] [data-key="${state}"]`).textContent()).toBe(n.toLocaleString('en-US'));
    }
    const stats = jsonLines('stats', sample, '--json')[0];
    for (const [k, v] of Object.entries(stats)) expect(await o.page.locator(`[data-summary="stats"] [data-key="${k}"]`).textContent()).toBe((v as number).toLocaleString('en-US'));
  });

  test('filtering the flow table by protocol and state (open flows) shows the flows ctflow list shows', async () => {
    const listed = jsonLines('list', sample, '--json');
    const groups = new Map<string, number[]>();
    for (const f of listed) if (f.state) groups.set(`${f.protonum} ${f.state}`, [...(groups.get(`${f.protonum} ${f.state}`) ?? []), f.id]);
    const bySize = [...groups].sort((a, b) => a[1].length - b[1].length);
    expect(bySize.length).toBeGreaterThan(1);
    // The smallest group fits in the table's view, so every row it has is drawn; the largest does not.
    for (const [key, ids] of [bySize[0], bySize[bySize.length - 1]]) {
      const [proto, state] = key.split(' ');
      await o.page.selectOption('[data-filter="end"]', 'open');
      await o.page.selectOption('[data-filter="proto"]', proto);
      await o.page.selectOption('[data-filter="state"]', { label: state });
      expect(await o.page.locator('[data-flow-count]').textContent()).toMatch(new RegExp(`^${ids.length.toLocaleString('en-US')} of `));
      const shown = (await o.page.locator('.flowrow').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-flow-id'))))).sort((a, b) => a - b);
      if (ids.length <= 15) expect(shown).toEqual([...ids].sort((a, b) => a - b));
      else {
        expect(shown.length).toBeLessThan(ids.length);
        for (const id of shown) expect(ids).toContain(id);
      }
    }
  });

  test('clicking a flow tells its story: its packets with the verdicts of ctflow classify, INVALID reasons with the window values, its events', async () => {
    const lines = jsonLines('classify', sample);
    const invalid = lines.find((l) => l.reason === 'tcp_out_of_window' && l.flow !== undefined)!;
    expect(invalid).toBeDefined();
    const ofFlow = lines.filter((l) => l.flow === invalid.flow);
    await o.page.selectOption('[data-filter="end"]', '');
    await o.page.selectOption('[data-filter="proto"]', '');
    await o.page.selectOption('[data-filter="state"]', '');
    await o.page.fill('[data-filter="port"]', '50001');
    await o.page.click(`.flowrow[data-flow-id="${invalid.flow}"]`);
    await o.page.waitForSelector(`#story[data-flow-id="${invalid.flow}"]`);
    const rows = await o.page.locator('[data-story-packets] tr[data-packet]').evaluateAll((trs) => trs.map((tr) => ({ i: Number(tr.getAttribute('data-packet')), ctstate: tr.getAttribute('data-ctstate'), text: tr.textContent ?? '' })));
    expect(rows.map((r) => [r.i, r.ctstate])).toEqual(ofFlow.map((l) => [l.i, l.ctstate]));
    const bad = rows.find((r) => r.i === invalid.i)!;
    expect(bad.text).toContain('tcp_out_of_window');
    for (const [k, v] of Object.entries(invalid.detail as Record<string, number>)) expect(bad.text).toContain(`${k}=${v}`);
    const events = jsonLines('events', sample, '--json').filter((e) => e.id === invalid.flow);
    expect(await o.page.locator('[data-story-events] tr[data-event]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event')))).toEqual(events.map((e) => e.type));
    const shot = join(dir, 'report.png');
    await o.page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(50_000);
    if (process.env.CTFLOW_REPORT_SCREENSHOT) await o.page.screenshot({ path: process.env.CTFLOW_REPORT_SCREENSHOT, fullPage: true });
  });

  test('zooming the charts (a drag) can narrow the flow table to the flows active in that window', async () => {
    // Each flow's first and last packet time (µs), from ctflow events and list.
    const spans: Array<[number, number]> = [];
    const open = new Map<number, number>();
    const us = (s: number): number => Math.round(s * 1e6);
    for (const e of jsonLines('events', sample, '--json')) {
      if (e.type === 'NEW') open.set(e.id, us(e.start));
      if (e.type === 'DESTROY') spans.push([open.get(e.id)!, us(e.last)]);
    }
    for (const f of jsonLines('list', sample, '--json')) spans.push([us(f.start), us(f.last)]);
    const firstUs = Math.min(...jsonLines('classify', sample).map((l) => us(l.ts)));
    await o.page.fill('[data-filter="port"]', '');
    expect(await o.page.locator('[data-filter-active]').isDisabled()).toBe(true);
    await o.page.locator('[data-chart="entries"] .u-over').scrollIntoViewIfNeeded();
    const box = (await o.page.locator('[data-chart="entries"] .u-over').boundingBox())!;
    await o.page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await o.page.mouse.down();
    await o.page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2, { steps: 5 });
    await o.page.mouse.up();
    const windowEl = o.page.locator('[data-window]');
    const from = firstUs + Number(await windowEl.getAttribute('data-from'));
    const to = firstUs + Number(await windowEl.getAttribute('data-to'));
    expect(to).toBeGreaterThan(from);
    await o.page.check('[data-filter-active]');
    const expected = spans.filter(([a, b]) => a <= to && b >= from).length;
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(spans.length);
    expect(await o.page.locator('[data-flow-count]').textContent()).toBe(`${expected.toLocaleString('en-US')} of ${spans.length.toLocaleString('en-US')} flows`);
    // A double click zooms back out, and the filter lets go of the window.
    await o.page.dblclick('[data-chart="entries"] .u-over');
    expect(await o.page.locator('[data-filter-active]').isChecked()).toBe(false);
    expect(await o.page.locator('[data-flow-count]').textContent()).toMatch(new RegExp(`^${spans.length.toLocaleString('en-US')} of `));
  });

  test('the INVALID list holds the INVALID packets of ctflow classify with their reasons, and links to the flow', async () => {
    const invalid = jsonLines('classify', sample).filter((l) => l.ctstate === 'INVALID');
    expect(invalid.length).toBeGreaterThan(0);
    const rows = await o.page.locator('[data-invalid-packets] tr[data-packet]').evaluateAll((trs) => trs.map((tr) => [Number(tr.getAttribute('data-packet')), tr.children[2].textContent]));
    expect(rows).toEqual(invalid.map((l) => [l.i, l.reason]));
    const withFlow = invalid.find((l) => l.flow !== undefined)!;
    await o.page.click(`[data-invalid-packets] tr[data-packet="${withFlow.i}"] a`);
    await o.page.waitForSelector(`#story[data-flow-id="${withFlow.flow}"]`);
  });

  test('the what-if section lists the packets whose verdict ctflow whatif says changes', async () => {
    const w = jsonLines('whatif', sample, '--sysctl', WHATIF, '--json')[0];
    expect(w.verdictChanges.length).toBeGreaterThan(0);
    const rows = await o.page.locator('[data-whatif-packets] tr[data-packet]').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-packet'))));
    expect(rows).toEqual(w.verdictChanges.map((c: { i: number }) => c.i));
    expect(await o.page.locator('[data-whatif-flows] tr').count()).toBe(w.flowChanges.length + 1);
  });

  test('and after all the clicking, filtering and zooming above: still no console error, no request', () => {
    expect(o.consoleErrors).toEqual([]);
    expect(o.offFile).toEqual([]);
  });
});

test('the report of a capture with bad frames lists them, index and reason, and says where the capture broke', async () => {
  const capture = join(dir, 'bad.pcap');
  writeFileSync(capture, captureWithBadFrames());
  const html = join(dir, 'bad.html');
  report(capture, html);
  const o = await open(html);
  expect(o.consoleErrors).toEqual([]);
  expect(o.offFile).toEqual([]);
  const expected = ctflow('stats', capture).err.filter((l) => /^ctflow: frame \d+: /.test(l)).map((l) => l.replace(/^ctflow: frame (\d+): /, '$1 '));
  const rows = await o.page.locator('[data-bad-frames] tr').evaluateAll((trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent).join(' ')));
  expect(rows).toEqual(expected);
  expect(rows.length).toBe(2);
  expect(await o.page.locator('[data-capture-problem]').textContent()).toMatch(/ends early/);
});

test("a topic's bad frames and unreadable messages show the message they were in", async () => {
  const bytes = captureWithBadFrames();
  const model = buildReportModel(bytes, 'topic', makeSysctl(), 1);
  const [first, second] = model.meta.capture.badFrames;
  // As a topic report has them (test/kafka/reportTopic.test.ts): a frame in a batch, and a whole message.
  first.message = { topic: 'captured', partition: 2, offset: '17', frameInMessage: 3 };
  model.meta.capture.badFrames = [first, { frame: -1, reason: 'not a frame batch', message: { topic: 'captured', partition: 0, offset: '4' } }, second];
  const html = join(dir, 'topic-bad.html');
  writeFileSync(html, reportHtml(encodeReport(model), browserScript()));
  const o = await open(html);
  const rows = await o.page.locator('[data-bad-frames] tr').evaluateAll((trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  expect(rows).toEqual([
    [String(first.frame), 'captured partition 2 offset 17 frame 3', first.reason],
    ['—', 'captured partition 0 offset 4 (the whole message)', 'not a frame batch'],
    [String(second.frame), '', second.reason],
  ]);
  expect(o.consoleErrors).toEqual([]);
});

test('a flow longer than one page of its story shows the rest a page per click, in order, with the verdicts of ctflow classify', async () => {
  const capture = join(dir, 'long.pcap');
  writeFileSync(capture, longUdpFlow(4500));
  const html = join(dir, 'long.html');
  report(capture, html);
  const o = await open(html);
  const lines = jsonLines('classify', capture);
  await o.page.click(`.flowrow[data-flow-id="${lines[0].flow}"]`);
  const rows = o.page.locator('[data-story-packets] tr[data-packet]');
  expect(await rows.count()).toBe(2000);
  await o.page.click('[data-more]');
  expect(await rows.count()).toBe(4000);
  await o.page.click('[data-more]');
  expect(await rows.count()).toBe(4500);
  expect(await o.page.locator('[data-more]').count()).toBe(0);
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-packet')} ${tr.getAttribute('data-ctstate')}`));
  expect(shown).toEqual(lines.map((l) => `${l.i} ${l.ctstate}`));
  expect(o.consoleErrors).toEqual([]);
});
