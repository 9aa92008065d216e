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
}
