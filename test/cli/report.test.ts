/** `ctflow report` on the command line: the file it writes, and its errors for bad input. */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ctflow, ctflowAsync } from '../sinks/report/reportHelpers';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const dir = mkdtempSync(join(tmpdir(), 'ctflow-report-cli-'));

test('writes one self-contained HTML file and says what it holds', () => {
  const out = join(dir, 'r.html');
  const r = ctflow('report', sample, '-o', out, '--sysctl', 'nf_conntrack_tcp_loose=0');
  expect(r.code).toBe(0);
  expect(r.err[0]).toMatch(/^ctflow: wrote .*r\.html \(\d+\.\d MB\): 5802 packets, \d+ flows, 0 bad frames, in \d+\.\d s$/);
  const html = readFileSync(out, 'utf8');
  expect(html.startsWith('<!doctype html>')).toBe(true);
  // Nothing to fetch: no external script, stylesheet or image, and a policy that forbids it anyway.
  expect(html).not.toMatch(/<(script|img|iframe)[^>]+src=/i);
  expect(html).not.toMatch(/<link/i);
  expect(html).toContain("default-src 'none'");
  const meta = JSON.parse(/<script type="application\/json" id="ctflow-meta">(.*?)<\/script>/s.exec(html)![1]);
  expect(meta.knobs.changed).toEqual({ nf_conntrack_tcp_loose: 0 });
  expect(meta.capture.packets).toBe(5802);
});

test('the rule options apply to the report as to ctflow stats (--notrack makes packets UNTRACKED)', () => {
  const out = join(dir, 'notrack.html');
  expect(ctflow('report', sample, '-o', out, '--notrack', 'udp/53').code).toBe(0);
  const meta = JSON.parse(/<script type="application\/json" id="ctflow-meta">(.*?)<\/script>/s.exec(readFileSync(out, 'utf8'))![1]);
  const stats = JSON.parse(ctflow('stats', sample, '--json', '--notrack', 'udp/53').out[0]);
  expect(stats.untracked).toBeGreaterThan(0);
  expect(meta.stats).toEqual(stats);
  expect(meta.verdicts.UNTRACKED).toBe(stats.untracked);
});

test.each([
  [['report', sample], /give the output file with -o/],
  [['report', '-o', join(dir, 'x.html')], /give a capture file/],
  [['report', join(dir, 'missing.pcap'), '-o', join(dir, 'x.html')], /cannot read capture '.*missing\.pcap': ENOENT/],
  [['report', sample, '-o', join(dir, 'no', 'such', 'dir', 'x.html')], /cannot write report '.*x\.html': ENOENT/],
  [['report', sample, '-o', join(dir, 'x.html'), '--whatif', 'nf_conntrack_bogus=1'], /unknown sysctl 'nf_conntrack_bogus'/],
  [['report', sample, '-o', join(dir, 'x.html'), '--whatif', 'nf_conntrack_tcp_loose'], /nf_conntrack_tcp_loose/],
  [['report', sample, '--topic', 'captured', '-o', join(dir, 'x.html')], /give a capture file or --topic, not both/],
  [['report', '--topic', 'captured'], /give the output file with -o/],
  [['report', sample, '-o', join(dir, 'x.html'), '--from', '1700000000'], /--from applies to a Kafka topic \(--topic\), not to a capture file/],
  [['report', sample, '-o', join(dir, 'x.html'), '--brokers', '127.0.0.1:9092'], /--brokers applies to a Kafka topic/],
  [['report', sample, '-o', join(dir, 'x.html'), '--zone-from', 'header'], /--zone-from: 'header' is not one of interface, vlan \(header and topic apply to Kafka input\)/],
])('ctflow %j fails with a message naming the problem', async (argv, message) => {
  // mainAsync: report --topic answers asynchronously (it reads Kafka), a capture report at once.
  const r = await ctflowAsync(...(argv as string[]));
  expect(r.code).toBe(1);
  expect(r.err.join('\n')).toMatch(message);
  expect(existsSync(join(dir, 'x.html'))).toBe(false);
});
