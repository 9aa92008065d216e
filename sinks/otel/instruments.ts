/**
 * The Prometheus metrics again, as OpenTelemetry instruments on any @opentelemetry/api Meter.
 * Totals kept by PipelineTelemetry become observable counters (cumulative sums, read when the
 * SDK collects), the tables and lags observable gauges, and the batch histograms are recorded
 * as batches happen.
 *
 * Names are OpenTelemetry-style (dotted, with UCUM units); attributes use the semantic
 * conventions' names where one exists: network.transport for the protocol, network.type for
 * the family, source.* and destination.* for the top flows' tuples, and
 * messaging.destination.partition.id for the Kafka partition. ctflow's own notions (zone,
 * ctstate, state, reason) are namespaced ctflow.*.
 */
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { ATTR_NETWORK_TRANSPORT, ATTR_NETWORK_TYPE } from '@opentelemetry/semantic-conventions';
import { BATCH_SECONDS_BUCKETS, BATCH_SIZE_BUCKETS } from '../telemetry/buckets';
import { protoLabel, STAT_NAMES } from '../telemetry/labels';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import type { RankedFlow } from '../telemetry/topFlows';

// Incubating semantic-convention names: the package asks users to copy these rather than
// import its unstable entry point.
export const ATTR_SOURCE_ADDRESS = 'source.address';
export const ATTR_SOURCE_PORT = 'source.port';
export const ATTR_DESTINATION_ADDRESS = 'destination.address';
export const ATTR_DESTINATION_PORT = 'destination.port';
export const ATTR_MESSAGING_DESTINATION_PARTITION_ID = 'messaging.destination.partition.id';

export const ATTR_ZONE = 'ctflow.zone';
/** Resource attribute: whether the process watches live traffic or replays a capture. */
export const ATTR_MODE = 'ctflow.mode';
export const ATTR_CTSTATE = 'ctflow.ctstate';
export const ATTR_STATE = 'ctflow.state';
export const ATTR_REASON = 'ctflow.reason';
export const ATTR_FROM_STATE = 'ctflow.state.from';
export const ATTR_TO_STATE = 'ctflow.state.to';

