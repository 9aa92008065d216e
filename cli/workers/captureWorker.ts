/**
 * A capture worker thread: runs one share of the capture (captureShare.ts) to the end, posting
 * each chunk of output as it is made (its typed arrays and line bytes transferred, not copied),
 * then the counters.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CaptureShare } from './captureShare';
import type { CaptureWorkerTask } from './protocol';
import { transferOf } from './lineBatch';

function run(task: CaptureWorkerTask): void {
  const share = new CaptureShare(task, new Uint8Array(task.capture));
  while (!share.done) {
    const chunk = share.step();
    parentPort!.postMessage(chunk, [chunk.verdictIndex.buffer as ArrayBuffer, chunk.eventPlaces.buffer as ArrayBuffer, ...transferOf(chunk.verdicts), ...transferOf(chunk.events)]);
  }
  parentPort!.postMessage(share.result());
}

run(workerData as CaptureWorkerTask);
