/**
 * One share's replay for the commands whose shares each run to the end before anything is merged
 * (whatif and report: shareJobs.ts). As a streaming share (captureShare.ts) does, it decodes and
 * judges the packets of its own flows and only moves the clock on the others', so its verdicts,
 * events and table are exactly its part of a single engine's. Each verdict and event is handed on
 * with its place in the single engine's output (see ShareSink).
 */
import type { FlowEvent } from '../../processors/flow';
import type { CapturedPacket } from '../../processors/packet';
import { ConntrackPipeline } from '../../processors/pipeline';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ConntrackEngine } from '../../processors/conntrack/engine';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import type { ReadSummary } from '../../ingest/packetSource';
import { parseRuleOptions } from '../rules';
import { captureZoneOf } from '../zoneOptions';
import type { ZoneFlags } from '../zoneOptions';
import { readOwnedPackets } from './ownedPackets';

/** What every share of a run is given, whatever its job. */
export interface ShareSetup {
  /** The capture's bytes, shared by all shares (never copied per worker). */
  capture: SharedArrayBuffer;
  worker: number;
  workers: number;
  /** The --notrack and --helper rules and --zone-* options as given (each share parses them). */
  notrack: string[];
  helper: string[];
  zones: ZoneFlags;
}

export interface ShareSink {
  /**
   * A verdict on one of this share's packets, and the packet the share was at when it came out.
   * A single pipeline lets a verdict out at the packet that resolved it and every verdict before
   * it (a held fragment holds back all that follow), right after that packet's events; each share
   * resolves its own packets at the same packet a single engine does, so the single engine lets
   * verdict i out at the largest `at` of the verdicts up to i, whichever shares gave them.
   */
  verdict(v: PacketVerdict, at: number): void;
  /** An event at packet `index`: phase 0 an expiry found as the clock moved there, 1 caused by it (as protocol.ts's EventLine). */
  event(e: FlowEvent, index: number, phase: 0 | 1): void;
  /** One of this share's packets, before it is judged. */
  own?(p: CapturedPacket): void;
}

export interface ShareRun {
  engine: ConntrackEngine;
  summary: ReadSummary;
  /** Whether the share's table or expectation table reached its part of the limit (captureWorkers.ts). */
  limitReached: boolean;
}

/** Replays the whole capture as share `setup.worker` of `setup.workers`, with these knobs (already shared out: shareSysctl). */
export function replayShare(bytes: Uint8Array, setup: ShareSetup, sysctl: Record<string, number>, sink: ShareSink): ShareRun {
  const zoneOf = captureZoneOf(setup.zones);
  let current = 0;
  let expectTableFull = 0;
  const pipeline = new ConntrackPipeline(
    {
      verdict: (v) => {
        if (v.reason?.endsWith('_expectation_table_full')) expectTableFull++;
        sink.verdict(v, current);
      },
      // An engine event caused by no packet is an expiry found while the clock moved.
      event: (e) => sink.event(e, current, e.packetIndex === undefined ? 0 : 1),
    },
    { sysctl: makeSysctl(sysctl), shards: 1, rules: parseRuleOptions({ notrack: setup.notrack, helper: setup.helper }), zoneOf },
  );
  const summary = readOwnedPackets(bytes, { worker: setup.worker, workers: setup.workers, zoneOf }, {
    own: (p) => {
      current = p.index;
      sink.own?.(p);
      pipeline.push(p);
    },
    foreign: (index, tsUs) => {
      current = index;
      pipeline.tick(index, tsUs);
    },
  });
  current = summary.ipPackets;
  pipeline.end();
  const stats = pipeline.engine.stats();
  return { engine: pipeline.engine, summary, limitReached: stats.early_drop + stats.drop > 0 || expectTableFull > 0 };
}
