/**
 * What the capture readers hand to the decoder: one record of a pcap or pcapng file, still in
 * its link-layer framing. Readers never look past the link type; decoding is decode/'s job.
 */

/** One captured frame, in file order. */
export interface CaptureFrame {
  /** Index of the packet record in the file, from 0 (across all pcapng sections). */
  frame: number;
  /** Capture time in integer microseconds since the epoch (sub-microsecond parts are cut off). */
  tsUs: number;
  /** LINKTYPE_* of the interface that captured it (LINKTYPE.UNDECLARED when the file names none). */
  linkType: number;
  /** pcapng interface id within its section; 0 for pcap. */
  interfaceId: number;
  /** The pcapng interface's name (its IDB's if_name option), when the file gives one. */
  interfaceName?: string;
  /** The captured bytes (a view into the file buffer, not a copy). */
  data: Uint8Array;
  /** The frame's length on the wire; larger than data.length when the snaplen cut it. */
  origLength: number;
}

/**
 * Why reading stopped before the end of the file (a truncated or corrupt record). The frames
 * before it have already been delivered; this is a report, not an exception, because a capture
 * cut off mid-write (a killed tcpdump) is common and its earlier frames are still good.
 */
export interface CaptureProblem {
  /** Index the offending record would have had. */
  frame: number;
  /** Byte offset of the offending record in the file. */
  offset: number;
  reason: string;
}

export type CaptureFormat = 'pcap' | 'pcapng';

/** An opened capture: iterate it for frames; `problem` is set once iteration hit a bad record. */
export interface Capture extends Iterable<CaptureFrame> {
  readonly format: CaptureFormat;
  /** Set (after iteration reached it) when the file ends in a truncated or corrupt record. */
  readonly problem: CaptureProblem | undefined;
}

/**
 * The only exception the readers throw: the bytes are not a capture we can read at all (unknown
 * magic, or a file header cut short). Everything past the file header is reported via `problem`.
 */
export class CaptureFormatError extends Error {
  readonly code = 'CTF_ERR_CAPTURE_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'CaptureFormatError';
  }
}

/** The link types (tcpdump.org LINKTYPE_* values) the decoder understands. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  PPP: 9,
  /** Raw IP as some BSDs number it (DLT_RAW on OpenBSD / others). */
  RAW_ALT12: 12,
  RAW_ALT14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  NFLOG: 239,
  LINUX_SLL2: 276,
  /** Not a real link type: a pcapng packet block named an interface the file never described. */
  UNDECLARED: -1,
} as const;

/**
 * Wraps a frame walker as a re-iterable Capture. The walker reports at most one problem and
 * then returns; each new iteration starts from the top and clears the previous report.
 */
export function makeCapture(
  format: CaptureFormat,
  walk: (report: (p: CaptureProblem) => void) => Generator<CaptureFrame, void, undefined>,
): Capture {
  let problem: CaptureProblem | undefined;
  return {
    format,
    get problem() {
      return problem;
    },
    [Symbol.iterator]() {
      problem = undefined;
      return walk((p) => {
        problem = p;
      });
    },
  };
}
