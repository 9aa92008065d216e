/**
 * replay CAPTURE --http/--otlp --workers N: what one share of the capture would have told the
 * telemetry of its packets and flows, counted in the share's thread and sent back once as totals
 * (TelemetryCounts) instead of a sample per packet. A flow lives in one share, so its transitions
 * are followed whole there, and the shares' totals add up to one engine's.
 */
import type { CapturedPacket } from '../../processors/packet';
import type { FlowEvent } from '../../processors/flow';
import type { PacketVerdict } from '../../processors/pipeline';
import type { PacketSample } from '../../sinks/telemetry/observer';
import { AwaitingVerdict } from '../../processors/awaitingVerdict';
import { PipelineTelemetry } from '../../sinks/telemetry/telemetry';
import type { TelemetryCounts } from '../../sinks/telemetry/telemetry';
import { REPLAY_PARTITION, sampleOf } from '../observedReplay';

export class ShareTelemetry {
  private readonly telemetry = new PipelineTelemetry();
  /** The share's own packets whose verdict has not come out (a held fragment's comes later). */
  private readonly awaiting = new AwaitingVerdict<CapturedPacket>();
  private readonly sample: PacketSample = { zone: 0, proto: 0, bytes: 0, ctstate: 'NEW', dir: null };

  constructor(private readonly zoneOf?: (p: CapturedPacket) => number) {}

  /** Called just before the share pushes its own packet `p`: the push of the one before is over by then. */
  own(p: CapturedPacket): void {
    this.awaiting.pushed();
    this.awaiting.pushing(p.index, p);
  }

  verdict(v: PacketVerdict): void {
    const p = this.awaiting.take(v.index);
    if (!p) return;
    this.telemetry.packet(sampleOf(this.sample, p, v, this.zoneOf));
  }

  event(e: FlowEvent): void {
    this.telemetry.events(REPLAY_PARTITION, [e]);
  }

  counts(): TelemetryCounts {
    return this.telemetry.counts();
  }
}
