/**
 * --workers N: the engine split over worker threads gives exactly one thread's output: every
 * verdict line, every event line in the same order, the same final table and counters. Checked on
 * the sample capture, every crafted kernel scenario, random captures with fragments, reordered
 * times, timeouts and ICMP errors, and through the CLI. At the table limit the run says that
 * evictions may differ.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { mainAsync } from '../../../main';
import { runCliAsync } from '../runCli';
import { loadCapture, runCapture } from '../../../cli/runCapture';
import { runCaptureInWorkers } from '../../../cli/workers/captureWorkers';
import { parseRuleOptions } from '../../../cli/rules';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import type { Sysctl } from '../../../processors/conntrack/sysctl';
import { formatEvent } from '../../../sinks/conntrackText';
import { eventJson, verdictJson } from '../../../sinks/jsonRecords';
import { reasonsByCount, replayTally } from '../../../cli/replayTally';
import type { ReplayTally } from '../../../cli/replayTally';
import { captureArb } from './randomCaptures';

const FIXTURES = join(__dirname, '..', '..', 'fixtures');

/** replay's counts in a comparable form (reasons in their summary order). */
const counted = (t: ReplayTally | undefined) => t && { counts: t.counts, reasons: reasonsByCount(t.reasons), events: t.eventCounts };

/** One thread: verdict lines, event lines (text and JSON), table, counters and replay's counts. */
function single(bytes: Uint8Array, sysctl: Sysctl, helper: string[] = []) {
  const verdicts: string[] = [];
  const text: string[] = [];
  const json: string[] = [];
  const tally = replayTally();
  const r = runCapture(bytes, {
    sysctl,
    shards: 1,
    rules: parseRuleOptions({ helper }),
    onVerdict: (v) => {
      verdicts.push(JSON.stringify(verdictJson(v)));
      tally.onVerdict(v);
    },
    onEvent: (e) => {
      text.push(formatEvent(e, { acct: sysctl.nf_conntrack_acct !== 0 }));
      json.push(JSON.stringify(eventJson(e)));
      tally.onEvent(e);
    },
  });
  return { verdicts, text, json, flows: r.engine.list(), stats: r.engine.stats(), tally: counted(tally) };
}

/** In workers: verdict and JSON event lines, table and counters; with `text`, a second run for the text event lines. */
async function inWorkers(bytes: Uint8Array, sysctl: Sysctl, workers: number, helper: string[] = [], text = false) {
  const verdicts: string[] = [];
  const json: string[] = [];
  const r = await runCaptureInWorkers(bytes, { sysctl, workers, helper, onVerdictLine: (l) => verdicts.push(l), events: 'json', onEventLine: (l) => json.push(l), table: true, tally: true });
  const textLines: string[] = [];
  if (text) await runCaptureInWorkers(bytes, { sysctl, workers, helper, events: 'text', onEventLine: (l) => textLines.push(l) });
  return { verdicts, text: textLines, json, flows: r.flows, stats: r.stats, limitReached: r.limitReached, tally: counted(r.tally) };
}

/**
 * The same output as one thread. The text event lines are formatted from the same events as the
 * JSON ones, so they are compared where asked (the sample capture; the CLI tests below), not on
 * every scenario: each comparison starts N threads that load the sources anew.
 */
async function expectSameAsOneThread(bytes: Uint8Array, workers: number, sysctl = makeSysctl(), helper: string[] = [], text = false): Promise<void> {
  const one = single(bytes, sysctl, helper);
  const many = await inWorkers(bytes, sysctl, workers, helper, text);
  expect(many.limitReached).toBe(false);
  expect(many.verdicts).toEqual(one.verdicts);
  expect(many.json).toEqual(one.json);
  if (text) expect(many.text).toEqual(one.text);
  expect(many.flows).toEqual(one.flows);
  expect(many.stats).toEqual(one.stats);
  expect(many.tally).toEqual(one.tally);
}

test('the sample capture: the same lines, table and counters with 2, 3 and 4 workers', async () => {
  const bytes = loadCapture(join(FIXTURES, 'sample.pcap'));
  for (const workers of [2, 3, 4]) await expectSameAsOneThread(bytes, workers, makeSysctl(), [], true);
});

