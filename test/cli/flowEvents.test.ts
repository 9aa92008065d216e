/** `ctflow list --flow-events FILE`: the table hosts' own conntrack events describe. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli as run } from './runCli';

const fixtures = join(__dirname, '..', 'fixtures', 'flowEvents');
const scenarios = join(__dirname, '..', 'fixtures', 'scenarios');
const tmp = mkdtempSync(join(tmpdir(), 'ctflow-flow-events-'));


function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

const lines = (name: string): string[] => readFileSync(join(fixtures, name), 'utf8').split('\n').filter((l) => l.trim());
/** Up to the flush that ends the fixture's events (the listing was taken there). */
const beforeFlush = lines('events.txt').filter((l) => !l.includes('[USERSPACE]'));
/** conntrack -L text without what -E cannot tell: mark (printed by -E only when set), delta-time, use. */
const normalise = (l: string): string => l.replace(/ (mark|delta-time|use)=\S+/g, '');

describe('ctflow list --flow-events', () => {
  test('prints the table like conntrack -L -o extended,id, timeouts as left at the last event', () => {
    const r = run('list', '--flow-events', file('events.txt', beforeFlush.join('\n')));
    expect(r.code).toBe(0);
    expect(r.out.map(normalise).map((l) => l.replace(/^(\S+\s+\d+ \S+\s+\d+ )\d+ /, '$1T ')).sort()).toEqual(
      lines('table.txt').map(normalise).map((l) => l.replace(/ packets=\d+ bytes=\d+/g, '').replace(/^(\S+\s+\d+ \S+\s+\d+ )\d+ /, '$1T ')).sort(),
    );
    // The last event is the SCTP one at 1795657411.27; the DNAT entry reported 120 s at 1795657409.05.
    expect(r.out.find((l) => l.includes('dport=80 '))).toMatch(/ 6 118 TIME_WAIT /);
    expect(r.err).toEqual(['conntrack v1.4 (conntrack-tools): 9 flow entries have been shown.']);
  });

  test('the XML listing prints as the text listing does, counters included', () => {
    const xml = run('list', '--flow-events', join(fixtures, 'table.xml'));
    const text = run('list', '--flow-events', join(fixtures, 'table.txt'));
    expect(xml.out).toHaveLength(9);
    expect(xml.out.every((l) => / packets=\d+ bytes=\d+ /.test(l))).toBe(true);
    // XML has no ICMP type/code/id (see conntrackXml.ts), so those two lines differ.
    const noIcmp = (out: string[]): string[] => out.filter((l) => !/ icmp/.test(l));
    expect(noIcmp(xml.out)).toEqual(noIcmp(text.out));
    expect(noIcmp(text.out).map(normalise).sort()).toEqual(noIcmp(lines('table.txt')).map(normalise).sort());
  });

  test('bad lines go to stderr with file, line and reason; the rest is listed', () => {
    const input = [beforeFlush[0], 'garbage here', beforeFlush[1], '{"type":"NEW"}'].join('\n');
    const path = file('bad.txt', input);
    const r = run('list', '--flow-events', path);
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    expect(r.err[0]).toBe(`${path}:2: expected ipv4, ipv6 or a protocol name and number, got 'garbage here': garbage here`);
    expect(r.err[1]).toMatch(new RegExp(`^${path}:4: l3: `));
    expect(r.err[2]).toBe('ctflow: skipped 2 input lines that are not flow events (see above)');
  });

  test('several files are several hosts, each its own zone', () => {
    const a = file('host-a.txt', beforeFlush.join('\n'));
    const b = file('host-b.xml', readFileSync(join(fixtures, 'events.xml'), 'utf8'));
    const r = run('list', '--flow-events', a, '--flow-events', b, '--json');
    expect(r.code).toBe(0);
    const flows = r.out.map((l) => JSON.parse(l));
    // b's events end with the flush, so only a's entries are left.
    expect(flows).toHaveLength(9);
    expect(new Set(flows.map((f) => f.zone)).size).toBe(1);
    expect(flows[0].zone).not.toBe(0);
    const both = run('list', '--flow-events', a, '--flow-events', file('host-c.txt', beforeFlush.join('\n')), '--json');
    expect(new Set(both.out.map((l) => JSON.parse(l).zone)).size).toBe(2);
    expect(both.out).toHaveLength(18);
  });

  test("ctflow's own events --json fed back give ctflow's own table", () => {
    const capture = join(scenarios, 'tcp_timewait_reopen', 'packets.pcap');
    const events = run('events', capture, '--json', '--sysctl', 'nf_conntrack_acct=1');
    expect(events.code).toBe(0);
    const fed = run('list', '--flow-events', file('own.jsonl', events.out.join('\n')), '--json');
    const direct = run('list', capture, '--json', '--sysctl', 'nf_conntrack_acct=1');
    expect(fed.code).toBe(0);
    // Counters and timeouts move between events without one (in the kernel and in ctflow), so they are left out.
    const shape = (l: string): unknown => {
      const { timeout: _t, last: _l, orig, reply, ...rest } = JSON.parse(l);
      return { ...rest, orig: { ...orig, packets: 0, bytes: 0 }, reply: { ...reply, packets: 0, bytes: 0 } };
    };
    expect(direct.out.length).toBeGreaterThan(0);
    expect(fed.out.map(shape)).toEqual(direct.out.map(shape));
  });

  test('exactly one of a capture and --flow-events, and no engine knobs with events', () => {
    const none = run('list');
    expect(none.code).toBe(1);
    expect(none.err).toEqual(['ctflow: list: give a capture, or --flow-events FILE to list what hosts reported']);
    const both = run('list', join(scenarios, 'icmp_echo', 'packets.pcap'), '--flow-events', join(fixtures, 'events.txt'));
    expect(both.err).toEqual(['ctflow: list: give a capture or --flow-events, not both']);
    expect(run('list', '--flow-events', join(fixtures, 'events.txt'), '--sysctl', 'nf_conntrack_acct=1').err).toEqual([
      'ctflow: list --flow-events: --sysctl, --shards, --helper and --expect apply to captures only',
    ]);
    expect(run('list', '--flow-events', join(fixtures, 'events.txt'), '--helper', 'ftp:tcp/21').code).toBe(1);
    expect(run('list', '--flow-events', join(tmp, 'missing.txt')).err).toEqual([`ctflow: --flow-events ${join(tmp, 'missing.txt')}: ENOENT`]);
    // The capture form still works as before.
    expect(run('list', join(scenarios, 'icmp_echo', 'packets.pcap')).code).toBe(0);
  });
});
