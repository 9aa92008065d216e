/**
 * ctflow's filters against the real conntrack(8): scripts/conntrackFilters.sh created entries in a
 * private namespace with `conntrack -I` (NAT ones through nf_nat), listed them (table.txt) and
 * recorded which ids `conntrack -L ARGS` showed for each filter (cases.txt). Here the same ARGS
 * go through ctflow's own option parser and FlowFilter over the listed entries.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { addFilterOptions, eventMaskOf, flowFilterOf } from '../../../cli/filterOptions';
import { parseFlowEvents } from '../../../ingest/flowEvents';
import type { FlowSnapshot } from '../../../ingest/flowEvents';
import { matchesFlow, selectsEvent } from '../../../processors/filter/flowFilter';
import type { FlowEvent, FlowRecord } from '../../../processors/flow';

const dir = join(__dirname, '..', '..', 'fixtures', 'conntrackFilters');

const record = (s: FlowSnapshot): FlowRecord => ({
  id: s.id!,
  zone: s.zone,
  family: s.family,
  proto: s.proto,
  state: s.state,
  timeout: s.timeout ?? 0,
  orig: s.orig,
  reply: s.reply,
  status: s.status,
  counters: { orig: { packets: 0, bytes: 0 }, reply: { packets: 0, bytes: 0 } },
  startUs: 0,
  lastUs: 0,
});
const table: FlowRecord[] = parseFlowEvents(readFileSync(join(dir, 'table.txt'), 'utf8')).events.map((e) => record(e.flow));

/** cases.txt and event-cases.txt: "$ ARGS", then one line per entry or event shown (or "error"). */
function readCases<T>(file: string, item: (line: string) => T): Map<string, T[] | 'error'> {
  const out = new Map<string, T[] | 'error'>();
  let current = '';
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    if (line.startsWith('$ ')) out.set((current = line.slice(2)), []);
    else if (line === 'error') out.set(current, 'error');
    else if (line) (out.get(current) as T[]).push(item(line));
  }
  return out;
}
const cases = readCases('cases.txt', Number);

/** ctflow's answer for one argument string: the ids it selects, or 'error'. */
function ours(args: string): number[] | 'error' {
  const cmd = addFilterOptions(new Command('list')).exitOverride().configureOutput({ writeErr: () => undefined });
  try {
    cmd.parse(args.split(' '), { from: 'user' });
    const filter = flowFilterOf(cmd.opts());
    return table.filter((f) => matchesFlow(filter, f)).map((f) => f.id).sort((a, b) => a - b);
  } catch {
    return 'error';
  }
}

const kernel = (args: string): number[] => {
  const v = cases.get(args);
  if (!Array.isArray(v)) throw new Error(`no recorded ids for '${args}'`);
  return v;
};
const byId = new Map(table.map((f) => [f.id, f]));
const isIcmp = (id: number): boolean => byId.get(id)!.proto === 1;
const natArgs = (args: string): boolean => /--(src|dst|any)-nat/.test(args);

/** conntrack 1.4.7 shows nothing for --any-nat ADDR with any other filter (see below); those are checked apart. */
const anyNatWithOthers = (args: string): boolean => /--any-nat \S/.test(args) && args.split(' ').length > 2;

test('the fixture is what the script recorded: every entry parsed, and a few dozen cases', () => {
  expect(table.length).toBe(readFileSync(join(dir, 'table.txt'), 'utf8').trim().split('\n').length);
  expect(cases.size).toBeGreaterThan(50);
  expect([...cases.values()].filter((v) => v === 'error').length).toBeGreaterThan(3);
});

