/**
 * ctflow's Prometheus metrics (prom-client), read from a PipelineTelemetry at scrape time.
 *
 * Names: ctflow_* for ctflow's own series. The table and its `conntrack -S` counters reuse
 * node_exporter's names with a ctflow_ prefix (node_nf_conntrack_entries becomes
 * ctflow_nf_conntrack_entries, node_nf_conntrack_stat_early_drop becomes
 * ctflow_nf_conntrack_stat_early_drop_total: a true counter here, hence the suffix), so queries
 * written for a kernel port over with a prefix change. Labels are plain words and bounded: zone,
 * proto, ctstate, state, reason, from/to, partition; the only per-flow labels are on the top-N
 * series, which hold N flows at a time.
 *
 * docs/metrics.md lists every series with its meaning.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BATCH_SECONDS_BUCKETS, BATCH_SIZE_BUCKETS } from '../telemetry/buckets';
import { protoLabel, STAT_NAMES } from '../telemetry/labels';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import type { RankedFlow } from '../telemetry/topFlows';
import { registerProcessMetrics } from './processMetrics';

export interface PrometheusOptions {
  /** Register prom-client's process and Node.js metrics too (default true). */
  processMetrics?: boolean;
  /** ctflow's version for ctflow_build_info. */
  version?: string;
  /**
   * ctflow_build_info's mode: "live" for `ctflow run`, "replay" for a capture replay, whose
   * packets are as old as the capture. Rules about how current the traffic is leave replays out
   * by it (default live).
   */
  mode?: 'live' | 'replay';
  /**
   * How long a counter series that has just appeared (a new zone, protocol or INVALID reason)
   * is shown at 0 before its value (default 0: at once). Prometheus's rate() counts growth only
   * between two samples, so a series whose first sample is already 500 hides those 500 from
   * every rate and alert; shown at 0 for at least one scrape interval, its first burst counts.
   */
  newSeriesHoldMs?: number;
  /** The wall clock for newSeriesHoldMs (tests give their own). */
  nowMs?: () => number;
}

type Labels = Record<string, string>;
type Sample = [Labels, number];

/** When each counter series was first seen, so a new one can be held at 0 (see newSeriesHoldMs). */
class SeriesHold {
  private readonly firstSeen = new Map<string, number>();
  constructor(private readonly holdMs: number, private readonly nowMs: () => number) {}

  /** The value to show for a series now: 0 while it is younger than the hold. */
  value(name: string, labels: Labels, value: number): number {
    if (this.holdMs <= 0 || value === 0) return value;
    const key = `${name}\0${Object.values(labels).join('\0')}`;
    const now = this.nowMs();
    const first = this.firstSeen.get(key);
    if (first === undefined) {
      this.firstSeen.set(key, now);
      return 0;
    }
    return now - first < this.holdMs ? 0 : value;
  }
}

/** Samples now, or once the tables have answered (they may live in partition workers). */
type Read = () => Iterable<Sample> | Promise<Iterable<Sample>>;

/** A counter whose values are totals kept elsewhere: at each scrape it is set to them. */
function totals(registry: Registry, name: string, help: string, labelNames: string[], read: Read, hold?: SeriesHold): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect(this: Counter<string>) {
      const samples = await read();
      this.reset();
      for (const [labels, value] of samples) this.inc(labels, hold ? hold.value(name, labels, value) : value);
    },
  });
}

function gauge(registry: Registry, name: string, help: string, labelNames: string[], read: Read): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect(this: Gauge<string>) {
      const samples = await read();
      this.reset();
      for (const [labels, value] of samples) this.set(labels, value);
    },
  });
}

function* map<T>(items: Iterable<T>, f: (t: T) => Sample | undefined): Iterable<Sample> {
  for (const t of items) {
    const s = f(t);
    if (s) yield s;
  }
}

