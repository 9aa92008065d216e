/**
 * The commands whose shares each run to the end and hand back one result for the main thread to
 * merge (whatif: whatIfShare.ts; report: reportShare.ts), rather than streaming lines as they go
 * (captureWorkers.ts): whatif compares two whole runs, and the report is built from everything.
 * runShareJob() is what one share does, in a worker thread (shareJobWorker.ts) or, for share 0,
 * in the main thread; runShares() starts them and gathers their results in share order.
 */
import { openCapture } from '../../ingest/capture/reader';
import type { ZoneFlags } from '../zoneOptions';
import { sharedCapture, startWorker } from './captureWorkers';
import { reportShare } from './reportShare';
import type { ReportShareJob, ReportShareResult } from './reportShare';
import type { ShareSetup } from './shareReplay';
import type { TopicShareInput } from './topicShare';
import { whatIfShare } from './whatIfShare';
import type { WhatIfShareJob, WhatIfShareResult } from './whatIfShare';

export type ShareJob = WhatIfShareJob | ReportShareJob;
export type ShareResultOf<J extends ShareJob> = J extends WhatIfShareJob ? WhatIfShareResult : ReportShareResult;
export type ShareTask = ShareSetup & ShareJob;

export function runShareJob(task: ShareTask, bytes: Uint8Array): WhatIfShareResult | ReportShareResult {
  return task.job === 'whatif' ? whatIfShare(bytes, task, task) : reportShare(bytes, task, task);
}

export interface ShareRunOptions {
  workers: number;
  notrack?: string[];
  helper?: string[];
  zones?: ZoneFlags;
}

/** Runs `job` in `o.workers` shares of the capture (or topic window): share 0 here, the others in worker threads. */
export async function runShares<J extends ShareJob>(source: Uint8Array | TopicShareInput, o: ShareRunOptions, job: J): Promise<Array<ShareResultOf<J>>> {
  const topic = source instanceof Uint8Array ? undefined : source;
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(0);
  if (!topic) openCapture(bytes); // a file that is no capture fails here, once, not in every worker
  const capture = sharedCapture(bytes);
  const task = (worker: number): ShareTask => ({ capture, worker, workers: o.workers, notrack: o.notrack ?? [], helper: o.helper ?? [], zones: o.zones ?? {}, topic, ...job });
  const results: unknown[] = [];
  const workers = Array.from({ length: o.workers - 1 }, (_, k) => startWorker(task(k + 1), 'shareJobWorker'));
  const finished = Promise.all(
    workers.map(
      (w, k) =>
        new Promise<void>((resolve, reject) => {
          w.once('message', (m: unknown) => (results[k + 1] = m));
          w.once('error', reject);
          w.once('exit', (code) => (code === 0 && results[k + 1] !== undefined ? resolve() : reject(new Error(`worker ${k + 1} exited with code ${code}`))));
        }),
    ),
  );
  finished.catch(() => undefined); // awaited below; if share 0 fails first, its error is the one reported
  try {
    // The workers run meanwhile: their results wait in the message queue until this is done.
    results[0] = runShareJob(task(0), bytes);
    await finished;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results as Array<ShareResultOf<J>>;
}
