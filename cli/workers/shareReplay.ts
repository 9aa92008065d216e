/**
 * One share's replay for the commands whose shares each run to the end before anything is merged
 * (whatif and report: shareJobs.ts): the share's engine (sharePipeline.ts) over the whole capture
 * in one go.
 */
import type { ConntrackEngine } from '../../processors/conntrack/engine';
import type { ReadSummary } from '../../ingest/packetSource';
import { SharePipeline } from './sharePipeline';
import type { ShareOf, ShareSink } from './sharePipeline';

/** What every share of a run is given, whatever its job. */
export interface ShareSetup extends ShareOf {
  /** The capture's bytes, shared by all shares (never copied per worker). */
  capture: SharedArrayBuffer;
}

export interface ShareRun {
  engine: ConntrackEngine;
  summary: ReadSummary;
  /** Whether the share's table or expectation table reached its part of the limit (reachedShareLimit). */
  limitReached: boolean;
}

/** Replays the whole capture as share `setup.worker` of `setup.workers`, with these knobs (already shared out: shareSysctl). */
export function replayShare(bytes: Uint8Array, setup: ShareSetup, sysctl: Record<string, number>, sink: ShareSink): ShareRun {
  const share = new SharePipeline(bytes, setup, sysctl, sink);
  share.read();
  return { engine: share.engine, summary: share.summary, limitReached: share.limitReached };
}
