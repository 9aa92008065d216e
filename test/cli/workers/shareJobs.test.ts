/**
 * whatif and report with --workers: each share replays its own flows to the end and the main
 * thread merges (cli/workers/shareJobs.ts); the result must be exactly one thread's: the same
 * whatif report (packets by index, flows in one thread's order) and the same report model, byte
 * for byte once encoded. Checked on every crafted kernel scenario with 2 and 3 shares, on random
 * captures, on the sample capture, and through the CLI in this process and in a child process.
 *
 * The scenario sweep runs the shares one after another in this thread (each result cloned as it
 * would be to cross a thread): the merge is what it checks, and starting threads for 66 scenarios
 * x 2 share counts x 2 commands would take minutes. The random captures and the sample go
 * through real worker threads (runShares).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { buildReportModel, reportModelInShares } from '../../../cli/report';
import { parseRuleOptions } from '../../../cli/rules';
import { loadCapture } from '../../../cli/runCapture';
import { whatIf, whatIfReport } from '../../../cli/whatif';
import type { WhatIfReport } from '../../../cli/whatif';
import { whatIfInShares } from '../../../cli/workerCommands';
import { sharedCapture, shareSysctl } from '../../../cli/workers/captureWorkers';
import { feedReport } from '../../../cli/workers/reportShare';
import type { ReportShareResult } from '../../../cli/workers/reportShare';
import { runShareJob } from '../../../cli/workers/shareJobs';
import type { ShareJob } from '../../../cli/workers/shareJobs';
import { mergeWhatIf } from '../../../cli/workers/whatIfShare';
import type { WhatIfShareResult } from '../../../cli/workers/whatIfShare';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import type { Sysctl } from '../../../processors/conntrack/sysctl';
import { ReportCollector } from '../../../sinks/report/collect';
import type { CollectOptions, ReportModel } from '../../../sinks/report/collect';
import { encodeReport } from '../../../sinks/report/encode';
import { runCliAsync } from '../runCli';
import { captureArb } from './randomCaptures';

const FIXTURES = join(__dirname, '..', '..', 'fixtures');
const sample = join(FIXTURES, 'sample.pcap');

/** Short timeouts, so that expiries fall between packets and interleave across shares. */
const SHORT = { nf_conntrack_udp_timeout: 1, nf_conntrack_icmp_timeout: 1, nf_conntrack_tcp_timeout_syn_sent: 1, nf_conntrack_tcp_timeout_close: 1 };
/** Knobs that change verdicts (no mid-stream pickup; no window checks) and fates (the timeouts). */
const CHANGED = { ...SHORT, nf_conntrack_tcp_loose: 0, nf_conntrack_tcp_be_liberal: 1 };

/** Every share of a job run in this thread, each result structured-cloned as postMessage would. */
function sharesHere(bytes: Uint8Array, workers: number, job: ShareJob, helper: string[]): unknown[] {
  const capture = sharedCapture(bytes);
  return Array.from({ length: workers }, (_, worker) => structuredClone(runShareJob({ capture, worker, workers, notrack: [], helper, zones: {}, ...job }, bytes)));
}

function whatIfHere(bytes: Uint8Array, base: Sysctl, changed: Sysctl, workers: number, helper: string[]): { report: WhatIfReport; results: WhatIfShareResult[] } {
  const results = sharesHere(bytes, workers, { job: 'whatif', base: shareSysctl(base, workers), changed: shareSysctl(changed, workers) }, helper) as WhatIfShareResult[];
  const m = mergeWhatIf(results);
  expect(m.limitReached).toBe(false);
  return { report: whatIfReport(base, changed, m.packets, m.verdictChanges, m.flowChanges), results };
}

function reportHere(bytes: Uint8Array, sysctl: Sysctl, workers: number, helper: string[], collect: CollectOptions): ReportModel {
  const results = sharesHere(bytes, workers, { job: 'report', sysctl: shareSysctl(sysctl, workers) }, helper) as ReportShareResult[];
  expect(results.some((r) => r.limitReached)).toBe(false);
  const collector = new ReportCollector(collect);
  return collector.finish(feedReport(results, collector), { captureName: 'x.pcap', sysctl, generatedBy: 'ctflow report' });
}

