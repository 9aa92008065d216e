/**
 * One input message in, packets out: the captured-traffic and packet-events topics decoded
 * into what the engine takes. Nothing is dropped silently: a message that does not parse, or a
 * frame in it whose headers are broken, is handed to `dead` with the reason; frames that carry
 * no IP (ARP, LLDP) are counted by `skipped`, as `ctflow replay` counts them in a capture.
 */
import type { CapturedPacket } from '../../processors/packet';
import type { InputMessage } from '../../kafka/client';
import { decodeFrame } from '../decode/index';
import { decodeCapturedTraffic, TopicFormatError } from './capturedTraffic';
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

export function decodeInputMessage(kind: InputKind, msg: InputMessage, h: InputHandlers): void {
  if (msg.value === null) {
    h.dead('message has no value (a tombstone) on an input topic');
    return;
  }
  try {
    if (kind === 'packet-events') {
      const e = decodePacketEvent(msg.value, msg.timestampMs);
      h.packet({ frame: 0, tsUs: e.tsUs, interfaceId: 0, ip: e.ip, zone: e.zone });
      return;
    }
    const frames = decodeCapturedTraffic(msg.value, msg.headers, msg.timestampMs);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      const r = decodeFrame({ frame: i, tsUs: f.tsUs, linkType: f.linkType, interfaceId: f.interfaceId, data: f.data });
      if (r.kind === 'ip') h.packet(r.packet);
      else if (r.kind === 'not-ip') h.skipped(r.reason);
      else h.dead(r.reason, { frame: i, bytes: f.data });
    }
  } catch (err) {
    if (err instanceof TopicFormatError) h.dead(err.message);
    else throw err;
  }
}
