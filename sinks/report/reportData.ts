/**
 * The report's data as it travels inside the HTML file: a JSON part (summary, time series,
 * string tables) and a binary part (per-packet, per-event and per-flow columns as typed arrays,
 * one gzip'd buffer in base64). Shared by the node side that writes it and the browser code that
 * reads it, so it imports nothing.
 *
 * Columns rather than objects: a 1.6M-packet capture has 1.6M packets and ~100k flows, and one
 * JSON object each would make the file tens of MB larger and slow to parse.
 */

export const CTSTATES = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'] as const;
export type CtStateName = (typeof CTSTATES)[number];
/** Index 0 is "no direction" (a packet judged without an entry). */
export const DIRECTIONS = ['', 'original', 'reply'] as const;
/** How a flow ended: index 0 is still open when the capture ended; the rest are DESTROY reasons. */
export const FATES = ['open', 'timeout', 'rst', 'close', 'early_drop', 'flush', 'reopen'] as const;
export const EVENT_TYPES = ['NEW', 'UPDATE', 'DESTROY'] as const;

export type ColumnType = 'u8' | 'u16' | 'u32' | 'i32' | 'f64';

/** Where one column sits in the binary buffer. */
export interface ColumnRef {
  type: ColumnType;
  /** Byte offset, a multiple of 8. */
  offset: number;
  length: number;
  /** Stored as differences from the previous value (in the column's own 32-bit arithmetic): undelta() restores it. */
  delta?: boolean;
}

/**
 * Columns that mostly count up (times, indexes, ids) are stored as differences, which gzip
 * packs far better (a 1.6M-packet report shrinks by about 40%); the arithmetic wraps in the
 * array's own type, so any values round-trip.
 */
export const DELTA_COLUMNS: readonly string[] = ['pTime', 'pFrame', 'pFlow', 'eFlow', 'eTime', 'ePacket', 'fId', 'fFirst', 'fLast'];

type IntArray = Uint8Array | Uint16Array | Uint32Array | Int32Array;

/** Differences from the previous value, in a new array of the same type. */
export function delta<T extends IntArray>(a: T): T {
  const out = new (a.constructor as new (n: number) => T)(a.length);
  for (let k = a.length - 1; k > 0; k--) out[k] = a[k] - a[k - 1];
  if (a.length) out[0] = a[0];
  return out;
}

/** Undoes delta() in place: the typed array's store wraps each sum back into its range. */
export function undelta(a: IntArray): void {
  for (let k = 1; k < a.length; k++) a[k] += a[k - 1];
}

/**
 * Names of the binary columns. Packet columns have one value per IP packet (by index `i`), event
 * columns one per event, flow columns one per flow row. Times are offsets from `capture.firstUs`
 * in units of `timeUnitUs`; strings are indexes into `strings`.
 */
export const PACKET_COLUMNS = ['pTime', 'pFrame', 'pFlow', 'pVerdict', 'pState', 'pReason', 'pLength', 'pFlags'] as const;
export const EVENT_COLUMNS = ['eFlow', 'eType', 'eTime', 'eState', 'eFate', 'ePacket'] as const;
export const FLOW_COLUMNS = [
  'fId', 'fZone', 'fFamily', 'fProto', 'fState', 'fFate', 'fStatus', 'fTimeout',
  'fOrigSrc', 'fOrigDst', 'fOrigSport', 'fOrigDport', 'fReplySrc', 'fReplyDst', 'fReplySport', 'fReplyDport',
  'fOrigPackets', 'fReplyPackets', 'fOrigBytes', 'fReplyBytes', 'fFirst', 'fLast',
] as const;
export type ColumnName = (typeof PACKET_COLUMNS)[number] | (typeof EVENT_COLUMNS)[number] | (typeof FLOW_COLUMNS)[number];

/** pVerdict packs the ctstate (low 3 bits) and the direction (next 2 bits). */
export const verdictCode = (ctstate: number, dir: number): number => ctstate | (dir << 3);
export const ctstateOf = (code: number): number => code & 7;
export const dirOf = (code: number): number => (code >> 3) & 3;

/** A time series over packet time: counts per bucket (or, for gauges, the value at the bucket's end). */
export interface SeriesSet {
  /** Bucket width in µs and the first bucket's start (epoch µs). */
  bucketUs: number;
  startUs: number;
  buckets: number;
  /** Packets per bucket, by ctstate. */
  verdicts: Record<string, number[]>;
  /** INVALID packets per bucket, by reason. */
  invalidByReason: Record<string, number[]>;
  /** NEW events (entries created) per bucket. */
  newEntries: number[];
  /** Table entries at the end of each bucket, by "proto" or "proto STATE". */
  entries: Record<string, number[]>;
}

export interface BadFrame {
  /** -1 for a topic message that could not be read at all. */
  frame: number;
  reason: string;
  /** In a report of a Kafka topic: the message the frame was in (frameInMessage: its place in a batch). */
  message?: { topic: string; partition: number; offset: string; frameInMessage?: number };
}

export interface WhatIfSide {
  /** The knobs of this side that differ from the kernel's defaults. */
  knobs: Record<string, number>;
}

export interface WhatIfData {
  base: WhatIfSide;
  other: WhatIfSide;
  /** The knobs the other side changes relative to the base. */
  changed: Record<string, number>;
  packets: number;
  verdictChanges: Array<{ i: number; before: string; after: string; beforeReason?: string; afterReason?: string }>;
  /** How many verdict changes there were before the list was cut to keep the file small. */
  verdictChangesTotal: number;
  flowChanges: Array<{ flow: string; before: string; after: string }>;
  flowChangesTotal: number;
}

export interface ReportMeta {
  format: 'ctflow-report/1';
  generatedBy: string;
  capture: {
    name: string;
    frames: number;
    packets: number;
    /** IP bytes (the datagram lengths conntrack counts). */
    bytes: number;
    firstUs: number;
    lastUs: number;
    nonIp: number;
    badFrames: BadFrame[];
    /** The capture ended early in a broken record; frames before it were read. */
    captureProblem?: { frame: number; offset: number; reason: string };
  };
  /** Every knob's value in this replay, and which differ from the kernel's defaults. */
  knobs: { values: Record<string, number>; changed: Record<string, number> };
  verdicts: Record<string, number>;
  invalidReasons: Record<string, number>;
  events: Record<string, number>;
  /** `conntrack -S` with the entries at the end, as `ctflow stats --json` prints it. */
  stats: Record<string, number>;
  /** Flows tracked during the replay, by protocol name. */
  flowsByProto: Record<string, number>;
  flowCount: number;
  eventCount: number;
  series: SeriesSet;
  /** TCP state changes seen on packets: from (row) to (column); "" is "no entry yet". */
  transitions: { states: string[]; counts: number[][] };
  strings: { addresses: string[]; states: string[]; reasons: string[]; protos: Record<number, string> };
  /** Packet times in the columns are (tsUs - capture.firstUs) / timeUnitUs. */
  timeUnitUs: number;
  /** For INVALID packets (by index): the decoder's note and the window values behind the verdict. */
  details: Record<number, { note?: string; detail?: Record<string, number> }>;
  /** How many INVALID details were left out to keep the file small. */
  detailsOmitted: number;
  columns: Record<string, ColumnRef>;
  whatif?: WhatIfData;
}
