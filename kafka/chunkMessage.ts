/**
 * An output message whose value is bytes [valueStart, valueEnd) of a shared chunk (the JSON
 * records of sinks/jsonBytes.ts are written one after another into 64 KiB chunks). The produce
 * request encoder (produceRequest.ts) copies the bytes straight from the chunk; `value`, for
 * everyone else, makes a Buffer view of them when asked. Two of every three objects a live
 * pipeline made per output record were this message's Buffer view and kafkajs's copy of the
 * message; the records wait for their produce request and its acknowledgement, so they were
 * young-generation survivors that each scavenge copied.
 */
export class ChunkMessage {
  constructor(
    readonly topic: string,
    readonly key: string | null | undefined,
    readonly partition: number,
    readonly timestampMs: number,
    readonly chunk: Buffer,
    readonly valueStart: number,
    readonly valueEnd: number,
  ) {}

  /** The value as a Buffer: a view of the chunk (made per call). */
  get value(): Buffer {
    return this.chunk.subarray(this.valueStart, this.valueEnd);
  }

  /** Bytes of the value. */
  get valueLength(): number {
    return this.valueEnd - this.valueStart;
  }

  /**
   * The record time as kafkajs reads a message's `timestamp`: a ChunkMessage goes to kafkajs as
   * its own message (client.ts), rather than as the value of one more object per record that
   * would live until the acknowledgement.
   */
  get timestamp(): number | string {
    return kafkaTimestamp(this.timestampMs);
  }
}

/**
 * A message time as kafkajs takes it (int64 ms). A positive safe integer goes as a number rather
 * than a string made per message: kafkajs treats both alike (Long.fromValue, the same difference
 * for the timestamp delta, and its default sort of the batch's timestamps compares their string
 * forms either way). 0 and negative times stay strings: kafkajs stamps a falsy timestamp with
 * Date.now() (`message.timestamp || dateNow`), and the string "0" is not falsy.
 */
export function kafkaTimestamp(ms: number): number | string {
  const t = Math.floor(ms);
  return t > 0 && t <= Number.MAX_SAFE_INTEGER ? t : String(t);
}
