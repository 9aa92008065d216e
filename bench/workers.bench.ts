/**
 * `npm run bench:workers`: `ctflow events --json` and `classify` on one synthetic capture (TCP
 * handshakes, then a data segment and its ACK per flow; WORKERS_FLOWS flows, default 200 000, so
 * 1M packets), in one thread and with 2 (and WORKERS_MAX, default the machine's cores) worker
 * threads: wall time from capture bytes to the last output line, median of BENCH_RUNS runs
 * (default 3) with the slowest and fastest, and the speed-up over one thread; the thread counts
 * run in turn within each round. Also the process's CPU time (all threads: what the split costs
 * in total) and the machine's load average, since other work on it moves the wall times. The
 * lines are counted, not printed, and each run's lines are checked equal to one thread's.
 * Then `ctflow whatif` (the capture replayed with the knobs below and with WHATIF_CHANGE added)
 * in one thread and in 2 shares, its report checked equal to one thread's. WORKERS_KINDS (default
 * events,classify,whatif) picks which are timed.
 */
import { availableParallelism, loadavg } from 'node:os';
import { runCapture } from '../cli/runCapture';
import { runCaptureInWorkers } from '../cli/workers/captureWorkers';
import { whatIf } from '../cli/whatif';
import { whatIfInShares } from '../cli/workerCommands';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { eventJson, verdictJson } from '../sinks/jsonRecords';
import { workload } from './traffic';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FLOWS = Number(process.env.WORKERS_FLOWS ?? 200_000);
const MAX = Number(process.env.WORKERS_MAX ?? Math.max(2, availableParallelism()));

const w = workload('tcp', FLOWS);
const pcap = w.packets.pcap(1_700_000_000_000_000);
const sysctl = makeSysctl({ nf_conntrack_max: 4 * FLOWS });
/** whatif's other run: established entries expire at once (every flow's data segment then comes to no entry, and without loose pickup is INVALID). */
const changed = makeSysctl({ nf_conntrack_max: 4 * FLOWS, nf_conntrack_tcp_timeout_established: Number(process.env.WHATIF_ESTABLISHED ?? 0), nf_conntrack_tcp_loose: 0 });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A digest of the lines (length-weighted sum of char codes): equal outputs, equal digests. */
function digest(): { add(line: string): void; value(): number } {
  let h = 0;
  let n = 0;
  return {
    add(line) {
      n++;
      for (let i = 0; i < line.length; i += 7) h = (h * 31 + line.charCodeAt(i)) | 0;
    },
    value: () => h ^ n,
  };
}

type Kind = 'events' | 'classify' | 'whatif';

async function timed(kind: Kind, workers: number): Promise<{ seconds: number; cpu: number; digest: number }> {
  const d = digest();
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  if (kind === 'whatif') {
    const report = workers === 1 ? whatIf(pcap, sysctl, changed, 1) : await whatIfInShares(pcap, sysctl, changed, { workers: String(workers), sysctl: [], shards: '1' }, { out: () => undefined, err: (l) => console.error(l) });
    whatIfChanges = `${report.verdictChanges.length} verdict and ${report.flowChanges.length} fate changes`;
    d.add(JSON.stringify(report));
  } else if (workers === 1) {
    runCapture(pcap, {
      sysctl,
      shards: 1,
      ...(kind === 'events' ? { onEvent: (e) => d.add(JSON.stringify(eventJson(e))) } : { onVerdict: (v) => d.add(JSON.stringify(verdictJson(v))) }),
    });
  } else {
    await runCaptureInWorkers(pcap, { sysctl, workers, ...(kind === 'events' ? { events: 'json' as const, onEventLine: d.add } : { onVerdictLine: d.add }) });
  }
  const used = process.cpuUsage(cpu);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpu: (used.user + used.system) / 1e6, digest: d.value() };
}

let whatIfChanges = '';
/** WORKERS_KINDS=whatif (comma-separated) times only those. */
const KINDS = (process.env.WORKERS_KINDS ?? 'events,classify,whatif').split(',') as Kind[];

async function main(): Promise<void> {
  console.log(`ctflow bench: worker threads (node ${process.version}, ${w.packets.length.toLocaleString('en-US')} packets, ${FLOWS.toLocaleString('en-US')} TCP flows, ${availableParallelism()} cores, median of ${RUNS})`);
  for (const kind of KINDS) {
    // whatif replays twice: one and two threads only.
    const counts = kind === 'whatif' ? [1, 2] : [...new Set([1, 2, MAX])];
    // The thread counts take turns within each round, so that a change in the machine's load
    // (it is shared) falls on all of them rather than on one.
    const runs = new Map(counts.map((n) => [n, [] as Array<{ seconds: number; cpu: number }>]));
    const loads: number[] = [];
    let reference: number | undefined;
    for (let r = 0; r < RUNS; r++) {
      for (const workers of counts) {
        const t = await timed(kind, workers);
        reference ??= t.digest;
        if (t.digest !== reference) throw new Error(`${kind} with ${workers} workers printed other lines than one thread`);
        runs.get(workers)!.push(t);
        loads.push(loadavg()[0]);
      }
    }
    const base = median(runs.get(1)!.map((t) => t.seconds));
    for (const workers of counts) {
      const s = runs.get(workers)!.map((t) => t.seconds).sort((a, b) => a - b);
      const m = median(s);
      const cpu = median(runs.get(workers)!.map((t) => t.cpu));
      console.log(`${kind === 'whatif' ? `whatif (${whatIfChanges})` : `${kind} --json`}, ${workers} thread(s): ${m.toFixed(2)} s (runs ${s[0].toFixed(2)}-${s[s.length - 1].toFixed(2)}), ${Math.round(w.packets.length / m).toLocaleString('en-US')} packets/s, x${(base / m).toFixed(2)}; CPU ${cpu.toFixed(2)} s (process, all threads)`);
    }
    console.log(`${kind}: 1-minute load average after each run ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} on ${availableParallelism()} cores`);
  }
}

void main();
