/**
 * The fleet table rebuilt from a kernel's own event stream must equal the table that kernel
 * listed afterwards (timeouts aside): the oracle's events.txt against its table.txt, for the
 * crafted scenarios here and for every public capture in ../shared (written by other people, so
 * read in place and never copied into the project).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFlowEvents } from '../../../ingest/flowEvents';
import { FleetTable } from '../../../processors/fleet/fleetTable';
import type { FleetRecord } from '../../../processors/fleet/fleetTable';
import { STATUS } from '../../../processors/flow';
import type { Tuple } from '../../../processors/flow';
import { formatEntry } from '../../../sinks/conntrackText';

const scenarios = resolve(__dirname, '..', '..', 'fixtures', 'scenarios');
const publicRoot = resolve(__dirname, '..', '..', '..', '..', 'shared', 'captures', 'public-oracle');

const tupleText = (t: Tuple): string => `${t.src}>${t.dst} ${t.icmp ? `icmp ${t.icmp.type}/${t.icmp.code}/${t.icmp.id}` : `${t.sport}>${t.dport}`}`;

/** What conntrack -L shows of an entry, timeouts aside. */
function shown(r: FleetRecord, withCounters: boolean): string {
  const flags = [r.status & STATUS.SEEN_REPLY ? '' : 'UNREPLIED', r.status & STATUS.ASSURED ? 'ASSURED' : ''].filter(Boolean).join(',');
  const acct = withCounters ? ` ${r.counters.orig.packets}/${r.counters.orig.bytes} ${r.counters.reply.packets}/${r.counters.reply.bytes}` : '';
  return `id=${r.id} zone=${r.zone} ipv${r.family} ${r.proto} ${r.state ?? '-'} ${tupleText(r.orig)} | ${tupleText(r.reply)} [${flags}] helper=${r.helper ?? ''}${acct}`;
}

/**
 * A conntrack -L line without what the events cannot tell or formatEntry does not print: the
 * timeout (it runs down between the last event and the listing), use= (the helper's expectation
 * holds a reference), mark= (printed by -E only when set), delta-time= and helper= (compared in
 * the structured form above).
 */
const normalise = (line: string): string =>
  line
    .trim()
    .replace(/^(ipv[46]\s+\d+ \S+\s+\d+ )\d+ /, '$1T ')
    .replace(/ (use|mark|delta-time|helper)=\S+/g, '');

interface Rebuild {
  ours: string[];
  kernel: string[];
  oursText: string[];
  kernelText: string[];
  errors: number;
}

/** Applies events.txt to a fresh table and lists both sides as comparable lines, sorted. */
function rebuild(dir: string): Rebuild {
  const events = parseFlowEvents(readFileSync(join(dir, 'events.txt'), 'utf8'));
  const listing = parseFlowEvents(readFileSync(join(dir, 'table.txt'), 'utf8'));
  const table = new FleetTable();
  events.events.forEach((e) => table.apply(e));
  const kernelTable = new FleetTable();
  listing.events.forEach((e) => kernelTable.apply(e));
  const acct = listing.events.some((e) => e.flow.counters !== undefined);
  const kernelLines = readFileSync(join(dir, 'table.txt'), 'utf8').split('\n').filter((l) => l.trim());
  return {
    ours: table.list().map((r) => shown(r, acct)).sort(),
    kernel: kernelTable.list().map((r) => shown(r, acct)).sort(),
    oursText: table.list().map((r) => normalise(formatEntry(r, { acct }))).sort(),
    kernelText: kernelLines.map(normalise).sort(),
    errors: events.errors.length + listing.errors.length,
  };
}

const withTables = (root: string): string[] =>
  existsSync(root)
    ? readdirSync(root)
        .filter((n) => statSync(join(root, n)).isDirectory() && existsSync(join(root, n, 'events.txt')) && existsSync(join(root, n, 'table.txt')))
        .sort()
    : [];

describe('the fleet table rebuilds a kernel table from its events', () => {
  test.each(withTables(scenarios))('scenario %s', (name) => {
    const r = rebuild(join(scenarios, name));
    expect(r.errors).toBe(0);
    expect(r.ours).toEqual(r.kernel);
    expect(r.oursText).toEqual(r.kernelText);
  });

  test('the scenarios leave entries to compare, with NAT, helpers, ICMP, SCTP, GRE and IPv6 among them', () => {
    const all = withTables(scenarios).flatMap((name) => rebuild(join(scenarios, name)).kernelText);
    expect(all.length).toBeGreaterThan(30);
    for (const needle of ['dst=198.18.100.1', ' sctp ', ' gre ', ' icmp ', ' icmpv6 ', 'ipv6 ', ' unknown ']) expect(all.some((l) => l.includes(needle))).toBe(true);
  });
});

const publicDirs = withTables(publicRoot);
const maybe = publicDirs.length ? test : test.skip;
maybe(`public captures: every kernel table is rebuilt from its events${publicDirs.length ? ` (${publicDirs.length} captures)` : ' (skipped: ../shared/captures/public-oracle is absent)'}`, () => {
  const bad: string[] = [];
  let entries = 0;
  for (const name of publicDirs) {
    const r = rebuild(join(publicRoot, name));
    entries += r.kernel.length;
    const missing = [...r.kernel.filter((l) => !r.ours.includes(l)), ...r.kernelText.filter((l) => !r.oursText.includes(l))];
    const extra = [...r.ours.filter((l) => !r.kernel.includes(l)), ...r.oursText.filter((l) => !r.kernelText.includes(l))];
    if (r.errors || missing.length || extra.length) bad.push(`${name}: ${r.errors} parse errors\n  kernel only: ${missing.join('\n    ')}\n  ours only: ${extra.join('\n    ')}`);
  }
  if (bad.length) throw new Error(bad.join('\n'));
  expect(entries).toBeGreaterThan(100);
});
