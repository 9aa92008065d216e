/**
 * conntrack's filters on the command line: `list` (captures and --flow-events) and `events`
 * (with -e). Expected lines are picked from the unfiltered output's own text, so the test does
 * not run the filter code to decide what it should have shown.
 */
import { join } from 'node:path';
import { runCli as run } from './runCli';

const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const flowEvents = join(__dirname, '..', 'fixtures', 'flowEvents', 'table.txt');
const scenarios = join(__dirname, '..', 'fixtures', 'scenarios');


/** One listing line's tuples, read from conntrack's text. */
function tuples(line: string): { orig: Record<string, string>; reply: Record<string, string> } {
  const replyAt = line.indexOf(' src=', line.indexOf(' src=') + 1);
  const side = (text: string) => Object.fromEntries([...text.matchAll(/\b(src|dst|sport|dport)=(\S+)/g)].map((m) => [m[1], m[2]]));
  return { orig: side(line.slice(0, replyAt)), reply: side(line.slice(replyAt)) };
}

const shownCount = (err: string[]): number => Number(/(\d+) flow entries have been shown/.exec(err.at(-1) ?? '')?.[1]);

describe('ctflow list CAPTURE with filters', () => {
  const all = run('list', sample).out;

  test('-p tcp --state TIME_WAIT shows exactly the TCP entries in TIME_WAIT, and counts them', () => {
    const want = all.filter((l) => /^ipv4\s+2 tcp\s+6 \d+ TIME_WAIT /.test(l));
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(all.length);
    const r = run('list', sample, '-p', 'tcp', '--state', 'TIME_WAIT');
    expect(r.code).toBe(0);
    expect(r.out).toEqual(want);
    expect(shownCount(r.err)).toBe(want.length);
  });

  test('-p tcp --state ESTABLISHED, and the conntrack long names (--orig-port-dst) mean the same', () => {
    const want = all.filter((l) => / tcp\s+6 \d+ ESTABLISHED /.test(l) && tuples(l).orig.dport === '443');
    expect(want.length).toBeGreaterThan(0);
    expect(run('list', sample, '-p', 'tcp', '--state', 'ESTABLISHED', '--dport', '443').out).toEqual(want);
    expect(run('list', sample, '-p', 'tcp', '--state', 'ESTABLISHED', '--orig-port-dst', '443').out).toEqual(want);
  });

  test('-s with a CIDR prefix, -u and --json together: all must hold', () => {
    const want = all.filter((l) => /^192\.0\.2\.(1[6-9]|2[0-3])$/.test(tuples(l).orig.src) && l.includes('[ASSURED]'));
    expect(want.length).toBeGreaterThan(0);
    const r = run('list', sample, '-s', '192.0.2.16/29', '-u', 'ASSURED', '--json');
    expect(r.out.map((l) => JSON.parse(l).id)).toEqual(want.map((l) => Number(/ id=(\d+)$/.exec(l)![1])));
  });

  test('-f ipv6 and -w', () => {
    expect(run('list', sample, '-f', 'ipv6').out).toEqual(all.filter((l) => l.startsWith('ipv6')));
    expect(run('list', sample, '-w', '3').out).toEqual([]);
  });
});

describe('ctflow events CAPTURE -e', () => {
  const all = run('events', sample).out;

  test('-e NEW,DESTROY leaves out the UPDATE events and keeps the rest in order', () => {
    const r = run('events', sample, '-e', 'NEW,DESTROY');
    expect(r.code).toBe(0);
    expect(r.out).toEqual(all.filter((l) => !l.includes('[UPDATE]')));
    expect(r.out.some((l) => l.includes('[NEW]'))).toBe(true);
    expect(r.out.some((l) => l.includes('[DESTROY]'))).toBe(true);
  });

  test('-e UPDATES with -p udp: the filters apply to each event as conntrack -E applies them', () => {
    const want = all.filter((l) => l.includes('[UPDATE]') && / udp\s+17 /.test(l));
    expect(want.length).toBeGreaterThan(0);
    expect(run('events', sample, '-e', 'UPDATES', '-p', 'udp').out).toEqual(want);
  });
});

