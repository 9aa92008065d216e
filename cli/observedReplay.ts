/**
 * A capture replay that reports to a PipelineObserver as it goes, for `ctflow replay --http`:
 * the capture is one partition (0) whose messages are its frames, cut into batches of
 * `batchPackets` IP packets. Between batches it yields to the event loop, so the HTTP server
 * answers scrapes and API calls while the replay runs.
 *
 * With `speed` it is paced: each packet is pushed when its capture time is due at that many
 * times real time, so a short capture can be watched (and rate()d by Prometheus) as it plays.
 * The batches are then what was due between two waits.
 */
import { setTimeout as sleep, setImmediate as nextTurn } from 'node:timers/promises';
import type { FlowEvent } from '../processors/flow';
import type { CapturedPacket } from '../processors/packet';
import type { PacketVerdict } from '../processors/pipeline';
import type { PipelineObserver, PacketSample } from '../sinks/telemetry/observer';
import { CaptureRun } from './runCapture';
import type { RunOptions, RunResult } from './runCapture';

export const REPLAY_PARTITION = 0;

export interface ObservedRunOptions extends RunOptions {
  observer: PipelineObserver;
  /** IP packets per batch (default 4096). */
  batchPackets?: number;
  /** Times real time (0 or undefined: as fast as possible). */
  speed?: number;
}

/** Packets closer than this to their due time go out with the batch before: fewer, larger waits. */
const PACE_SLACK_MS = 5;

/** Maps the capture's clock onto the wall clock at `speed` times real time, from the first packet on. */
class Pace {
  private readonly startMs = Date.now();

  constructor(
    private readonly firstUs: number,
    private readonly speed: number,
  ) {}

  /** The latest packet time due by now (and the slack). */
  dueUs(): number {
    return this.firstUs + (Date.now() + PACE_SLACK_MS - this.startMs) * 1000 * this.speed;
  }

  /** Sleeps until a packet of time `us` is due. */
  async until(us: number): Promise<void> {
    const ms = this.startMs + (us - this.firstUs) / 1000 / this.speed - Date.now();
    await (ms > 0 ? sleep(ms) : nextTurn());
  }
}

/** Fills the reused `sample` with what telemetry counts of a judged packet. */
export function sampleOf(sample: PacketSample, p: CapturedPacket, v: PacketVerdict, zoneOf?: (p: CapturedPacket) => number): PacketSample {
  sample.zone = zoneOf ? zoneOf(p) : 0;
  sample.proto = p.ip.proto;
  sample.bytes = p.ip.length;
  sample.ctstate = v.ctstate;
  sample.dir = v.dir;
  sample.reason = v.reason;
  return sample;
}

export async function runCaptureObserved(bytes: Uint8Array, o: ObservedRunOptions): Promise<RunResult> {
  const obs = o.observer;
  const sample: PacketSample = { zone: 0, proto: 0, bytes: 0, ctstate: 'NEW', dir: null };
  let events: FlowEvent[] = [];
  const run = new CaptureRun(bytes, {
    ...o,
    onPacket: (p, v) => {
      o.onPacket?.(p, v);
      obs.packet(sampleOf(sample, p, v, o.zoneOf));
    },
    onEvent: (e) => {
      o.onEvent?.(e);
      events.push(e);
    },
    onMalformed: (frame, reason) => {
      o.onMalformed?.(frame, reason);
      obs.deadLetter(REPLAY_PARTITION, reason);
    },
  });
  obs.table(REPLAY_PARTITION, run.engine);
  const firstUs = o.speed ? run.nextPacketUs() : undefined;
  const pace = firstUs !== undefined ? new Pace(firstUs, o.speed!) : undefined;
  const every = o.batchPackets ?? 4096;
  let frames = 0;
  let packets = 0;
  for (;;) {
    const started = process.hrtime.bigint();
    const more = run.step(every, pace ? pace.dueUs() : Infinity);
    // A paced step may find nothing due yet: no batch, so the size histogram counts real batches only.
    if (run.frames > frames || !more) {
      if (events.length) obs.events(REPLAY_PARTITION, events);
      events = [];
      obs.batch({
        partition: REPLAY_PARTITION,
        messages: run.frames - frames,
        packets: run.packets - packets,
        processingSeconds: Number(process.hrtime.bigint() - started) / 1e9,
        nextOffset: String(run.frames),
        // Only at the end is the capture's length known; the replay has then read all of it.
        highWatermark: more ? undefined : String(run.frames),
        packetClockUs: run.engine.clockUs,
      });
      frames = run.frames;
      packets = run.packets;
    }
    if (!more) break;
    const next = pace ? run.nextPacketUs() : undefined;
    await (pace && next !== undefined ? pace.until(next) : nextTurn());
  }
  return run.result();
}
