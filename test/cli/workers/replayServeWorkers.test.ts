/**
 * replay CAPTURE --http --workers N: the replay runs in shares and, once they are done, serves
 * what one thread serves at its end: the same /flows pages for conntrack filters, sorts and pages,
 * the same /stats, and the same Prometheus series (packets, bytes, INVALID reasons, transitions,
 * flows created, the table's entries, stats and top flows). On the sample capture and on random
 * captures with fragments, timeouts and ICMP errors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { captureArb } from './randomCaptures';
import { serveAndRead, servingFinalState } from '../servedAnswers';
import { runCliAsync } from '../runCli';

const SAMPLE = join(__dirname, '..', '..', 'fixtures', 'sample.pcap');
const QUERIES = ['', 'proto=tcp&sort=-bytes&limit=5', 'proto=udp', 'state=ESTABLISHED&sort=timeout', 'status=UNREPLIED&sort=-last', 'sort=-packets&offset=3&limit=4', 'src=10.0.0.0/8&sort=start&limit=1000'];
/** Short timeouts, so flows end inside the captures. */
const KNOBS = ['udp_timeout=10', 'tcp_timeout_syn_sent=20', 'icmp_timeout=5'].flatMap((k) => ['--sysctl', `nf_conntrack_${k}`]);

const replay = (capture: string, workers: string) => serveAndRead(['replay', capture, '--http', '127.0.0.1:0', '--linger', '300', '--top-flows', '5', '--workers', workers, ...KNOBS], QUERIES, servingFinalState);

test('replay CAPTURE --http with 2 and 3 workers serves at its end what one thread serves', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-replay-serve-'));
  const randoms = fc.sample(captureArb, { seed: 17, numRuns: 2 }).map((pcap, k) => {
    const path = join(dir, `random${k}.pcap`);
    writeFileSync(path, pcap);
    return path;
  });
  for (const capture of [SAMPLE, ...randoms]) {
    const one = await replay(capture, '1');
    expect((one.stats as { entries: number }).entries).toBeGreaterThan(0);
    expect(one.metrics.filter((l) => /^ctflow_(packets_total|state_transitions_total|nf_conntrack_entries|top_flow_bytes)\{/.test(l)).length).toBeGreaterThan(4);
    for (const workers of ['2', '3']) expect({ capture, ...(await replay(capture, workers)) }).toEqual({ capture, ...one });
  }
  // The sample's filters each pick some of its flows, so the pages compared are not all empty or all full.
  const sample = await replay(SAMPLE, '2');
  for (const page of sample.flows.slice(1, 5)) expect(page.total).toBeGreaterThan(0);
  for (const page of sample.flows.slice(1, 5)) expect(page.total).toBeLessThan(sample.flows[0].total);
}, 240_000);

test('replay CAPTURE --workers refuses --speed with a reason: shares cannot be paced', async () => {
  const r = await runCliAsync('replay', SAMPLE, '--http', '127.0.0.1:0', '--speed', '10', '--workers', '2');
  expect(r.code).toBe(1);
  expect(r.err.join('\n')).toMatch(/--speed: the shares of --workers .* cannot be paced/);
});
