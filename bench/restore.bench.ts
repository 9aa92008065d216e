/**
 * `npm run bench:restore`: the state changelog (processors/stream/stateChangelog.ts) at a million
 * flows. A PartitionProcessor with trackState is filled with 500k TCP and 500k UDP flows (the
 * engine bench's traffic, events on as a partition runs); then the first stateChanges() (every
 * entry is new: the whole table) is timed and its bytes counted, the records compacted, and
 * PartitionProcessor.restore timed. Then the per-packet cost: push() over the flows' data packets
 * with trackState off and on (on: stateChanges() every COMMIT_EVERY packets, as a consumer would
 * at each transaction). Medians of BENCH_RUNS runs (default 3), slowest and fastest in brackets.
 */
import { workload } from './traffic';
import type { Workload } from './traffic';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { PartitionProcessor } from '../processors/stream/partitionProcessor';
import type { PartitionProcessorOptions, ZonedPacket } from '../processors/stream/partitionProcessor';
import { compact } from '../processors/stream/stateChangelog';
import type { StateRecord } from '../processors/stream/stateChangelog';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FLOWS = Number(process.env.BENCH_FLOWS ?? 1_000_000);
const COMMIT_EVERY = 10_000;
const FIRST_US = 1_700_000_000_000_000;

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[], f: (n: number) => string): string => `${f(median(xs))} (runs ${f(Math.min(...xs))}-${f(Math.max(...xs))})`;
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

const opts = (trackState: boolean): PartitionProcessorOptions => ({
  sysctl: makeSysctl({ nf_conntrack_max: 2 * FLOWS }),
  activeTimeoutUs: 0,
  verdicts: false,
  trackState,
});

/** Packet k of a workload as a partition receives it, at its own time. */
function zoned(w: Workload, k: number, tsUs: number): ZonedPacket {
  return { frame: k, tsUs, interfaceId: 0, ip: w.packets.decoded(k) };
}

const loads = [workload('tcp', FLOWS / 2), workload('udp', FLOWS / 2)];

/** Pushes packets [from, to) of every workload, one time tick each; returns the clock. */
function push(proc: PartitionProcessor, range: (w: Workload) => [number, number], t: number, each?: (n: number) => void): number {
  let n = 0;
  for (const w of loads) {
    const [from, to] = range(w);
    for (let k = from; k < to; k++) {
      proc.push(zoned(w, k, (t += 1)));
      if ((++n & 4095) === 0) proc.drain();
      each?.(n);
    }
  }
  proc.drain();
  return t;
}

const dumpMs: number[] = [], restoreMs: number[] = [], compactMs: number[] = [], bytesPerEntry: number[] = [];
let totalMb = 0;
for (let r = 0; r < RUNS; r++) {
  gc();
  const proc = new PartitionProcessor(opts(true));
  push(proc, (w) => [0, w.packets.length], FIRST_US);
  let start = process.hrtime.bigint();
  const records: StateRecord[] = proc.stateChanges();
  dumpMs.push(ms(start));
  let bytes = 0;
  for (const rec of records) bytes += rec.key.length + (rec.value?.length ?? 0);
  bytesPerEntry.push(bytes / proc.engine.count);
  totalMb = bytes / 1e6;
  start = process.hrtime.bigint();
  const latest = compact(records);
  compactMs.push(ms(start));
  start = process.hrtime.bigint();
  const restored = PartitionProcessor.restore(opts(true), latest);
  restoreMs.push(ms(start));
  if (restored.engine.count !== proc.engine.count) throw new Error(`restored ${restored.engine.count} of ${proc.engine.count} entries`);
}

const perMillion = (x: number): string => `${((x * 1e6) / FLOWS / 1000).toFixed(2)} s`;
console.log(`ctflow state changelog bench (node ${process.version}, ${FLOWS.toLocaleString('en-US')} flows: half TCP, half UDP; median of ${RUNS} runs)`);
console.log(`stateChanges() of the whole table: ${spread(dumpMs, (x) => `${Math.round(x)} ms`)}, ${totalMb.toFixed(0)} MB, ${spread(bytesPerEntry, (x) => x.toFixed(1))} bytes per entry (key and value)`);
console.log(`compact(): ${spread(compactMs, (x) => `${Math.round(x)} ms`)}`);
console.log(`PartitionProcessor.restore(): ${spread(restoreMs, perMillion)} per million entries`);

// Per-packet cost of tracking: the flows' data packets again, on a filled processor, off then on.
const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let r = 0; r < RUNS; r++) {
  for (const mode of ['off', 'on'] as const) {
    gc();
    const proc = new PartitionProcessor(opts(mode === 'on'));
    let t = push(proc, (w) => [0, w.timedFrom], FIRST_US);
    if (mode === 'on') proc.stateChanges();
    gc();
    const start = process.hrtime.bigint();
    let packets = 0;
    t = push(proc, (w) => [w.timedFrom, w.packets.length], t, (n) => {
      packets = n;
      if (mode === 'on' && n % COMMIT_EVERY === 0) proc.stateChanges();
    });
    if (mode === 'on') proc.stateChanges();
    rates[mode].push(packets / (ms(start) / 1000));
  }
}
const rate = (x: number): string => `${Math.round(x).toLocaleString('en-US')}/s`;
console.log(`push(), data packets of ${FLOWS.toLocaleString('en-US')} flows, trackState off: ${spread(rates.off, rate)}`);
console.log(`push(), same, trackState on with stateChanges() every ${COMMIT_EVERY.toLocaleString('en-US')} packets: ${spread(rates.on, rate)}`);
console.log(`on / off: ${(median(rates.on) / median(rates.off)).toFixed(2)}`);
