/**
 * report with --workers: each share replays its flows and sends back what the report collector
 * is fed (its verdicts with the few packet fields the report keeps, its events, each with its
 * place in one engine's output), then its final table and counters. The main thread feeds one
 * ReportCollector (sinks/report/collect.ts) the shares' verdicts and events interleaved exactly as
 * a single pipeline emits them, so the report is the one a single thread writes: the collector's
 * string tables, flow rows, time buckets and transition counts all follow that order.
 */
import type { CtStats, FlowEvent, FlowRecord } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ReadSummary } from '../../ingest/packetSource';
import type { ReportCollector, RunEnd } from '../../sinks/report/collect';
import { replayShare } from './shareReplay';
import type { ShareSetup } from './shareReplay';

export interface ReportShareJob {
  job: 'report';
  /** The knobs, already shared out (shareSysctl). */
  sysctl: Record<string, number>;
}

export interface ReportShareResult {
  summary: ReadSummary;
  /** This share's verdicts, in packet order. */
  verdicts: PacketVerdict[];
  /** Per verdict: the packet the share was at when it came out (ShareSink.verdict), its packet's IP length and TCP flags. */
  at: Int32Array;
  length: Int32Array;
  tcpFlags: Uint8Array;
  /** This share's events as it emitted them, and per event its packet index and phase (ShareSink.event). */
  events: FlowEvent[];
  eventIndex: Int32Array;
  eventPhase: Uint8Array;
  /** The share's table after the last packet, oldest first, and its counters. */
  flows: FlowRecord[];
  count: number;
  stats: CtStats;
  untracked: number;
  limitReached: boolean;
}

export function reportShare(bytes: Uint8Array, setup: ShareSetup, job: ReportShareJob): ReportShareResult {
  const verdicts: PacketVerdict[] = [];
  const at: number[] = [];
  // The share's packets as read, in index order; verdicts come out in the same order.
  const packetIndex: number[] = [];
  const packetLength: number[] = [];
  const packetFlags: number[] = [];
  const events: FlowEvent[] = [];
  const eventIndex: number[] = [];
  const eventPhase: number[] = [];
  const run = replayShare(bytes, setup, job.sysctl, {
    own: (p) => {
      packetIndex.push(p.index);
      packetLength.push(p.ip.length);
      packetFlags.push(p.ip.l4?.kind === 'tcp' ? p.ip.l4.flags : 0);
    },
    verdict: (v, place) => {
      if (packetIndex[verdicts.length] !== v.index) throw new Error(`report share ${setup.worker}: a verdict on packet ${v.index}, out of order`);
      verdicts.push(v);
      at.push(place);
    },
    event: (e, index, phase) => {
      events.push(e);
      eventIndex.push(index);
      eventPhase.push(phase);
    },
  });
  const engine = run.engine;
  return {
    summary: run.summary,
    verdicts,
    at: Int32Array.from(at),
    length: Int32Array.from(packetLength),
    tcpFlags: Uint8Array.from(packetFlags),
    events,
    eventIndex: Int32Array.from(eventIndex),
    eventPhase: Uint8Array.from(eventPhase),
    flows: engine.list(),
    count: engine.count,
    stats: engine.stats(),
    untracked: engine.untracked,
    limitReached: run.limitReached,
  };
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
  results.forEach((r, s) =>
    r.verdicts.forEach((v, k) => {
      if (shareOf[v.index] !== -1) throw new Error(`report: packet ${v.index} judged by two shares`);
      shareOf[v.index] = s;
      posOf[v.index] = k;
    }),
  );
  const order: Array<[number, number]> = [];
  results.forEach((r, s) => r.events.forEach((_, k) => order.push([s, k])));
  const indexOf = ([s, k]: [number, number]): number => results[s].eventIndex[k];
  // Stable: a share's events at the same place keep the order it emitted them in.
  order.sort((x, y) => {
    const a = results[x[0]];
    const b = results[y[0]];
    const phase = a.eventPhase[x[1]];
    return (
      a.eventIndex[x[1]] - b.eventIndex[y[1]] ||
      phase - b.eventPhase[y[1]] ||
      (phase === 0 ? a.events[x[1]].tsUs - b.events[y[1]].tsUs || a.events[x[1]].flow.id - b.events[y[1]].flow.id : 0)
    );
  });
  let next = 0;
  const eventsUpTo = (index: number): void => {
    for (; next < order.length && indexOf(order[next]) <= index; next++) {
      const [s, k] = order[next];
      collector.onEvent(results[s].events[k]);
    }
  };
  let reach = -1;
  for (let i = 0; i < packets; i++) {
    const s = shareOf[i];
    if (s < 0) throw new Error(`report: no share judged packet ${i}`);
    const r = results[s];
    const k = posOf[i];
    reach = Math.max(reach, r.at[k]);
    eventsUpTo(reach);
    const v = r.verdicts[k];
    // A verdict's time and frame are its packet's (ConntrackPipeline sets them from it).
    collector.onJudged(v, v.tsUs, v.frame, r.length[k], r.tcpFlags[k]);
  }
  eventsUpTo(Infinity);
  const stats = emptyStats();
  for (const r of results) for (const key of Object.keys(stats) as Array<keyof CtStats>) stats[key] += r.stats[key];
  return {
    flows: results.flatMap((r) => r.flows).sort((a, b) => a.id - b.id),
    count: results.reduce((n, r) => n + r.count, 0),
    stats,
    untracked: results.reduce((n, r) => n + r.untracked, 0),
    summary,
    packets,
  };
}
