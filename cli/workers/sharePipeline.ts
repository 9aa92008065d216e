/**
 * One share's engine over a capture split N ways, whatever it then does with the output: the
 * packets of its own flows decoded and pushed through its ConntrackPipeline, the others' only
 * moving its clock (ownedPackets.ts), so its verdicts, events and table are exactly its part of a
 * single engine's. Each verdict and event is handed on with the packet the share was at when it
 * came out (see ShareSink). Streaming shares (captureShare.ts) read it a chunk at a time; shares
 * that run to the end before anything is merged (shareReplay.ts) read it in one go.
 */
import type { CtStats, FlowEvent } from '../../processors/flow';
import type { CapturedPacket } from '../../processors/packet';
import { ConntrackPipeline } from '../../processors/pipeline';
import type { PacketVerdict } from '../../processors/pipeline';
import type { ConntrackEngine } from '../../processors/conntrack/engine';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import type { ReadSummary } from '../../ingest/packetSource';
import { parseRuleOptions } from '../rules';
import { captureZoneOf } from '../zoneOptions';
import type { ZoneFlags } from '../zoneOptions';
import { OwnedPacketReader } from './ownedPackets';
import type { OwnedPacketSink } from './ownedPackets';
import { OwnedTopicPacketReader } from './topicShare';
import type { TopicShareInput } from './topicShare';
import type { ZonedCapturedPacket } from '../../ingest/kafka/mergedFrames';

/** Which share this is, and the --notrack, --helper and --zone-* options as given (each share parses them). */
export interface ShareOf {
  worker: number;
  workers: number;
  notrack: string[];
  helper: string[];
  zones: ZoneFlags;
  /** A topic window to read instead of the capture (its zones come with its packets: `zones` is not used). */
  topic?: TopicShareInput;
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

/**
 * Whether a run's table or expectation table reached a share's part of its limit (its stats
 * summed over the shares, and the verdicts refused for a full expectation table): which entries
 * were evicted may then differ from one engine's.
 */
export function reachedShareLimit(stats: CtStats, expectTableFull: number): boolean {
  return stats.early_drop + stats.drop > 0 || expectTableFull > 0;
}

export class SharePipeline {
  private readonly pipeline: ConntrackPipeline;
  private readonly reader: OwnedPacketReader | OwnedTopicPacketReader;
  /** The packet being read: verdicts and events come out at it. */
  private current = 0;
  /** Verdicts refused because the expectation table was full. */
  expectTableFull = 0;
  private ended = false;

  /** `sysctl`: this share's knobs, already shared out (captureWorkers.ts's shareSysctl). */
  constructor(bytes: Uint8Array, share: ShareOf, sysctl: Record<string, number>, sink: ShareSink) {
    const captureZones = share.topic ? undefined : captureZoneOf(share.zones);
    // A topic's packets carry the zone their message decided (its header, interface, VLAN or topic).
    const zoneOf = share.topic ? (p: CapturedPacket) => (p as ZonedCapturedPacket).zone : captureZones;
    const pipeline = new ConntrackPipeline(
      {
        verdict: (v) => {
          if (v.reason?.endsWith('_expectation_table_full')) this.expectTableFull++;
          sink.verdict(v, this.current);
        },
        // An engine event caused by no packet is an expiry found while the clock moved.
        event: (e) => sink.event(e, this.current, e.packetIndex === undefined ? 0 : 1),
      },
      { sysctl: makeSysctl(sysctl), shards: 1, rules: parseRuleOptions({ notrack: share.notrack, helper: share.helper }), zoneOf },
    );
    this.pipeline = pipeline;
    const packets: OwnedPacketSink = {
      own: (p) => {
        this.current = p.index;
        sink.own?.(p);
        pipeline.push(p);
      },
      foreign: (index, tsUs) => {
        this.current = index;
        pipeline.tick(index, tsUs);
      },
    };
    this.reader = share.topic ? new OwnedTopicPacketReader(share.topic, share, packets) : new OwnedPacketReader(bytes, { worker: share.worker, workers: share.workers, zoneOf: captureZones }, packets);
  }

  get engine(): ConntrackEngine {
    return this.pipeline.engine;
  }

  /** What the reader has found so far (final once ended). */
  get summary(): ReadSummary {
    return this.reader.summary;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Reads at least `frames` more frames; at the end of the capture it ends the pipeline (held fragments get their verdicts). */
  read(frames = Infinity): void {
    if (this.ended || this.reader.read(frames)) return;
    this.current = this.reader.summary.ipPackets;
    this.pipeline.end();
    this.ended = true;
  }

  get limitReached(): boolean {
    return reachedShareLimit(this.engine.stats(), this.expectTableFull);
  }
}
