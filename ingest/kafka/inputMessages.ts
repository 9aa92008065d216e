/**
 * One input message in, packets out: the captured-traffic and packet-events topics decoded
 * into what the engine takes. Nothing is dropped silently: a message that does not parse, or a
 * frame in it whose headers are broken, is handed to `dead` with the reason; frames that carry
 * no IP (ARP, LLDP) are counted by `skipped`, as `ctflow replay` counts them in a capture.
 */
import type { CapturedPacket } from '../../processors/packet';
import type { ZoneOf } from '../../processors/zones';
import type { InputMessage } from '../../kafka/client';
import { decodeFrame } from '../decode/index';
import { decodeCapturedTraffic, messageZone, TopicFormatError } from './capturedTraffic';
import { decodePacketEvent } from './packetEvents';

export type InputKind = 'captured-traffic' | 'packet-events';

/** A decoded packet from a topic: numbered later, by the partition's processor. */
export type TopicPacket = Omit<CapturedPacket, 'index'> & { zone?: number };

export interface InputHandlers {
  packet(p: TopicPacket): void;
  /** `part` is set when one frame of a batch is bad and the rest of the message is fine. */
  dead(reason: string, part?: { frame: number; bytes: Uint8Array }): void;
  skipped(reason: string): void;
}

/** Without a zone policy: the zone the message carries (packet event field, else header), else 0. */
const carriedZone: ZoneOf = (_p, carried) => carried ?? 0;

/**
 * Decodes one message and gives each packet its zone: `zoneOf` (processors/zones.ts) sees the
 * frame's interface and VLAN and the zone the message carries (a packet event's own `zone`
 * field, else the `ctflow-zone` header).
 */
export function decodeInputMessage(kind: InputKind, msg: InputMessage, h: InputHandlers, zoneOf: ZoneOf = carriedZone): void {
  if (msg.value === null) {
    h.dead('message has no value (a tombstone) on an input topic');
    return;
  }
  try {
    const headerZone = messageZone(msg.headers);
    if (kind === 'packet-events') {
      const e = decodePacketEvent(msg.value, msg.timestampMs);
      const p: TopicPacket = { frame: 0, tsUs: e.tsUs, interfaceId: 0, ip: e.ip };
      p.zone = zoneOf(p, e.zone ?? headerZone);
      h.packet(p);
      return;
    }
    const frames = decodeCapturedTraffic(msg.value, msg.headers, msg.timestampMs);
    // One argument object for the message's frames: decodeFrame copies what it keeps out of it.
    const arg = { frame: 0, tsUs: 0, linkType: 0, interfaceId: 0, data: msg.value as Uint8Array };
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      arg.frame = i;
      arg.tsUs = f.tsUs;
      arg.linkType = f.linkType;
      arg.interfaceId = f.interfaceId;
      arg.data = f.data;
      const r = decodeFrame(arg);
      if (r.kind === 'ip') {
        const p: TopicPacket = r.packet;
        p.zone = zoneOf(p, headerZone);
        h.packet(p);
      } else if (r.kind === 'not-ip') h.skipped(r.reason);
      else h.dead(r.reason, { frame: i, bytes: f.data });
    }
  } catch (err) {
    if (err instanceof TopicFormatError) h.dead(err.message);
    else throw err;
  }
}
