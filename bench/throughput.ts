/**
 * The timed cases: the engine alone on decoded packets, and the whole path from raw capture bytes
 * (pcap reader, decoder, defragmenter, engine, events) through ConntrackPipeline. Each case is run
 * `runs` times on a fresh engine; every run reports packets per second on this one thread.
 */
import { CaptureRun } from '../cli/runCapture';
import { readPackets } from '../ingest/packetSource';
import type { IpPacket } from '../processors/packet';
import type { FlowEvent } from '../processors/flow';
import { ConntrackEngine } from '../processors/conntrack/engine';
import { ConntrackPipeline } from '../processors/pipeline';
import { makeSysctl } from '../processors/conntrack/sysctl';
import type { Workload } from './traffic';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const FIRST_US = 1_700_000_000_000_000;

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * Engine packets/s on decoded packets; events off, as a pure table-lookup-and-track figure.
 * `group` 0 calls process() per packet; otherwise each group of that many packets is announced
 * with engine.prefetch() first (see there).
 */
export function decodedRates(w: Workload, flows: number, runs: number, group: number): number[] {
  const rates: number[] = [];
  const events: FlowEvent[] = [];
  const n = w.packets.length;
  for (let r = 0; r < runs; r++) {
    gc();
    const engine = new ConntrackEngine({ sysctl: makeSysctl({ nf_conntrack_max: 2 * flows, nf_conntrack_events: 0 }) });
    let t = FIRST_US;
    for (let k = 0; k < w.timedFrom; k++) engine.process(w.packets.decoded(k), (t += 1), k, events);
    // Decoded up front: the timed loop measures the engine, not the decoder.
    const timed: IpPacket[] = [];
    for (let k = w.timedFrom; k < n; k++) timed.push(w.packets.decoded(k));
    gc();
    const start = process.hrtime.bigint();
    if (group === 0) {
      for (let k = 0; k < timed.length; k++) engine.process(timed[k], (t += 1), w.timedFrom + k, events);
    } else {
      for (let from = 0; from < timed.length; from += group) {
        const to = Math.min(from + group, timed.length);
        engine.prefetch(timed, from, to);
        for (let k = from; k < to; k++) engine.process(timed[k], (t += 1), w.timedFrom + k, events);
      }
    }
    rates.push(timed.length / seconds(start));
    events.length = 0;
  }
  return rates;
}

/** How captureRates feeds the packets: push() each, pushAll(), or CaptureRun as the commands do. */
export type CaptureFeed = 'push' | 'pushAll' | 'runCapture';

/**
 * Packets/s from pcap bytes to verdicts and events (nf_conntrack_events on, sinks that discard),
 * timed over the workload's timed packets only; the set-up packets go through the same pipeline
 * first. `feed` picks the loop: push() per packet, pushAll() (prefetching groups), or the
 * commands' CaptureRun (cli/runCapture.ts, which reads ahead and prefetches the same way).
 */
export function captureRates(pcap: Uint8Array, timedFrom: number, flows: number, runs: number, feed: CaptureFeed): number[] {
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    gc();
    if (feed === 'runCapture') {
      const run = new CaptureRun(pcap, { sysctl: makeSysctl({ nf_conntrack_max: 2 * flows }), shards: 1, onVerdict: () => undefined, onEvent: () => undefined });
      run.step(timedFrom);
      const start = process.hrtime.bigint();
      run.step();
      rates.push((run.packets - timedFrom) / seconds(start));
      continue;
    }
    const pipeline = new ConntrackPipeline(
      { verdict: () => undefined, event: () => undefined },
      { sysctl: makeSysctl({ nf_conntrack_max: 2 * flows }) },
    );
    let k = 0;
    let start = process.hrtime.bigint();
    const packets = readPackets(pcap);
    if (feed === 'pushAll') {
      pipeline.pushAll(startingClock(packets, timedFrom, () => (start = process.hrtime.bigint())));
      k = packets.summary.ipPackets;
    } else {
      for (const p of packets) {
        if (k++ === timedFrom) start = process.hrtime.bigint();
        pipeline.push(p);
      }
    }
    pipeline.end();
    rates.push((k - timedFrom) / seconds(start));
  }
  return rates;
}

/** The packets unchanged; `start` is called when the one at `from` is reached. */
function* startingClock<T>(packets: Iterable<T>, from: number, start: () => void): Generator<T> {
  let k = 0;
  for (const p of packets) {
    if (k++ === from) start();
    yield p;
  }
}

/** A real capture replayed `times` over (each on a fresh pipeline, default sysctls): packets/s and MB/s. */
export function replayRates(pcap: Uint8Array, times: number, runs: number): Array<{ pps: number; mbps: number }> {
  const out: Array<{ pps: number; mbps: number }> = [];
  for (let r = 0; r < runs; r++) {
    gc();
    let packets = 0;
    const start = process.hrtime.bigint();
    for (let k = 0; k < times; k++) {
      const pipeline = new ConntrackPipeline({ verdict: () => undefined, event: () => undefined });
      for (const p of readPackets(pcap)) {
        pipeline.push(p);
        packets++;
      }
      pipeline.end();
    }
    const secs = seconds(start);
    out.push({ pps: packets / secs, mbps: (times * pcap.length) / 1e6 / secs });
  }
  return out;
}
