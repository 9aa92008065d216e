/**
 * GET /stats: `conntrack -S` for the whole process (summed over the partitions' tables, as
 * conntrack sums over CPUs) and per partition, with the pipeline's own counts beside it.
 * Read from the live tables: counters are cheap to add up, unlike a walk of the entries.
 */
import type { CtState, CtStats } from '../../processors/flow';
import { emptyStats } from '../../processors/flow';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import { CTSTATES } from '../telemetry/telemetry';

export function statsBody(t: PipelineTelemetry): Record<string, unknown> {
  const total = emptyStats();
  let entries = 0;
  let limit = 0;
  const partitions = t.tables().map(([partition, view]) => {
    const stats = view.stats();
    for (const k of Object.keys(total) as Array<keyof CtStats>) total[k] += stats[k];
    entries += view.count;
    limit += view.sysctl.nf_conntrack_max;
    return { partition, entries: view.count, limit: view.sysctl.nf_conntrack_max, ...stats };
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