const zp = (zone: number, proto: number): Attributes => ({ [ATTR_ZONE]: zone, [ATTR_NETWORK_TRANSPORT]: protoLabel(proto) });
const part = (partition: number): Attributes => ({ [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: String(partition) });

export function registerInstruments(meter: Meter, t: PipelineTelemetry): void {
  const counter = (name: string, description: string, unit: string, read: (r: ObservableResult) => void | Promise<void>): void => {
    meter.createObservableCounter(name, { description, unit }).addCallback(read);
  };
  const gauge = (name: string, description: string, unit: string, read: (r: ObservableResult) => void | Promise<void>): void => {
    meter.createObservableGauge(name, { description, unit }).addCallback(read);
  };

  counter('ctflow.packets', 'IP packets judged, by zone, transport and ctstate', '{packet}', (r) => {
    for (const c of t.trafficCounts()) r.observe(c.packets, { ...zp(c.zone, c.proto), [ATTR_CTSTATE]: c.ctstate });
  });
  counter('ctflow.bytes', 'Bytes of IP packets judged (IP datagram length)', 'By', (r) => {
    for (const c of t.trafficCounts()) r.observe(c.bytes, { ...zp(c.zone, c.proto), [ATTR_CTSTATE]: c.ctstate });
  });
  counter('ctflow.invalid_packets', 'Packets judged INVALID, by zone, transport and reason', '{packet}', (r) => {
    for (const c of t.invalidCounts()) r.observe(c.packets, { ...zp(c.zone, c.proto), [ATTR_REASON]: c.reason });
  });
  counter('ctflow.state_transitions', 'Table entries moving between states', '{transition}', (r) => {
    for (const c of t.transitions()) r.observe(c.count, { [ATTR_NETWORK_TRANSPORT]: protoLabel(c.proto), [ATTR_FROM_STATE]: c.from, [ATTR_TO_STATE]: c.to });
  });
  counter('ctflow.flows.created', 'Table entries created', '{flow}', (r) => {
    for (const c of t.createdCounts()) r.observe(c.count, zp(c.zone, c.proto));
  });
  counter('ctflow.flows.destroyed', 'Table entries destroyed, by reason', '{flow}', (r) => {
    for (const c of t.destroyedCounts()) r.observe(c.count, { ...zp(c.zone, c.proto), [ATTR_REASON]: c.reason ?? 'unknown' });
  });

  gauge('ctflow.conntrack.entries', 'Table entries by partition, zone, transport and state', '{entry}', async (r) => {
    for (const g of (await t.snapshot()).groups) r.observe(g.count, { ...part(g.partition), ...zp(g.zone, g.proto), [ATTR_STATE]: g.state });
  });
  gauge('ctflow.conntrack.entries.limit', "The table's limit (nf_conntrack_max), per partition", '{entry}', async (r) => {
    for (const p of (await t.snapshot()).partitions) r.observe(p.limit, part(p.partition));
  });
  for (const stat of STAT_NAMES) {
    counter(`ctflow.conntrack.stat.${stat}`, `conntrack -S ${stat}, per partition`, '{event}', async (r) => {
      for (const p of (await t.snapshot()).partitions) r.observe(p.stats[stat], part(p.partition));
    });
  }
  gauge('ctflow.conntrack.unreplied_timeout', 'Seconds an entry without a reply stays in the table', 's', (r) => {
    for (const x of t.unrepliedTimeouts()) r.observe(x.seconds, { [ATTR_NETWORK_TRANSPORT]: protoLabel(x.proto) });
  });
  const flowAttributes = (f: RankedFlow): Attributes => ({
    ...zp(f.flow.zone, f.flow.proto),
    [ATTR_NETWORK_TYPE]: f.flow.family === 4 ? 'ipv4' : 'ipv6',
    [ATTR_SOURCE_ADDRESS]: f.flow.orig.src,
    [ATTR_SOURCE_PORT]: f.flow.orig.sport,
    [ATTR_DESTINATION_ADDRESS]: f.flow.orig.dst,
    [ATTR_DESTINATION_PORT]: f.flow.orig.dport,
    [ATTR_STATE]: f.flow.state ?? '',
  });
  gauge('ctflow.top_flow.bytes', `Bytes of the ${t.topN} largest table entries`, 'By', async (r) => {
    for (const f of (await t.snapshot()).top) r.observe(f.bytes, flowAttributes(f));
  });
  gauge('ctflow.top_flow.packets', `Packets of the ${t.topN} largest table entries by bytes`, '{packet}', async (r) => {
    for (const f of (await t.snapshot()).top) r.observe(f.packets, flowAttributes(f));
  });

  counter('ctflow.input.messages', 'Input messages processed, by partition', '{message}', (r) => {
    for (const p of t.partitions()) r.observe(p.messages, part(p.partition));
  });
  counter('ctflow.dead_letters', 'Input messages dead-lettered, by partition', '{message}', (r) => {
    for (const p of t.partitions()) r.observe(p.deadLetters, part(p.partition));
  });
  gauge('ctflow.consumer.lag', 'Messages behind the partition high watermark', '{message}', (r) => {
    for (const p of t.partitions()) if (p.consumerLag !== undefined) r.observe(p.consumerLag, part(p.partition));
  });
  gauge('ctflow.event_time.lag', "Wall clock minus the partition's packet clock", 's', (r) => {
    for (const p of t.partitions()) {
      const lag = t.eventTimeLagSeconds(p);
      if (lag !== undefined) r.observe(lag, part(p.partition));
    }
  });
  const size = meter.createHistogram('ctflow.batch.size', { description: 'Input messages per processed batch', unit: '{message}', advice: { explicitBucketBoundaries: BATCH_SIZE_BUCKETS } });
  const duration = meter.createHistogram('ctflow.batch.duration', { description: 'Wall time to decode, track and encode one batch', unit: 's', advice: { explicitBucketBoundaries: BATCH_SECONDS_BUCKETS } });
  t.onBatch((b) => {
    size.record(b.messages, part(b.partition));
    duration.record(b.processingSeconds, part(b.partition));
  });
}
