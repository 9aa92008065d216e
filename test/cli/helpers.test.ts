/** --helper, list/events --expect and the configuration's helper rules, against the kernel's own text. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli as run } from './runCli';
import { loadConfig, rulesOf } from '../../cli/config';
import { parseHelperOption } from '../../cli/helperOptions';
import { formatExpectEvent } from '../../sinks/conntrackText';

const scenarios = join(__dirname, '..', 'fixtures', 'scenarios');


const lines = (name: string, file: string): string[] => readFileSync(join(scenarios, name, file), 'utf8').split('\n').filter((l) => l.trim());

/** An expectation line without its clock: the timestamp, and the timeout (returned apart). */
function split(line: string): [string, number] {
  const m = /^(?:\[[\d. ]+\]\s+(\[\w+\])\s+)?(\d+) (.*)$/.exec(line.trim());
  if (!m) throw new Error(`not an expectation line: ${line}`);
  return [`${m[1] ?? ''} ${m[3]}`, Number(m[2])];
}

function expectSameExpectations(ours: string[], kernel: string[], slack: number): void {
  expect(ours.map((l) => split(l)[0])).toEqual(kernel.map((l) => split(l)[0]));
  ours.forEach((l, k) => expect(Math.abs(split(kernel[k])[1] - split(l)[1])).toBeLessThanOrEqual(slack));
}

describe('--helper on the capture commands', () => {
  test('events print helper=ftp on the master, as conntrack -E -o extended does', () => {
    const r = run('events', join(scenarios, 'ftp_active', 'packets.pcap'), '--helper', 'ftp:tcp/21');
    expect(r.code).toBe(0);
    const norm = (l: string): string => l.replace(/^\[\d+\.\d+\]\s+/, '').replace(/ id=\d+$/, '').replace(/ (SYN_SENT|ESTABLISHED|SYN_RECV|FIN_WAIT|LAST_ACK|TIME_WAIT|CLOSE) /, ' $1 ').replace(/tcp {6}6 \d+ /, 'tcp 6 T ');
    expect(r.out.map(norm)).toEqual(lines('ftp_active', 'events.txt').map(norm));
    expect(r.out.filter((l) => l.includes('helper=ftp'))).toHaveLength(3);
  });

  test('events --expect is conntrack -E expect, line for line', () => {
    for (const name of ['ftp_active', 'ftp_epsv_ipv6', 'ftp_pasv_replaced', 'tftp_rrq']) {
      const helper = name.startsWith('tftp') ? 'tftp:udp/69' : 'ftp:tcp/21';
      const r = run('events', join(scenarios, name, 'packets.pcap'), '--helper', helper, '--expect');
      expect(r.code).toBe(0);
      expectSameExpectations(r.out, lines(name, 'expect-events.txt'), 1);
    }
  });

  test('list --expect is conntrack -L expect (a consumed expectation is gone); --json too', () => {
    const capture = join(scenarios, 'ftp_pasv_replaced', 'packets.pcap');
    const r = run('list', capture, '--helper', 'ftp:tcp/21', '--expect');
    const kernel = lines('ftp_pasv_replaced', 'expect.txt');
    expect(kernel).toHaveLength(1);
    // The kernel listed it a settling second or two after the last packet.
    expectSameExpectations(r.out, kernel, 2);
    expect(r.err).toContain('conntrack v1.4 (conntrack-tools): 1 expectation entries have been shown.');
    expect(run('list', join(scenarios, 'ftp_active', 'packets.pcap'), '--helper', 'ftp:tcp/21', '--expect').out).toEqual([]);
    const json = run('list', capture, '--helper', 'ftp:tcp/21', '--expect', '--json').out.map((l) => JSON.parse(l));
    expect(json).toEqual([expect.objectContaining({ proto: 'tcp', src: '198.18.0.1', dst: '198.18.0.2', sport: null, dport: 50012, helper: 'ftp', master: expect.objectContaining({ sport: 43500, dport: 21 }) })]);
  });

  test('--expect with --workers runs one thread, prints what one thread prints and says so', () => {
    const capture = join(scenarios, 'ftp_pasv_replaced', 'packets.pcap');
    for (const command of ['events', 'list']) {
      const one = run(command, capture, '--helper', 'ftp:tcp/21', '--expect');
      const two = run(command, capture, '--helper', 'ftp:tcp/21', '--expect', '--workers', '2');
      expect(two.code).toBe(0);
      expect(two.out).toEqual(one.out);
      expect(one.err.join('\n')).not.toContain('--expect runs in one thread');
      expect(two.err).toContain('ctflow: --expect runs in one thread (expectations are numbered and checked for clashes by one engine); --workers is not used');
    }
  });

  test('list shows helper= and the use count the data connection adds, like the kernel table', () => {
    const r = run('list', join(scenarios, 'ftp_active', 'packets.pcap'), '--helper', 'ftp:tcp/21');
    const strip = (l: string): string => l.replace(/^(\S+ +\d+ \S+ +\d+ )\d+ /, '$1').replace(/ id=\d+$/, '');
    expect(r.out.map(strip).sort()).toEqual(lines('ftp_active', 'table.txt').map(strip).sort());
  });

  test('without --helper the data connection is NEW; with it RELATED', () => {
    const capture = join(scenarios, 'ftp_passive', 'packets.pcap');
    const ctstates = (...extra: string[]) => run('classify', capture, ...extra).out.map((l) => JSON.parse(l).ctstate);
    expect(ctstates()[19]).toBe('NEW');
    expect(ctstates('--helper', 'ftp:tcp/21')[19]).toBe('RELATED');
    expect(ctstates('--helper', 'ftp:tcp/2121')[19]).toBe('NEW'); // assigned to another port only
  });

  test('bad --helper values are named', () => {
    const capture = join(scenarios, 'ftp_active', 'packets.pcap');
    expect(run('classify', capture, '--helper', 'ftp:udp/21').err).toEqual(['ctflow: --helper ftp:udp/21: the ftp helper tracks tcp, not udp']);
    expect(run('classify', capture, '--helper', 'sip:udp/5060').err[0]).toMatch(/unknown helper 'sip' \(ctflow has ftp, tftp\)/);
    expect(run('classify', capture, '--helper', 'ftp:tcp/99999').err[0]).toMatch(/--helper ftp:tcp\/99999: .*not a port/);
    expect(run('classify', capture, '--helper', 'ftp').code).toBe(1);
  });

  test('parseHelperOption is the oracle\'s NAME:PROTO/PORT', () => {
    expect(parseHelperOption('tftp:udp/69')).toEqual({ helper: 'tftp', match: { proto: 17, dport: 69 }, name: '--helper tftp:udp/69' });
  });
});