describe('ctflow list --flow-events with NAT filters (real conntrack output of NAT gateways)', () => {
  const all = run('list', '--flow-events', flowEvents).out;
  const snat = (l: string) => tuples(l).reply.dst !== tuples(l).orig.src;
  const dnat = (l: string) => tuples(l).reply.src !== tuples(l).orig.dst;

  test('--src-nat, --dst-nat and --any-nat show the entries whose reply tuple was rewritten on that side', () => {
    expect(all.filter(snat).length).toBeGreaterThan(0);
    expect(all.filter(dnat).length).toBeGreaterThan(0);
    expect(run('list', '--flow-events', flowEvents, '--src-nat').out).toEqual(all.filter(snat));
    expect(run('list', '--flow-events', flowEvents, '--dst-nat').out).toEqual(all.filter(dnat));
    expect(run('list', '--flow-events', flowEvents, '--any-nat').out).toEqual(all.filter((l) => snat(l) || dnat(l)));
  });

  test('with an address: NATed to it (source) or from it (destination)', () => {
    const to = all.filter((l) => snat(l) && tuples(l).reply.dst === '203.0.113.1');
    expect(to.length).toBeGreaterThan(0);
    expect(run('list', '--flow-events', flowEvents, '--src-nat', '203.0.113.1').out).toEqual(to);
    expect(run('list', '--flow-events', flowEvents, '--dst-nat', '203.0.113.2:8080').out).toEqual(all.filter((l) => dnat(l) && tuples(l).reply.sport === '8080'));
    expect(run('list', '--flow-events', flowEvents, '--src-nat', '203.0.113.99').out).toEqual([]);
  });

  test("the kernel oracle's SNAT and DNAT scenarios: the translated entry, and only it", () => {
    const snatTable = join(scenarios, 'nat_snat', 'table.txt');
    const dnatTable = join(scenarios, 'nat_dnat', 'table.txt');
    expect(run('list', '--flow-events', snatTable, '--src-nat', '198.18.200.1').out.map((l) => tuples(l).orig.src)).toEqual(['198.18.0.1']);
    expect(run('list', '--flow-events', snatTable, '--dst-nat').out).toEqual([]);
    const d = run('list', '--flow-events', dnatTable, '--dst-nat').out;
    expect(d.map((l) => [tuples(l).orig.dst, tuples(l).reply.src])).toEqual([['198.18.100.1', '198.18.0.2']]);
  });
});

describe('bad values are refused, naming the option and the value', () => {
  test.each([
    [['-s', '10.0.0.300'], '--src', '10.0.0.300', 2],
    [['--dport', '70000'], '--dport', '70000', 2],
    [['--state', 'BOGUS'], '--state', 'BOGUS', 2],
    [['-u', 'ASSURED,BOGUS'], '--status', 'BOGUS', 2],
    [['-w', 'x'], '--zone', 'x', 2],
    [['-f', 'ipv5'], '--family', 'ipv5', 2],
    [['-p', 'udp', '--state', 'ESTABLISHED'], '--state', 'ESTABLISHED', 1],
    [['--mask-src', '255.0.0.0'], '--mask-src', '255.0.0.0', 1],
    [['-f', 'ipv6', '-d', '10.0.0.2'], '--dst', '10.0.0.2', 1],
    [['-p', 'icmp', '--sport', '80'], '--sport', '80', 1],
  ])('list %j', (args, option, value, code) => {
    const r = run('list', sample, ...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.out).toEqual([]);
    const text = r.err.join('\n');
    expect(text).toContain(option as string);
    expect(text).toContain(`'${value}'`);
  });

  test('events -e with an unknown type', () => {
    const r = run('events', sample, '-e', 'NEW,CHANGED');
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(/--event-mask.*'CHANGED'/s);
  });

  test('--src-nat takes an optional address: a capture after it is refused as one, with a hint', () => {
    const r = run('list', '--src-nat', sample);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(/--src-nat.*'.*sample\.pcap'.*give the capture before this option/s);
    expect(run('list', sample, '--src-nat').code).toBe(0);
  });

  test('a filter and its conntrack alias together', () => {
    const r = run('list', sample, '-s', '10.0.0.1', '--orig-src', '10.0.0.2');
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toContain('--src and --orig-src');
  });
});
