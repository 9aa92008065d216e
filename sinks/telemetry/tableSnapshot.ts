/**
 * One pass over the partitions' tables: entries grouped by zone, protocol and state, each
 * table's size, limit and `conntrack -S` counters, and the top flows. Metrics are scraped far
 * more often than a big table can be walked, so this is taken now and then and cached.
 */
import type { CtStats } from '../../processors/flow';
import { entryState } from './labels';
import type { TableView } from './observer';
import { TopFlows } from './topFlows';
import type { RankedFlow } from './topFlows';

export interface EntryGroup {
  partition: number;
  zone: number;
  proto: number;
  state: string;
  count: number;
}

export interface PartitionTable {
  partition: number;
  entries: number;
  limit: number;
  stats: CtStats;
}

export interface TableSnapshot {
  /** Wall time it was taken (ms). */
  takenAtMs: number;
  groups: EntryGroup[];
  partitions: PartitionTable[];
  top: RankedFlow[];
}

export function snapshotTables(tables: Iterable<[number, TableView]>, topN: number, nowMs: number): TableSnapshot {
  const groups = new Map<string, EntryGroup>();
  const partitions: PartitionTable[] = [];
  const top = new TopFlows(topN);
  for (const [partition, view] of tables) {
    partitions.push({ partition, entries: view.count, limit: view.sysctl.nf_conntrack_max, stats: view.stats() });
    for (const f of view.list()) {
      const state = entryState(f);
      const key = `${partition}/${f.zone}/${f.proto}/${state}`;
      const g = groups.get(key);
      if (g) g.count++;
      else groups.set(key, { partition, zone: f.zone, proto: f.proto, state, count: 1 });
      top.offer(partition, f);
    }
  }
  partitions.sort((a, b) => a.partition - b.partition);
  return { takenAtMs: nowMs, groups: [...groups.values()], partitions, top: top.take() };
}
