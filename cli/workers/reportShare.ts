/**
 * report with --workers: each share replays its flows and sends back what the report collector
 * is fed (its verdicts with the few packet fields the report keeps, its events, each with its
 * place in one engine's output), then its final table and counters. The main thread feeds one
 * ReportCollector (sinks/report/collect.ts) the shares' verdicts and events interleaved exactly as
 * a single pipeline emits them, so the report is the one a single thread writes: the collector's
 * string tables, flow rows, time buckets and transition counts all follow that order.
 */
import type { CtStats } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import type { ReadSummary } from '../../ingest/packetSource';
import type { ReportCollector, RunEnd } from '../../sinks/report/collect';
import { EVENT_ID_SLOT, EVENT_SLOTS, eventAt, eventSlot, RowWriter, tableOf, VERDICT_SLOTS, verdictAt, verdictSlot } from './reportRecords';
import type { ShareRows } from './reportRecords';
import { replayShare } from './shareReplay';
import type { ShareSetup } from './shareReplay';

export interface ReportShareJob {
  job: 'report';
  /** The knobs, already shared out (shareSysctl). */
  sysctl: Record<string, number>;
}

export interface ReportShareResult {
  summary: ReadSummary;
  /** This share's verdicts (in packet order) and events (as it emitted them), with their places, and its final table: reportRecords.ts. */
  rows: ShareRows;
  /** The share's counters after the last packet. */
  count: number;
  stats: CtStats;
  untracked: number;
  limitReached: boolean;
}

export function reportShare(bytes: Uint8Array, setup: ShareSetup, job: ReportShareJob): ReportShareResult {
  const rows = new RowWriter();
  // The share's packets as read, in index order; verdicts come out in the same order.
  const packetIndex: number[] = [];
  const packetLength: number[] = [];
  const packetFlags: number[] = [];
  let verdicts = 0;
  const run = replayShare(bytes, setup, job.sysctl, {
    own: (p) => {
      packetIndex.push(p.index);
      packetLength.push(p.ip.length);
      packetFlags.push(p.ip.l4?.kind === 'tcp' ? p.ip.l4.flags : 0);
    },
    verdict: (v, at) => {
      const k = verdicts++;
      if (packetIndex[k] !== v.index) throw new Error(`report share ${setup.worker}: a verdict on packet ${v.index}, out of order`);
      rows.verdict(v, at, packetLength[k], packetFlags[k]);
    },
    event: (e, index, phase) => rows.event(e, index, phase),
  });
  const engine = run.engine;
  rows.finalTable(engine.list());
  return { summary: run.summary, rows: rows.rows(), count: engine.count, stats: engine.stats(), untracked: engine.untracked, limitReached: run.limitReached };
}

/**
 * Feeds `collector` the shares' verdicts and events in a single pipeline's order, and returns how
 * the run ended. Events go by packet, as the streaming merge orders them (captureWorkers.ts): at
 * each packet the expiries of all shares by time then entry id, then the packet's own events.
 * Verdicts go in packet order, verdict i right after the events of the packet at which a single
 * pipeline lets it out: the largest place any verdict up to i came out at (ShareSink.verdict).
 */
export function feedReport(results: readonly ReportShareResult[], collector: ReportCollector): RunEnd {
  const summary = results[0].summary;
  const packets = summary.ipPackets;
  const shareOf = new Int32Array(packets).fill(-1);
  const posOf = new Int32Array(packets);
  results.forEach((r, s) => {
    for (let k = 0; k < r.rows.verdicts.length / VERDICT_SLOTS; k++) {
      const i = verdictSlot(r.rows, k, 0);
      if (shareOf[i] !== -1) throw new Error(`report: packet ${i} judged by two shares`);
      shareOf[i] = s;
      posOf[i] = k;
    }
  });
  // Every event's place in flat arrays, and their order sorted by it; ties keep the shares' order
  // and each share's own (the order of equal places is the order they came in).
  const total = results.reduce((n, r) => n + r.rows.events.length / EVENT_SLOTS, 0);
  const index = new Float64Array(total);
  const phase = new Uint8Array(total);
  const tsUs = new Float64Array(total);
  const id = new Float64Array(total);
  const shareOfEvent = new Int32Array(total);
  const posOfEvent = new Int32Array(total);
  let n = 0;
  results.forEach((r, s) => {
    for (let k = 0; k < r.rows.events.length / EVENT_SLOTS; k++, n++) {
      index[n] = eventSlot(r.rows, k, 0);
      phase[n] = eventSlot(r.rows, k, 1);
      tsUs[n] = eventSlot(r.rows, k, 3);
      id[n] = eventSlot(r.rows, k, EVENT_ID_SLOT);
      shareOfEvent[n] = s;
      posOfEvent[n] = k;
    }
  });
  const order = new Uint32Array(total).map((_, k) => k);
  order.sort((x, y) => index[x] - index[y] || phase[x] - phase[y] || (phase[x] === 0 ? tsUs[x] - tsUs[y] || id[x] - id[y] : 0) || x - y);
  let next = 0;
  const eventsUpTo = (upTo: number): void => {
    for (; next < total && index[order[next]] <= upTo; next++) collector.onEvent(eventAt(results[shareOfEvent[order[next]]].rows, posOfEvent[order[next]]));
  };
  let reach = -1;
  for (let i = 0; i < packets; i++) {
    const s = shareOf[i];
    if (s < 0) throw new Error(`report: no share judged packet ${i}`);
    const rows = results[s].rows;
    const k = posOf[i];
    reach = Math.max(reach, verdictSlot(rows, k, 1));
    eventsUpTo(reach);
    const v = verdictAt(rows, k);
    // A verdict's time and frame are its packet's (ConntrackPipeline sets them from it).
    collector.onJudged(v, v.tsUs, v.frame, verdictSlot(rows, k, 4), verdictSlot(rows, k, 5));
  }
  eventsUpTo(Infinity);
  const stats = emptyStats();
  for (const r of results) for (const key of Object.keys(stats) as Array<keyof CtStats>) stats[key] += r.stats[key];
  return {
    flows: results.flatMap((r) => tableOf(r.rows)).sort((a, b) => a.id - b.id),
    count: results.reduce((n, r) => n + r.count, 0),
    stats,
    untracked: results.reduce((n, r) => n + r.untracked, 0),
    summary,
    packets,
  };
}