/** The same model: compared as data first (a readable difference), then as the bytes the HTML carries. */
function expectSameModel(many: ReportModel, one: ReportModel): void {
  expect(many.meta).toEqual(one.meta);
  expect(many.columns).toEqual(one.columns);
  expect(JSON.stringify(encodeReport(many))).toBe(JSON.stringify(encodeReport(one)));
}

test('every crafted kernel scenario, 2 and 3 shares: whatif both ways and the report are one thread\'s', () => {
  const root = join(FIXTURES, 'scenarios');
  const names = readdirSync(root);
  expect(names.length).toBeGreaterThanOrEqual(39);
  const defaults = makeSysctl();
  const changed = makeSysctl(CHANGED);
  const short = makeSysctl(SHORT);
  // The merge is exercised only if changes exist and some flows are tracked only in the second
  // run (they are listed after the first run's).
  let verdictChanges = 0;
  let flowChanges = 0;
  let secondRunOnly = 0;
  for (const name of names) {
    const bytes = loadCapture(join(root, name, 'packets.pcap'));
    const args = readFileSync(join(root, name, 'ctflow-args'), 'utf8').trim().split(/\s+/);
    const helper = args.flatMap((w, i) => (w === '--helper' ? [args[i + 1]] : []));
    const rules = parseRuleOptions({ helper });
    for (const [base, other] of [[defaults, changed], [changed, defaults]]) {
      const one = whatIf(bytes, base, other, 1, rules);
      verdictChanges += one.verdictChanges.length;
      flowChanges += one.flowChanges.length;
      secondRunOnly += one.flowChanges.filter((c) => c.before === 'never tracked').length;
      for (const workers of [2, 3]) {
        expect(JSON.stringify(whatIfHere(bytes, base, other, workers, helper).report)).toBe(JSON.stringify(one));
      }
    }
    // A small details limit: which INVALID packets keep their details depends on the order too.
    const collect = { maxDetails: 2 };
    const oneModel = buildReportModel(bytes, 'x.pcap', short, 1, collect, { rules });
    for (const workers of [2, 3]) expectSameModel(reportHere(bytes, short, workers, helper, collect), oneModel);
  }
  expect(verdictChanges).toBeGreaterThan(0);
  expect(flowChanges).toBeGreaterThan(0);
  expect(secondRunOnly).toBeGreaterThan(0);
});

const RANDOM_SHORT = makeSysctl({ nf_conntrack_udp_timeout: 5, nf_conntrack_tcp_timeout_syn_sent: 10, nf_conntrack_tcp_timeout_syn_recv: 7, nf_conntrack_icmp_timeout: 3 });
const RANDOM_CHANGED = makeSysctl({ nf_conntrack_udp_timeout: 2, nf_conntrack_tcp_timeout_syn_sent: 30, nf_conntrack_icmp_timeout: 1, nf_conntrack_tcp_loose: 0, nf_conntrack_frag6_timeout: 1, ipfrag_time: 2 });

/** Without events, a run's flows are known from its final table only (listed by entry id). */
const RANDOM_SILENT = makeSysctl({ nf_conntrack_udp_timeout: 5, nf_conntrack_events: 0 });
const RANDOM_PAIRS: Array<[Sysctl, Sysctl]> = [[RANDOM_SHORT, RANDOM_CHANGED], [RANDOM_CHANGED, RANDOM_SHORT], [RANDOM_SILENT, RANDOM_CHANGED], [RANDOM_SHORT, RANDOM_SILENT]];

test('random captures, shares in this thread: fragments, times that step back, expiries, ICMP errors', () => {
  // Captures whose flow changes come from several shares: their order is the merge's doing.
  let fromSeveralShares = 0;
  fc.assert(
    fc.property(captureArb, fc.integer({ min: 2, max: 4 }), fc.constantFrom(...RANDOM_PAIRS), (bytes, workers, [base, other]) => {
      const many = whatIfHere(bytes, base, other, workers, []);
      expect(JSON.stringify(many.report)).toBe(JSON.stringify(whatIf(bytes, base, other, 1)));
      if (many.results.filter((r) => r.flowChanges.length > 0).length > 1) fromSeveralShares++;
      expectSameModel(reportHere(bytes, base, workers, [], { maxDetails: 3, maxBuckets: 8 }), buildReportModel(bytes, 'x.pcap', base, 1, { maxDetails: 3, maxBuckets: 8 }));
    }),
    { numRuns: 150 },
  );
  expect(fromSeveralShares).toBeGreaterThan(10);
});