describe('engine.rules.helpers in the configuration', () => {
  function file(text: string): string {
    const path = join(mkdtempSync(join(tmpdir(), 'ctflow-helpers-')), 'ctflow.yaml');
    writeFileSync(path, text);
    return path;
  }

  test('rules with addresses, ports and zones become helper rules, in order', () => {
    const c = loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: ftp, dport: 21, dst: 192.0.2.0/24 }\n      - { helper: tftp, proto: udp, dport: 69, zone: 3, family: ipv6 }\n'));
    const rules = rulesOf(c).helpers ?? [];
    expect(rules.map((r) => [r.helper, r.name, r.match.proto, r.match.dport, r.match.dst?.text, r.match.zone, r.match.family])).toEqual([
      ['ftp', 'engine.rules.helpers[0]', 6, 21, '192.0.2.0/24', undefined, undefined],
      ['tftp', 'engine.rules.helpers[1]', 17, 69, undefined, 3, 6],
    ]);
    expect(rulesOf(loadConfig()).helpers).toBeUndefined();
  });

  test('errors name the rule and the problem', () => {
    expect(() => loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: ftp, dst: 300.1.1.1 }\n'))).toThrow(/engine\.rules\.helpers\[0\] \(ftp\): '300\.1\.1\.1' is not an IP address/);
    expect(() => loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: ftp, dport: 21 }\n      - { helper: tftp, proto: tcp }\n'))).toThrow(/engine\.rules\.helpers\[1\] \(tftp\): the tftp helper tracks udp, not tcp/);
    expect(() => loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: h323 }\n'))).toThrow(/engine\.rules\.helpers\[0\]: unknown helper 'h323'/);
    expect(() => loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: ftp, port: 21 }\n'))).toThrow(/engine\.rules\.helpers\.0: .*'port'/);
    expect(() => loadConfig(file('engine:\n  rules:\n    helpers:\n      - { helper: ftp, src: 2001:db8::/32, family: ipv4 }\n'))).toThrow(/helpers\[0\] \(ftp\): src 2001:db8::\/32 is not ipv4/);
  });
});

describe('expectation text', () => {
  test('the event timestamp keeps conntrack-tools\' left-aligned microseconds', () => {
    const line = formatExpectEvent({
      type: 'NEW',
      tsUs: 1795555089_058273,
      expectation: { zone: 0, family: 4, proto: 6, src: '198.18.0.1', dst: '198.18.0.2', sport: 0, sportExact: false, dport: 50000, flags: 0, helper: 'ftp', masterId: 1, master: { src: '198.18.0.1', dst: '198.18.0.2', sport: 43000, dport: 21 }, timeout: 300 },
    });
    expect(line).toBe(lines('ftp_passive', 'expect-events.txt')[0]);
  });
});
