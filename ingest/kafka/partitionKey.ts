/**
 * The Kafka message key that keeps a flow on one partition: a hash of the zone and the unordered
 * address pair, so both directions, every fragment (non-first fragments have no ports) and the
 * ICMP errors that quote the flow (keyed by the quoted pair, as conntrack relates them) land on
 * the same partition and therefore in the same engine. It is the engine's own shard hash, so a
 * partition is to the fleet what a shard is to one engine.
 */
import type { IpPacket } from '../../processors/packet';
import { flowKeyOf } from '../../processors/conntrack/engine';

export function flowKeyHash(ip: IpPacket, zone = 0): number {
  return flowKeyOf(ip, zone);
}

/** The key as message bytes: the 32-bit hash in 8 hex digits (readable in kafka-console-consumer). */
export function flowKey(ip: IpPacket, zone = 0): string {
  return flowKeyHash(ip, zone).toString(16).padStart(8, '0');
}
