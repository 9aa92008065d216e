/**
 * `npm run bench`: packets/s on one core through the engine on decoded packets (UDP and TCP, 100k
 * and 1M tracked flows; process() per packet, and with prefetch() per group of packets), the
 * same workloads from raw capture bytes (decode + engine + events; push(), pushAll() and the
 * commands' CaptureRun),
 * a real capture replayed, and the memory each tracked flow costs (JS heap plus typed arrays, in
 * a fresh process per case). Each line gives the median of BENCH_RUNS runs (default 5) and the
 * slowest and fastest run: the machine is shared, so compare medians and mind the spread.
 * BENCH_CASES picks cases (comma-separated: decoded, capture, replay, memory; default all).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureRates, decodedRates, replayRates } from './throughput';
import { workload } from './traffic';
import type { WorkloadKind } from './traffic';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CASES = new Set((process.env.BENCH_CASES ?? 'decoded,capture,replay,memory').split(','));
const FLOWS = [100_000, 1_000_000];
const KINDS: WorkloadKind[] = ['udp', 'tcp'];
/** Packets per engine.prefetch() call in the prefetching variant (what ConntrackPipeline.pushAll uses). */
const GROUP = 16;
const LABEL = { udp: 'UDP query + answer', tcp: 'TCP data + ACK (window tracking)' };

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const short = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1e3)}k`);
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
/** "median packets/s (slowest-fastest run)". */
function summary(rates: number[]): string {
  const s = sorted(rates);
  return `${fmt(s[Math.floor(s.length / 2)])} packets/s per core (runs ${short(s[0])}-${short(s[s.length - 1])})`;
}

/** Memory per flow, each case in a fresh process so nothing of an earlier case is counted. */
function bytesPerFlow(kind: WorkloadKind, flows: number): number {
  const args = ['--expose-gc', '--max-old-space-size=8192', join(__dirname, 'memory.js'), kind, String(flows)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`memory bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout).bytesPerFlow;
}

console.log(`ctflow bench (node ${process.version}, median of ${RUNS} runs, slowest-fastest in brackets)`);
for (const flows of FLOWS) {
  for (const kind of KINDS) {
    if (!CASES.has('decoded') && !CASES.has('capture')) continue;
    const w = workload(kind, flows);
    const what = `${LABEL[kind]}, ${fmt(flows)} tracked flows`;
    if (CASES.has('decoded')) {
      console.log(`engine, decoded packets, ${what}, process() per packet: ${summary(decodedRates(w, flows, RUNS, 0))}`);
      console.log(`engine, decoded packets, ${what}, prefetch() per ${GROUP} + process(): ${summary(decodedRates(w, flows, RUNS, GROUP))}`);
    }
    if (CASES.has('capture')) {
      const pcap = w.packets.pcap(1_700_000_000_000_000);
      console.log(`raw capture bytes (pcap, Ethernet), ${what}, pipeline push(): ${summary(captureRates(pcap, w.timedFrom, flows, RUNS, 'push'))}`);
      console.log(`raw capture bytes (pcap, Ethernet), ${what}, pipeline pushAll(): ${summary(captureRates(pcap, w.timedFrom, flows, RUNS, 'pushAll'))}`);
      console.log(`raw capture bytes (pcap, Ethernet), ${what}, CaptureRun (the commands' loop): ${summary(captureRates(pcap, w.timedFrom, flows, RUNS, 'runCapture'))}`);
    }
  }
}
if (CASES.has('replay')) {
  const buf = readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'sample.pcap'));
  const r = replayRates(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), 10, RUNS);
  const mb = sorted(r.map((x) => x.mbps));
  console.log(
    `raw capture bytes, sample.pcap x10 (decode + defrag + engine + events): ${summary(r.map((x) => x.pps))}, ` +
      `${mb[Math.floor(mb.length / 2)].toFixed(1)} MB/s`,
  );
}
if (CASES.has('memory')) {
  for (const flows of FLOWS) {
    for (const kind of KINDS) {
      console.log(`memory, ${fmt(flows)} ${kind.toUpperCase()} flows: ${fmt(bytesPerFlow(kind, flows))} bytes per tracked flow (JS heap + typed arrays)`);
    }
  }
}
