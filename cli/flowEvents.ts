/**
 * `ctflow list --flow-events FILE`: the table that hosts' own conntrack events describe, built by
 * the fleet table (no packets, no state machine), printed like `conntrack -L -o extended,id` or as
 * JSON lines. FILE is conntrack -E/-L text, conntrack XML or ctflow event JSON
 * (docs/flow-events.md); `-` reads standard input. Given several times, each file is one host
 * (named by its path as given) and gets a zone of its own. Timeouts are what is left, at the time of
 * the last event read, of the last timeout each entry reported.
 */
import { readFileSync } from 'node:fs';
import { parseFlowEvents } from '../ingest/flowEvents';
import { FleetTable } from '../processors/fleet/fleetTable';
import { flowJson, formatEntry } from '../sinks/conntrackText';
import * as commands from './commands';
import type { CommonOptions, Output } from './commands';
import { flowSelector } from './filterOptions';
import type { FilterOptionValues } from './filterOptions';

export type ListOptions = CommonOptions &
  FilterOptionValues & {
    json?: boolean;
    expect?: boolean;
    flowEvents?: string[];
  };

/** `list`: from a capture, or from flow events; exactly one of the two. */
export function list(path: string | undefined, o: ListOptions, io: Output): void | Promise<void> {
  const files = o.flowEvents ?? [];
  if (path !== undefined && files.length) throw new Error('list: give a capture or --flow-events, not both');
  if (path === undefined && !files.length) throw new Error('list: give a capture, or --flow-events FILE to list what hosts reported');
  if (path !== undefined) return commands.list(path, o, io);
  listFlowEvents(files, o, io);
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new Error(`--flow-events ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function listFlowEvents(files: string[], o: ListOptions, io: Output): void {
  if (o.sysctl.length || o.shards !== '1' || o.helper?.length || o.expect) throw new Error('list --flow-events: --sysctl, --shards, --helper and --expect apply to captures only');
  if (o.notrack?.length || o.nat?.length) throw new Error('list --flow-events: --notrack and --nat apply to captures only');
  if (o.zoneFrom !== undefined || o.zoneMap?.length || o.zoneDefault !== undefined) throw new Error('list --flow-events: the --zone-* options apply to captures; each host is a zone of its own');
  const selected = flowSelector(o);
  const table = new FleetTable();
  let bad = 0;
  for (const file of files) {
    const parsed = parseFlowEvents(readInput(file), files.length > 1 ? { host: file } : undefined);
    for (const e of parsed.errors) io.err(`${file}:${e.line}: ${e.reason}: ${e.text}`);
    bad += parsed.errors.length;
    parsed.events.forEach((e) => table.apply(e));
  }
  // Timeouts as conntrack -L would show them at the last event read: what is left of the last reported one.
  const flows = table.list(table.clockUs).filter(selected);
  // packets=/bytes= as conntrack prints them with nf_conntrack_acct=1: when the hosts reported any.
  const text = { acct: flows.some((f) => f.countersKnown) };
  if (o.json) flows.forEach((f) => io.out(JSON.stringify(flowJson(f))));
  else flows.forEach((f) => io.out(formatEntry(f, text)));
  if (bad) io.err(`ctflow: skipped ${bad} input ${bad === 1 ? 'line that is not a flow event' : 'lines that are not flow events'} (see above)`);
  io.err(`conntrack v1.4 (conntrack-tools): ${flows.length} flow entries have been shown.`);
}
