/**
 * Time series over packet time, downsampled as they are filled: buckets start 1 ms wide and
 * double in width (pairs merged) whenever the capture outgrows `maxBuckets`, so a capture of any
 * length ends with between maxBuckets/2 and maxBuckets buckets and the span need not be known
 * before the replay (the capture is read once).
 */

/** A series' name: text, or a number the caller maps to a name (cheaper on the per-event path). */
export type SeriesKey = string | number;

export class TimeBuckets {
  bucketUs = 1000;
  /** Buckets in use: the last one holds the latest time seen. */
  used = 0;
  private readonly counters = new Map<SeriesKey, number[]>();
  /** Gauge values at the end of each bucket; NaN where the gauge did not change in that bucket. */
  private readonly gauges = new Map<SeriesKey, number[]>();

  constructor(readonly startUs: number, readonly maxBuckets = 1024) {
    if (maxBuckets < 2 || maxBuckets % 2) throw new Error(`TimeBuckets: maxBuckets must be even and at least 2, not ${maxBuckets}`);
  }

  /** The bucket of time `tsUs` (times before the start go to the first bucket). */
  private bucket(tsUs: number): number {
    let b = Math.floor((tsUs - this.startUs) / this.bucketUs);
    if (b < 0) b = 0;
    while (b >= this.maxBuckets) {
      this.coarsen();
      b = Math.floor((tsUs - this.startUs) / this.bucketUs);
    }
    if (b >= this.used) this.used = b + 1;
    return b;
  }

  private coarsen(): void {
    const half = this.maxBuckets / 2;
    for (const a of this.counters.values()) {
      for (let k = 0; k < half; k++) a[k] = a[2 * k] + a[2 * k + 1];
      a.fill(0, half);
    }
    for (const a of this.gauges.values()) {
      for (let k = 0; k < half; k++) a[k] = Number.isNaN(a[2 * k + 1]) ? a[2 * k] : a[2 * k + 1];
      a.fill(NaN, half);
    }
    this.bucketUs *= 2;
    this.used = Math.ceil(this.used / 2);
  }

  /** Adds `n` to counter `series` at time `tsUs`. */
  count(series: SeriesKey, tsUs: number, n = 1): void {
    const b = this.bucket(tsUs);
    let a = this.counters.get(series);
    if (!a) this.counters.set(series, (a = new Array<number>(this.maxBuckets).fill(0)));
    a[b] += n;
  }

  /** Sets gauge `series` to `value` as of time `tsUs`. */
  gauge(series: SeriesKey, tsUs: number, value: number): void {
    const b = this.bucket(tsUs);
    let a = this.gauges.get(series);
    if (!a) this.gauges.set(series, (a = new Array<number>(this.maxBuckets).fill(NaN)));
    a[b] = value;
  }

  /** Makes sure the buckets reach time `tsUs` (the capture's last packet). */
  extendTo(tsUs: number): void {
    this.bucket(tsUs);
  }

  /** The counter's buckets in use (zeros for a series never counted). */
  counter(series: SeriesKey): number[] {
    const a = this.counters.get(series);
    return a ? a.slice(0, this.used) : new Array<number>(this.used).fill(0);
  }

  /** The gauge's value at the end of each bucket: carried forward from the last change, 0 before the first. */
  gaugeValues(series: SeriesKey): number[] {
    const a = this.gauges.get(series) ?? [];
    const out = new Array<number>(this.used);
    let last = 0;
    for (let k = 0; k < this.used; k++) {
      if (a[k] !== undefined && !Number.isNaN(a[k])) last = a[k];
      out[k] = last;
    }
    return out;
  }

}