describe.each([...cases.keys()].filter((a) => !anyNatWithOthers(a)))('conntrack -L %s', (args) => {
  test('ctflow selects the same entries (or refuses the same arguments)', () => {
    const want = cases.get(args)!;
    const got = ours(args);
    if (want === 'error' || got === 'error' || !natArgs(args)) {
      expect(got).toEqual(want);
      return;
    }
    // NAT filters: exact on every entry but ICMP ones (conntrack's ICMP artefact, next test).
    expect(got.filter((id) => !isIcmp(id))).toEqual(want.filter((id) => !isIcmp(id)));
    expect(want).toEqual(expect.arrayContaining(got));
  });
});

test("conntrack's NAT test compares an ICMP tuple's id with the type/code field: pings show under NAT filters that did not translate them; ctflow keeps to the tuples' meaning", () => {
  // Only source-NATed: its destination was not translated, yet conntrack lists it under --dst-nat.
  const snatPing = table.find((f) => f.proto === 1 && f.reply.dst !== f.orig.src)!;
  expect(snatPing.reply.src).toBe(snatPing.orig.dst);
  expect(kernel('--dst-nat')).toContain(snatPing.id);
  expect(ours('--dst-nat')).not.toContain(snatPing.id);
  expect(ours('--src-nat')).toContain(snatPing.id);
  // Passed nf_nat untranslated (conntrack -I --src-nat to its own address): conntrack lists it under both.
  const markedPing = table.find((f) => f.proto === 1 && f.orig.src === '10.0.0.12')!;
  expect([markedPing.reply.dst, markedPing.reply.src]).toEqual([markedPing.orig.src, markedPing.orig.dst]);
  expect([kernel('--src-nat'), kernel('--dst-nat')].map((ids) => ids.includes(markedPing.id))).toEqual([true, true]);
  expect(ours('--any-nat')).not.toContain(markedPing.id);
});

describe.each([...cases.keys()].filter(anyNatWithOthers))('conntrack 1.4.7 -L %s', (args) => {
  test('shows nothing; ctflow ANDs as documented: what --any-nat ADDR and the rest each select', () => {
    const natPart = /--any-nat \S+/.exec(args)![0];
    const rest = args.replace(natPart, '').trim().replace(/ +/g, ' ');
    expect(kernel(args)).toEqual([]);
    const both = kernel(natPart).filter((id) => kernel(rest).includes(id));
    expect(both.length).toBeGreaterThan(0);
    expect(ours(args)).toEqual(both);
  });
});

describe('conntrack -E with filters and -e', () => {
  const events: FlowEvent[] = parseFlowEvents(readFileSync(join(dir, 'events.txt'), 'utf8')).events.map((e) => ({
    type: e.type,
    tsUs: 0,
    flow: record(e.flow),
    protoinfo: e.flow.state !== undefined,
  }));
  const eventCases = readCases('event-cases.txt', (line) => line);
  const shown = (args: string): string[] => {
    const cmd = addFilterOptions(new Command('events'), { eventMask: true }).exitOverride();
    cmd.parse(args.split(' '), { from: 'user' });
    const filter = flowFilterOf(cmd.opts());
    const mask = eventMaskOf(cmd.opts());
    return events.filter((e) => selectsEvent(filter, mask, e)).map((e) => `${e.type} ${e.flow.id}`);
  };

  test('the recording holds every kind of event', () => {
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['NEW', 'UPDATE', 'DESTROY']));
    expect(eventCases.size).toBeGreaterThan(5);
  });

  test.each([...eventCases.keys()])('conntrack -E %s: ctflow shows the same events, in order', (args) => {
    const want = eventCases.get(args) as string[];
    expect(want.length).toBeGreaterThan(0);
    const got = shown(args);
    if (!natArgs(args)) {
      expect(got).toEqual(want);
      return;
    }
    // NAT filters: exact but for conntrack's ICMP artefact (above).
    expect(got.filter((l) => !isIcmp(idOf(l)))).toEqual(want.filter((l) => !isIcmp(idOf(l))));
    expect(want).toEqual(expect.arrayContaining(got));
  });

  const idOf = (line: string): number => Number(line.split(' ')[1]);
});
