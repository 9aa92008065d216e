/**
 * A capture replay that reports to a PipelineObserver as it goes, for `ctflow replay --http`:
 * the capture is one partition (0) whose messages are its frames, cut into batches of
 * `batchPackets` IP packets. Between batches it yields to the event loop, so the HTTP server
 * answers scrapes and API calls while the replay runs.
 *
 * It is runCapture's loop with the packet in hand at verdict time (zone, protocol and length are
 * on the packet, not on the verdict), which is what the traffic metrics are labelled by.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { readPackets } from '../ingest/packetSource';
import type { FlowEvent } from '../processors/flow';
import type { CapturedPacket } from '../processors/packet';
import { ConntrackPipeline } from '../processors/pipeline';
import type { PipelineObserver, PacketSample } from '../sinks/telemetry/observer';
import { CliError } from './runCapture';
import type { RunOptions, RunResult } from './runCapture';

export const REPLAY_PARTITION = 0;

export interface ObservedRunOptions extends RunOptions {
  observer: PipelineObserver;
  /** IP packets per batch (default 4096). */
  batchPackets?: number;
}

export async function runCaptureObserved(bytes: Uint8Array, o: ObservedRunOptions): Promise<RunResult> {
  const obs = o.observer;
  const waiting = new Map<number, CapturedPacket>();
  const sample: PacketSample = { zone: 0, proto: 0, bytes: 0, ctstate: 'NEW', dir: null };
  let events: FlowEvent[] = [];
  const pipeline = new ConntrackPipeline(
    {
      verdict: (v) => {
        o.onVerdict?.(v);
        const p = waiting.get(v.index);
        waiting.delete(v.index);
        if (!p) return;
        sample.proto = p.ip.proto;
        sample.bytes = p.ip.length;
        sample.ctstate = v.ctstate;
        sample.dir = v.dir;
        sample.reason = v.reason;
        obs.packet(sample);
      },
      event: (e) => {
        o.onEvent?.(e);
        events.push(e);
      },
    },
    { sysctl: o.sysctl, shards: o.shards },
  );
  obs.table(REPLAY_PARTITION, pipeline.engine);
  let stream;
  try {
    stream = readPackets(bytes, { onMalformed: (_frame, reason) => obs.deadLetter(REPLAY_PARTITION, reason) });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const every = o.batchPackets ?? 4096;
  let packets = 0;
  let batchPackets = 0;
  let batchFrames = 0;
  let started = process.hrtime.bigint();
  const endBatch = (last: boolean): void => {
    if (events.length) obs.events(REPLAY_PARTITION, events);
    events = [];
    const frames = stream.summary.frames;
    obs.batch({
      partition: REPLAY_PARTITION,
      messages: frames - batchFrames,
      packets: batchPackets,
      processingSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      nextOffset: String(frames),
      // Only at the end is the capture's length known; the replay has then read all of it.
      highWatermark: last ? String(frames) : undefined,
      packetClockUs: pipeline.engine.clockUs,
    });
    batchFrames = frames;
    batchPackets = 0;
  };
  for (const p of stream) {
    waiting.set(p.index, p);
    pipeline.push(p);
    packets++;
    batchPackets++;
    if (o.onProgress && (packets & 4095) === 0) o.onProgress(packets);
    if (batchPackets === every) {
      endBatch(false);
      await nextTurn();
      started = process.hrtime.bigint();
    }
  }
  pipeline.end();
  endBatch(true);
  return { engine: pipeline.engine, summary: stream.summary, packets };
}
