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

/** What the table series need of some partitions' tables. */
export interface TableParts {
  groups: EntryGroup[];
  partitions: PartitionTable[];
  top: RankedFlow[];
}

export interface TableSnapshot extends TableParts {
  /** Wall time it was taken (ms). */
  takenAtMs: number;
}

/** One pass over the tables given (in partition order). */
export function tableParts(tables: Iterable<[number, TableView]>, topN: number): TableParts {
  const groups = new Map<string, EntryGroup>();
  const partitions: PartitionTable[] = [];
  const top = new TopFlows(topN);
  for (const [partition, view] of tables) {
    partitions.push(partitionTable(partition, view));
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
  return { groups: [...groups.values()], partitions, top: top.take() };
}

export function partitionTable(partition: number, view: TableView): PartitionTable {
  return { partition, entries: view.count, limit: view.sysctl.nf_conntrack_max, stats: view.stats() };
}

/**
 * The parts of disjoint sets of partitions as one pass over all of them would give them: groups
 * in partition order (a stable sort keeps each partition's own order), and the top N of the
 * union, which is within the union of each set's top N.
 */
export function mergeTableParts(parts: readonly TableParts[], topN: number): TableParts {
  if (parts.length === 1) return parts[0];
  const top = new TopFlows(topN);
  for (const p of parts) for (const r of p.top) top.offer(r.partition, r.flow);
  return {
    groups: parts.flatMap((p) => p.groups).sort((a, b) => a.partition - b.partition),
    partitions: parts.flatMap((p) => p.partitions).sort((a, b) => a.partition - b.partition),
    top: top.take(),
  };
}
