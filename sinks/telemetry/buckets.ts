/** Histogram buckets shared by the Prometheus and OTLP outputs, so both show the same shape. */

/** Batch sizes span one-message batches to kafkajs's largest fetches. */
export const BATCH_SIZE_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536];

/** Processing time per batch, 100 µs to 10 s. */
export const BATCH_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