test('every crafted kernel scenario (with its helpers), timeouts shortened so expiries interleave', async () => {
  const root = join(FIXTURES, 'scenarios');
  const names = readdirSync(root);
  expect(names.length).toBeGreaterThanOrEqual(39);
  let withHelpers = 0;
  for (const name of names) {
    const bytes = loadCapture(join(root, name, 'packets.pcap'));
    const args = readFileSync(join(root, name, 'ctflow-args'), 'utf8').trim().split(/\s+/);
    const helper = args.flatMap((w, i) => (w === '--helper' ? [args[i + 1]] : []));
    if (helper.length) withHelpers++;
    await expectSameAsOneThread(bytes, 3, makeSysctl({ nf_conntrack_udp_timeout: 1, nf_conntrack_icmp_timeout: 1, nf_conntrack_tcp_timeout_syn_sent: 1, nf_conntrack_tcp_timeout_close: 1 }), helper);
  }
  expect(withHelpers).toBeGreaterThanOrEqual(8);
  // Each scenario starts its own workers (about 2 s on this shared 2-core machine), so the time
  // grows with the fixture set (66 scenarios went past the default 120 s under load).
}, 300_000);

test('random captures: fragments (some never completed), times that step back, expiries, ICMP errors', async () => {
  const sysctl = makeSysctl({ nf_conntrack_udp_timeout: 5, nf_conntrack_tcp_timeout_syn_sent: 10, nf_conntrack_tcp_timeout_syn_recv: 7, nf_conntrack_icmp_timeout: 3 });
  await fc.assert(
    fc.asyncProperty(captureArb, fc.integer({ min: 2, max: 4 }), async (bytes, workers) => {
      await expectSameAsOneThread(bytes, workers, sysctl);
    }),
    { numRuns: 25 },
  );
});

test('at the table limit the run says evictions may differ; below it, it says nothing', async () => {
  const bytes = loadCapture(join(FIXTURES, 'sample.pcap'));
  const full = await runCaptureInWorkers(bytes, { sysctl: makeSysctl({ nf_conntrack_max: 8 }), workers: 2, table: true });
  expect(full.limitReached).toBe(true);
  expect(full.count).toBeLessThanOrEqual(8);
  const err: string[] = [];
  expect(await mainAsync(['stats', join(FIXTURES, 'sample.pcap'), '--workers', '2', '--sysctl', 'nf_conntrack_max=8'], { out: () => undefined, err: (l) => err.push(l) })).toBe(0);
  expect(err.join('\n')).toMatch(/reached its share of nf_conntrack_max \(8 \/ 2\)/);
});

describe('the CLI', () => {
  const run = runCliAsync;
  const sample = join(FIXTURES, 'sample.pcap');

  test.each([['events', '--json'], ['events'], ['classify'], ['list', '--json'], ['stats', '--json'], ['classify', '--notrack', 'udp/53'], ['stats', '--json', '--notrack', 'tcp/80'], ['events', '--json', '--zone-default', '3'], ['list', '--zone-from', 'interface'], ['list', '-p', 'tcp', '--state', 'ESTABLISHED'], ['events', '-e', 'NEW,DESTROY', '-p', 'udp'], ['events', '--helper', 'ftp:tcp/21'], ['classify', '--helper', 'ftp:tcp/21']])('%s %s --workers 3 prints what one thread prints', async (cmd, ...flags) => {
    const one = await run(cmd, sample, ...flags);
    const three = await run(cmd, sample, ...flags, '--workers', '3');
    expect(one.code).toBe(0);
    expect(three.code).toBe(0);
    expect(three.out).toEqual(one.out);
    expect(three.out.length).toBeGreaterThan(0);
  });

  test('replay --workers 3: the same summary as one thread (the time it took aside)', async () => {
    const one = await run('replay', sample, '--json');
    const three = await run('replay', sample, '--json', '--workers', '3');
    expect(one.code).toBe(0);
    expect(three.code).toBe(0);
    const summary = (lines: string[]) => ({ ...JSON.parse(lines[0]), seconds: 0 });
    expect(summary(three.out)).toEqual(summary(one.out));
    expect(summary(one.out).packets).toBeGreaterThan(0);
    const text = await run('replay', sample, '--workers', '2');
    expect(text.code).toBe(0);
    expect(text.out.slice(1)).toEqual((await run('replay', sample)).out.slice(1));
  });

  test('a report of a Kafka topic checks --workers before connecting (its shares: test/kafka/reportTopic.test.ts)', async () => {
    const r = await run('report', '--topic', 'captured', '-o', '/dev/null', '--brokers', '127.0.0.1:1', '--workers', '0');
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toMatch(/--workers: '0' is not 'auto' or an integer from 1 to 64/);
  });

  test('a bad worker count is refused by name', async () => {
    const r = await run('events', sample, '--workers', '0');
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toMatch(/--workers: '0' is not 'auto' or an integer from 1 to 64/);
  });
});
