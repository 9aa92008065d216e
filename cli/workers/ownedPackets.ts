/**
 * A capture as one worker of N reads it: the IP packets whose flows it owns (flowKeyOf % N) are
 * decoded in full; the others are only counted and timed, which is all the worker's pipeline needs
 * of them (tick()). Which frames are IP packets, their numbering and the summary of skipped frames
 * are exactly those of readPackets(): a frame the light pass (peekFlowKey) is unsure of goes
 * through the full decoder, and every worker reads every frame, so none waits on another.
 */
import { openCapture } from '../../ingest/capture/reader';
import type { Capture, CaptureFrame } from '../../ingest/capture/types';
import { peekFlowKey } from '../../ingest/decode/peek';
import { emptySummary, readFrame } from '../../ingest/packetSource';
import type { ReadSummary } from '../../ingest/packetSource';
import { flowKeyOf } from '../../processors/conntrack/engine';
import type { CapturedPacket } from '../../processors/packet';
import type { ZoneOf } from '../../processors/zones';

export interface Ownership {
  worker: number;
  workers: number;
  /** The packets' zone (--zone-*); zone 0 for all when absent. */
  zoneOf?: ZoneOf;
}

export interface OwnedPacketSink {
  /** A packet of this worker's flows, decoded and numbered as readPackets() does. */
  own(p: CapturedPacket): void;
  /** IP packet `index`, captured at `tsUs`, belongs to another worker. */
  foreign(index: number, tsUs: number): void;
}

/**
 * A capture read a stretch at a time (the main thread runs a share between merges): read() goes
 * on where the last call stopped.
 */
export class OwnedPacketReader {
  readonly summary: ReadSummary = emptySummary();
  private readonly capture: Capture;
  private readonly frames: Iterator<CaptureFrame>;
  private ended = false;

  constructor(bytes: Uint8Array, private readonly o: Ownership, private readonly sink: OwnedPacketSink) {
    this.capture = openCapture(bytes);
    this.frames = this.capture[Symbol.iterator]();
  }

  /** Reads at least `frames` more frames (or to the end); false once the capture has ended. */
  read(frames = Infinity): boolean {
    if (this.ended) return false;
    const { worker, workers, zoneOf } = this.o;
    const { summary, sink } = this;
    for (let n = 0; n < frames; n++) {
      const next = this.frames.next();
      if (next.done) {
        this.ended = true;
        if (this.capture.problem) summary.captureProblem = this.capture.problem;
        return false;
      }
      const frame = next.value;
      const key = peekFlowKey(frame, zoneOf);
      if (key >= 0 && key % workers !== worker) {
        // The light pass is sure this is an IP packet: count it as readFrame() would have.
        summary.frames++;
        sink.foreign(summary.ipPackets++, frame.tsUs);
        continue;
      }
      const p = readFrame(frame, summary);
      if (p === undefined) continue;
      if (key >= 0 || flowKeyOf(p.ip, zoneOf ? zoneOf(p) : 0) % workers === worker) sink.own(p);
      else sink.foreign(p.index, p.tsUs);
    }
    return true;
  }
}
