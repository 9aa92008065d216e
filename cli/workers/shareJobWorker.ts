/** A worker thread running one share of a whatif or report (shareJobs.ts) and posting its result. */
import { parentPort, workerData } from 'node:worker_threads';
import { runShareJob } from './shareJobs';
import type { ShareTask } from './shareJobs';

const task = workerData as ShareTask;
parentPort!.postMessage(runShareJob(task, new Uint8Array(task.capture)));