export function prometheusRegistry(t: PipelineTelemetry, o: PrometheusOptions = {}): Registry {
  const r = new Registry();
  const hold = new SeriesHold(o.newSeriesHoldMs ?? 0, o.nowMs ?? Date.now);
  const zp = (zone: number, proto: number): Labels => ({ zone: String(zone), proto: protoLabel(proto) });

  new Gauge({ name: 'ctflow_build_info', help: 'Always 1; the labels say which ctflow this is and whether it runs live or replays a capture.', labelNames: ['version', 'mode'], registers: [r] }).set(
    { version: o.version ?? 'unknown', mode: o.mode ?? 'live' },
    1,
  );

  // Traffic, from every judged packet.
  totals(r, 'ctflow_packets_total', 'IP packets judged, by conntrack zone, protocol and ctstate.', ['zone', 'proto', 'ctstate'], () =>
    map(t.trafficCounts(), (c) => [{ ...zp(c.zone, c.proto), ctstate: c.ctstate }, c.packets]),
    hold,
  );
  totals(r, 'ctflow_bytes_total', 'Bytes of IP packets judged (IP datagram length, as conntrack counts), by zone, protocol and ctstate.', ['zone', 'proto', 'ctstate'], () =>
    map(t.trafficCounts(), (c) => [{ ...zp(c.zone, c.proto), ctstate: c.ctstate }, c.bytes]),
    hold,
  );
  totals(r, 'ctflow_invalid_packets_total', 'Packets judged INVALID, by zone, protocol and the reason conntrack refused them.', ['zone', 'proto', 'reason'], () =>
    map(t.invalidCounts(), (c) => [{ ...zp(c.zone, c.proto), reason: c.reason }, c.packets]),
    hold,
  );
  totals(r, 'ctflow_state_transitions_total', 'Table entries moving between states (NONE at creation, DESTROYED at the end), by protocol.', ['proto', 'from', 'to'], () =>
    map(t.transitions(), (c) => [{ proto: protoLabel(c.proto), from: c.from, to: c.to }, c.count]),
    hold,
  );
  totals(r, 'ctflow_flows_created_total', 'Table entries created (conntrack NEW events), by zone and protocol.', ['zone', 'proto'], () =>
    map(t.createdCounts(), (c) => [zp(c.zone, c.proto), c.count]),
    hold,
  );
  totals(r, 'ctflow_flows_destroyed_total', 'Table entries destroyed (DESTROY events), by zone, protocol and why (timeout, rst, close, early_drop, ...).', ['zone', 'proto', 'reason'], () =>
    map(t.destroyedCounts(), (c) => [{ ...zp(c.zone, c.proto), reason: c.reason ?? 'unknown' }, c.count]),
    hold,
  );

  // The tables, from a snapshot at most refreshMs old.
  gauge(r, 'ctflow_nf_conntrack_entries', 'Table entries by partition, zone, protocol and state (TCP/SCTP state; UNREPLIED, REPLIED or ASSURED otherwise). sum() is node_nf_conntrack_entries.', ['partition', 'zone', 'proto', 'state'], async () =>
    map((await t.snapshot()).groups, (g) => [{ partition: String(g.partition), ...zp(g.zone, g.proto), state: g.state }, g.count]),
  );
  gauge(r, 'ctflow_nf_conntrack_entries_limit', "The table's limit, nf_conntrack_max (each partition has its own table).", ['partition'], async () =>
    map((await t.snapshot()).partitions, (p) => [{ partition: String(p.partition) }, p.limit]),
  );
  for (const stat of STAT_NAMES) {
    totals(r, `ctflow_nf_conntrack_stat_${stat}_total`, `conntrack -S ${stat}, per partition's table (node_nf_conntrack_stat_${stat} on a host).`, ['partition'], async () =>
      map((await t.snapshot()).partitions, (p) => [{ partition: String(p.partition) }, p.stats[stat]]),
    );
  }
  gauge(r, 'ctflow_conntrack_unreplied_timeout_seconds', 'Seconds an entry that never sees a reply stays in the table, by protocol (from the nf_conntrack_* timeouts).', ['proto'], () =>
    map(t.unrepliedTimeouts(), (x) => [{ proto: protoLabel(x.proto) }, x.seconds]),
  );
  gauge(r, 'ctflow_table_snapshot_timestamp_seconds', 'When the table series (entries, limit, stats, top flows) were last read from the tables.', [], async () =>
    t.hasTables() ? [[{}, (await t.snapshot()).takenAtMs / 1e3]] : [],
  );
  const flowLabels = ['zone', 'proto', 'src', 'sport', 'dst', 'dport', 'state'];
  const topLabels = (f: RankedFlow): Labels => ({
    ...zp(f.flow.zone, f.flow.proto),
    src: f.flow.orig.src,
    sport: String(f.flow.orig.sport),
    dst: f.flow.orig.dst,
    dport: String(f.flow.orig.dport),
    state: f.flow.state ?? '',
  });
  gauge(r, 'ctflow_top_flow_bytes', `Bytes (both directions) of the ${t.topN} largest table entries; the set is re-read with the table snapshot.`, flowLabels, async () =>
    map((await t.snapshot()).top, (f) => [topLabels(f), f.bytes]),
  );
  gauge(r, 'ctflow_top_flow_packets', `Packets (both directions) of the ${t.topN} largest table entries by bytes.`, flowLabels, async () =>
    map((await t.snapshot()).top, (f) => [topLabels(f), f.packets]),
  );

  // The pipeline.
  totals(r, 'ctflow_input_messages_total', 'Input messages processed (Kafka messages; capture frames for a replay), by partition.', ['partition'], () =>
    map(t.partitions(), (p) => [{ partition: String(p.partition) }, p.messages]),
  );
  totals(r, 'ctflow_dead_letters_total', 'Input messages sent to the dead-letter topic (or capture frames that could not be decoded), by partition.', ['partition'], () =>
    map(t.partitions(), (p) => [{ partition: String(p.partition) }, p.deadLetters]),
  );
  gauge(r, 'ctflow_consumer_lag_messages', 'Messages between the last one processed and the partition high watermark.', ['partition'], () =>
    map(t.partitions(), (p) => (p.consumerLag === undefined ? undefined : [{ partition: String(p.partition) }, p.consumerLag])),
  );
  gauge(r, 'ctflow_event_time_lag_seconds', "Wall clock minus the partition's packet clock (the time of the last packet processed).", ['partition'], () =>
    map(t.partitions(), (p) => {
      const lag = t.eventTimeLagSeconds(p);
      return lag === undefined ? undefined : [{ partition: String(p.partition) }, lag];
    }),
  );
  const size = new Histogram({ name: 'ctflow_batch_size_messages', help: 'Input messages per processed batch.', buckets: BATCH_SIZE_BUCKETS, registers: [r] });
  const seconds = new Histogram({ name: 'ctflow_batch_processing_seconds', help: 'Wall time to decode, track and encode one batch.', buckets: BATCH_SECONDS_BUCKETS, registers: [r] });
  t.onBatch((b) => {
    size.observe(b.messages);
    seconds.observe(b.processingSeconds);
  });

  if (o.processMetrics ?? true) registerProcessMetrics(r);
  return r;
}
