/**
 * The live and replay pipelines' in-flight bounds (pipeline.maxInFlightBatches and
 * maxInFlightBytes; cli/streamPipeline.ts pauses the consumer past either). Bytes are the bound
 * that keeps memory in check; the batch count only caps bookkeeping when batches are tiny.
 */
export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 1000;
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024;
