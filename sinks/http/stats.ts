/**
 * GET /stats: `conntrack -S` for the whole process (summed over the partitions' tables, as
 * conntrack sums over CPUs) and per partition, with the pipeline's own counts beside it.
 * Read from the live tables (in the partition workers too, on request): counters are cheap to
 * add up, unlike a walk of the entries.
 */
import type { CtState, CtStats } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import { CTSTATES } from '../telemetry/telemetry';

export async function statsBody(t: PipelineTelemetry): Promise<Record<string, unknown>> {
  const total = emptyStats();
  let entries = 0;
  let limit = 0;
  const partitions = (await t.ask({ kind: 'stats' })).map((p) => {
    for (const k of Object.keys(total) as Array<keyof CtStats>) total[k] += p.stats[k];
    entries += p.entries;
    limit += p.limit;
    return { partition: p.partition, entries: p.entries, limit: p.limit, ...p.stats };
  });
  const ctstate = Object.fromEntries(CTSTATES.map((s) => [s, 0])) as Record<CtState, number>;
  for (const c of t.trafficCounts()) ctstate[c.ctstate] += c.packets;
  const invalid: Record<string, number> = {};
  for (const c of t.invalidCounts()) invalid[c.reason] = (invalid[c.reason] ?? 0) + c.packets;
  return {
    entries,
    limit,
    ...total,
    partitions,
    packets: ctstate,
    invalidReasons: invalid,
    pipeline: t.partitions().map((p) => ({
      partition: p.partition,
      messages: p.messages,
      packets: p.packets,
      deadLetters: p.deadLetters,
      consumerLag: p.consumerLag ?? null,
      eventTimeLagSeconds: t.eventTimeLagSeconds(p) ?? null,
    })),
  };
}
