/**
 * What the live API and the table metrics ask of the partitions' tables, answered over any set of
 * them and merged: the same functions answer in this thread and in a partition worker (for the
 * partitions it holds), so a table read across threads gives what one thread's read gives. Each
 * answer is small whatever the table's size: a page's worth of flows, counters, the top N.
 */
import type { FlowHits, FlowQuery } from '../http/flowQuery';
import { matchingFlows, mergeFlowHits } from '../http/flowQuery';
import type { TableView } from './observer';
import { mergeTableParts, partitionTable, tableParts } from './tableSnapshot';
import type { PartitionTable, TableParts } from './tableSnapshot';

export type TableRequest = { kind: 'stats' } | { kind: 'flows'; query: FlowQuery } | { kind: 'snapshot'; topN: number };

interface Answers {
  stats: PartitionTable[];
  flows: FlowHits;
  snapshot: TableParts;
}

export type TableAnswer<R extends TableRequest> = Answers[R['kind']];

/** `tables` in partition order. */
export function answerTables<R extends TableRequest>(tables: ReadonlyArray<[number, TableView]>, request: R): TableAnswer<R> {
  const r = request as TableRequest;
  switch (r.kind) {
    case 'stats':
      return tables.map(([partition, view]) => partitionTable(partition, view)) as TableAnswer<R>;
    case 'flows':
      return matchingFlows(tables, r.query) as TableAnswer<R>;
    case 'snapshot':
      return tableParts(tables, r.topN) as TableAnswer<R>;
  }
}

/** The answers for disjoint sets of partitions as one answer for all of them. */
export function mergeAnswers<R extends TableRequest>(request: R, answers: ReadonlyArray<TableAnswer<R>>): TableAnswer<R> {
  const r = request as TableRequest;
  switch (r.kind) {
    case 'stats':
      return (answers as readonly PartitionTable[][]).flat().sort((a, b) => a.partition - b.partition) as TableAnswer<R>;
    case 'flows':
      return mergeFlowHits(answers as readonly FlowHits[], r.query) as TableAnswer<R>;
    case 'snapshot':
      return mergeTableParts(answers as readonly TableParts[], r.topN) as TableAnswer<R>;
  }
}

/** A table that could not be read: the thread holding it is gone, or did not answer in time. */
export class TableReadError extends Error {}