const quiet = { out: () => undefined, err: (l: string) => { throw new Error(`unexpected stderr: ${l}`); } };

test('random captures in worker threads: the same whatif report and report model', async () => {
  await fc.assert(
    fc.asyncProperty(captureArb, fc.integer({ min: 2, max: 3 }), async (bytes, workers) => {
      const shares = { workers };
      const o = { workers: String(workers), sysctl: [], shards: '1' };
      expect(JSON.stringify(await whatIfInShares(bytes, RANDOM_SHORT, RANDOM_CHANGED, o, quiet))).toBe(JSON.stringify(whatIf(bytes, RANDOM_SHORT, RANDOM_CHANGED, 1)));
      const many = await reportModelInShares(bytes, 'x.pcap', RANDOM_SHORT, shares);
      expect(many.limitReached).toBe(false);
      expectSameModel(many.model, buildReportModel(bytes, 'x.pcap', RANDOM_SHORT, 1));
    }),
    { numRuns: 12 },
  );
});

test('the sample capture in 2 and 3 worker threads: the same report model', async () => {
  const bytes = loadCapture(sample);
  const one = buildReportModel(bytes, 'sample.pcap', makeSysctl(SHORT), 1);
  expect(one.meta.flowCount).toBeGreaterThan(100);
  for (const workers of [2, 3]) expectSameModel((await reportModelInShares(bytes, 'sample.pcap', makeSysctl(SHORT), { workers })).model, one);
});

describe('the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-share-jobs-'));

  test.each([['--json'], [], ['--json', '--zone-default', '3', '--notrack', 'udp/53', '--helper', 'ftp:tcp/21']])('whatif %s with --workers 2 and 3 prints what one thread prints', async (...flags) => {
    const knobs = ['--sysctl', 'nf_conntrack_tcp_loose=0', '--sysctl', 'nf_conntrack_udp_timeout=1'];
    const one = await runCliAsync('whatif', sample, ...knobs, ...flags);
    expect(one.code).toBe(0);
    expect(one.out.join('\n')).toMatch(/flows change fate/);
    for (const workers of ['2', '3']) {
      const many = await runCliAsync('whatif', sample, ...knobs, ...flags, '--workers', workers);
      expect(many.code).toBe(0);
      expect(many.out).toEqual(one.out);
      expect(many.err).toEqual(one.err);
    }
  });

  test('report --whatif with --workers 2 and 3 writes the file one thread writes', async () => {
    const write = async (name: string, ...more: string[]): Promise<Buffer> => {
      const r = await runCliAsync('report', sample, '-o', join(dir, name), '--sysctl', 'nf_conntrack_udp_timeout=5', '--whatif', 'nf_conntrack_tcp_be_liberal=1', '--whatif', 'nf_conntrack_udp_timeout=1', ...more);
      expect(r.code).toBe(0);
      expect(r.err).toHaveLength(1); // what was written, and nothing else
      return readFileSync(join(dir, name));
    };
    const one = await write('one.html');
    expect((await write('two.html', '--workers', '2')).equals(one)).toBe(true);
    expect((await write('three.html', '--workers', '3')).equals(one)).toBe(true);
  });

  test('as a process, as bin/ctflow runs: whatif and report with --workers 2 give one thread\'s bytes', () => {
    const ctflow = (...argv: string[]): Buffer => execFileSync(process.execPath, [join(__dirname, '..', '..', 'prometheus', 'runTs.js'), ...argv], { maxBuffer: 1 << 26 });
    const knobs = ['--sysctl', 'nf_conntrack_tcp_loose=0', '--sysctl', 'nf_conntrack_udp_timeout=1'];
    const one = ctflow('whatif', sample, ...knobs);
    expect(one.length).toBeGreaterThan(0);
    expect(ctflow('whatif', sample, ...knobs, '--workers', '2').equals(one)).toBe(true);
    ctflow('report', sample, '-o', join(dir, 'p1.html'), '--quiet', '--whatif', 'nf_conntrack_tcp_loose=0');
    ctflow('report', sample, '-o', join(dir, 'p2.html'), '--quiet', '--whatif', 'nf_conntrack_tcp_loose=0', '--workers', '2');
    expect(readFileSync(join(dir, 'p2.html')).equals(readFileSync(join(dir, 'p1.html')))).toBe(true);
  });
});
