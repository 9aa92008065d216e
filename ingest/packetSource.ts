/**
 * Capture bytes in, CapturedPacket out: the reader and the decoder joined, with the numbering
 * the oracle uses (`index` counts IP packets only) and a running summary of what was skipped.
 */
import type { CapturedPacket } from '../processors/packet';
import { openCapture } from './capture/reader';
import type { CaptureFrame, CaptureProblem } from './capture/types';
import { decodeFrame } from './decode/index';

export interface ReadPacketsOptions {
  /** Called for each frame that carries no IP (ARP, LLDP, unsupported link type, ...). */
  onNonIp?(frame: CaptureFrame, reason: string): void;
  /** Called for each frame whose framing or IP/L4 headers are broken. */
  onMalformed?(frame: CaptureFrame, reason: string): void;
}

/** Where a frame read from a Kafka topic came from: its bad frames and messages are listed with it. */
export interface MessageLocation {
  topic: string;
  partition: number;
  offset: string;
  /** The frame's position in a batch message; absent when the whole message is bad. */
  frameInMessage?: number;
}

export interface ReadSummary {
  frames: number;
  ipPackets: number;
  nonIp: number;
  /** `frame` is -1 for a topic message that could not be read at all (it has no frames to number). */
  malformed: Array<{ frame: number; reason: string; message?: MessageLocation }>;
  /** Set when the capture ended in a truncated or corrupt record (earlier frames were read). */
  captureProblem?: CaptureProblem;
}

/** A generator of packets that also exposes its summary, live while iterating. */
export type PacketStream = Generator<CapturedPacket, ReadSummary, undefined> & { readonly summary: ReadSummary };

/**
 * Reads the IP packets of a pcap/pcapng capture in capture order. Throws CaptureFormatError
 * at once when the bytes are not a capture; every later problem ends up in `summary`.
 */
export function readPackets(bytes: Uint8Array, opts: ReadPacketsOptions = {}): PacketStream {
  const capture = openCapture(bytes); // outside the generator, so a bad format throws here
  const summary = emptySummary();

  function* run(): Generator<CapturedPacket, ReadSummary, undefined> {
    for (const frame of capture) {
      const packet = readFrame(frame, summary, opts);
      if (packet) yield packet;
    }
    if (capture.problem) summary.captureProblem = capture.problem;
    return summary;
  }

  return Object.assign(run(), { summary });
}

export function emptySummary(): ReadSummary {
  return { frames: 0, ipPackets: 0, nonIp: 0, malformed: [] };
}

/**
 * One frame through the decoder, counted in `summary`: its packet, numbered, when it is an IP
 * packet. The capture workers (cli/workers/) read frames through this too, so that the frames
 * they decode are numbered and reported exactly as here.
 */
export function readFrame(frame: CaptureFrame, summary: ReadSummary, opts: ReadPacketsOptions = {}): CapturedPacket | undefined {
  summary.frames++;
  const r = decodeFrame(frame);
  if (r.kind === 'ip') {
    // Built field by field (same fields, same order as a spread): spreading costs far more.
    const d = r.packet;
    const packet: CapturedPacket = { index: summary.ipPackets++, frame: d.frame, tsUs: d.tsUs, interfaceId: d.interfaceId, ip: d.ip };
    if (d.interfaceName !== undefined) packet.interfaceName = d.interfaceName;
    if (d.vlan !== undefined) packet.vlan = d.vlan;
    return packet;
  }
  if (r.kind === 'not-ip') {
    summary.nonIp++;
    opts.onNonIp?.(frame, r.reason);
  } else {
    summary.malformed.push({ frame: frame.frame, reason: r.reason });
    opts.onMalformed?.(frame, r.reason);
  }
  return undefined;
}

/** Reads every packet at once; convenient for tests and small captures. */
export function readAllPackets(bytes: Uint8Array, opts?: ReadPacketsOptions): { packets: CapturedPacket[]; summary: ReadSummary } {
  const stream = readPackets(bytes, opts);
  const packets = [...stream];
  return { packets, summary: stream.summary };
}
