/**
 * `npm run bench:report`: how long `ctflow report` takes on a 1.6-million-packet capture, how big
 * the file is, and how the page behaves in Chromium.
 *
 * The capture is the bundled sample's generator (scripts/sampleTraffic.ts) scaled up to enough
 * sessions for --packets (default 1,600,000), written once to .cache/bench/. Timed in this
 * process: the plain replay (runCapture, nothing collected) for comparison, then the report's
 * replay with its collector, the column encoding (gzip) and the HTML. With Debian's chromium at
 * /usr/bin/chromium (or $CTFLOW_CHROMIUM), the file is opened from file:// and timed to ready,
 * then a protocol filter and a click on the flow with the most packets are timed.
 *
 * Options: --packets N, --runs N (default 3; medians, with the report's fastest and slowest), --json.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildReportModel } from '../cli/report';
import { runCapture } from '../cli/runCapture';
import { readAllPackets } from '../ingest/packetSource';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { makeSampleCapture } from '../scripts/sampleTraffic';
import { browserScript } from '../sinks/report/browserBundle';
import { encodeReport } from '../sinks/report/encode';
import { reportHtml } from '../sinks/report/html';

const ROOT = join(__dirname, '..', '..');
/** Packets per session of the sample's traffic: the difference between 2,000 and 1,000 sessions (the fixed extras cancel out). */
function packetsPerSession(): number {
  const count = (sessions: number): number => readAllPackets(makeSampleCapture(sessions)).packets.length;
  return (count(2000) - count(1000)) / 1000;
}

function arg(name: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : undefined;
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

function capture(packets: number): { path: string; bytes: Uint8Array } {
  const dir = join(ROOT, '.cache', 'bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `report-${packets}.pcap`);
  if (!existsSync(path)) {
    process.stderr.write(`generating ${path}\n`);
    writeFileSync(path, makeSampleCapture(Math.round(packets / packetsPerSession())));
  }
  const buf = readFileSync(path);
  return { path, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}

async function inBrowser(htmlPath: string): Promise<Record<string, number> | string> {
  const executablePath = process.env.CTFLOW_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) return `no chromium at ${executablePath}`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let t0 = process.hrtime.bigint();
    await page.goto(pathToFileURL(htmlPath).href, { timeout: 300_000 });
    await page.waitForSelector('body[data-ready]', { timeout: 300_000 });
    const ready = seconds(t0);
    t0 = process.hrtime.bigint();
    await page.selectOption('[data-filter="proto"]', '17');
    await page.waitForSelector('.flowrow');
    const filter = seconds(t0);
    await page.selectOption('[data-filter="proto"]', '');
    // The flow with the most packets: sort by packets (descending) and click the first row.
    t0 = process.hrtime.bigint();
    await page.click('[data-sort="packets"]');
    const sort = seconds(t0);
    const id = await page.locator('.flowrow').first().getAttribute('data-flow-id');
    t0 = process.hrtime.bigint();
    await page.click(`.flowrow[data-flow-id="${id}"]`);
    await page.waitForSelector(`#story[data-flow-id="${id}"]`);
    const story = seconds(t0);
    const heapMB = Number(await page.evaluate('performance.memory ? performance.memory.usedJSHeapSize / 1e6 : NaN'));
    if (errors.length) return `page errors: ${errors.join('; ')}`;
    return { readySeconds: ready, filterSeconds: filter, sortSeconds: sort, storySeconds: story, heapMB };
  } finally {
    await browser.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const packets = Number(arg('--packets') ?? 1_600_000);
  const runs = Number(arg('--runs') ?? 3);
  const { path, bytes } = capture(packets);
  const sysctl = makeSysctl();
  const times: Record<'replay' | 'collect' | 'encode' | 'html', number[]> = { replay: [], collect: [], encode: [], html: [] };
  const out = join(ROOT, '.cache', 'bench', 'report.html');
  let last: { packets: number; flows: number; events: number; rawBytes: number } | undefined;
  // Alternating the plain replay and the report's, so load on the shared machine falls on both.
  for (let run = 0; run < runs; run++) {
    let t0 = process.hrtime.bigint();
    const plain = runCapture(bytes, { sysctl, shards: 1 });
    times.replay.push(seconds(t0));
    t0 = process.hrtime.bigint();
    const model = buildReportModel(bytes, 'bench.pcap', sysctl, 1);
    times.collect.push(seconds(t0));
    t0 = process.hrtime.bigint();
    const encoded = encodeReport(model);
    times.encode.push(seconds(t0));
    t0 = process.hrtime.bigint();
    writeFileSync(out, reportHtml(encoded, browserScript()));
    times.html.push(seconds(t0));
    last = { packets: plain.packets, flows: model.meta.flowCount, events: model.meta.eventCount, rawBytes: encoded.rawBytes };
    process.stderr.write(`run ${run + 1}/${runs}: replay ${times.replay[run].toFixed(2)} s, report ${(times.collect[run] + times.encode[run] + times.html[run]).toFixed(2)} s\n`);
  }
  const reportTimes = times.collect.map((c, k) => c + times.encode[k] + times.html[k]);
  const result = {
    capture: path,
    captureMB: bytes.length / 1e6,
    packets: last!.packets,
    flows: last!.flows,
    events: last!.events,
    runs,
    replaySeconds: median(times.replay),
    reportSeconds: median(reportTimes),
    reportSecondsRange: [Math.min(...reportTimes), Math.max(...reportTimes)],
    collectSeconds: median(times.collect),
    encodeSeconds: median(times.encode),
    htmlSeconds: median(times.html),
    columnsRawMB: last!.rawBytes / 1e6,
    fileMB: statSync(out).size / 1e6,
    rssMB: process.memoryUsage().rss / 1e6,
    browser: await inBrowser(out),
  };
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  else {
    const f = (n: number): string => n.toFixed(2);
    console.log(`capture   ${result.packets} packets, ${result.flows} flows, ${result.events} events (${f(result.captureMB)} MB, ${path})`);
    console.log(`medians of ${runs} runs:`);
    console.log(`replay    ${f(result.replaySeconds)} s without the report`);
    console.log(`report    ${f(result.reportSeconds)} s (${f(result.reportSecondsRange[0])}-${f(result.reportSecondsRange[1])}): replay+collect ${f(result.collectSeconds)} s, encode ${f(result.encodeSeconds)} s, html ${f(result.htmlSeconds)} s`);
    console.log(`file      ${f(result.fileMB)} MB (columns ${f(result.columnsRawMB)} MB before gzip), ${out}`);
    console.log(`rss       ${f(result.rssMB)} MB`);
    const b = result.browser;
    console.log(typeof b === 'string' ? `browser   not measured: ${b}` : `browser   ready ${f(b.readySeconds)} s, filter ${f(b.filterSeconds)} s, sort ${f(b.sortSeconds)} s, story ${f(b.storySeconds)} s, JS heap ${f(b.heapMB)} MB`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
