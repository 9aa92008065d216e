/** conntrack -E / -L text lines, as conntrack-tools prints them (fixtures made by the real tool). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtTextError, parseConntrackEvent, parseConntrackLine } from '../../../ingest/flowEvents/conntrackText';
import { FlowEventFormatError } from '../../../ingest/flowEvents/common';
import { STATUS } from '../../../processors/flow';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'flowEvents');
const realLines = readFileSync(join(fixtures, 'events.txt'), 'utf8').split('\n').filter((l) => l.trim());
const line = (pattern: RegExp): string => {
  const found = realLines.find((l) => pattern.test(l));
  if (!found) throw new Error(`no fixture line matches ${pattern}`);
  return found;
};

describe('parseConntrackLine', () => {
  test('every line the real listener printed parses', () => {
    expect(realLines.length).toBe(45);
    for (const l of realLines) expect(() => parseConntrackLine(l)).not.toThrow();
  });

  test('a NEW event: time, type, family, protocol, timeout, state, both tuples, [UNREPLIED], id', () => {
    const p = parseConntrackLine(line(/\[NEW\] ipv4 .* tcp .* dport=80 /));
    expect(p).toMatchObject({
      tsUs: 1795657409048518,
      type: 'NEW',
      family: 4,
      protoName: 'tcp',
      proto: 6,
      timeout: 120,
      state: 'SYN_SENT',
      orig: { src: '198.51.100.2', dst: '192.0.2.80', sport: 56362, dport: 80 },
      reply: { src: '203.0.113.2', dst: '198.51.100.2', sport: 8080, dport: 56362 },
      flags: ['UNREPLIED'],
      id: '1282069827',
      zone: 0,
    });
  });

  test('a DESTROY from a flush: counters per direction, delta-time, and the [USERSPACE] trailer', () => {
    const p = parseConntrackLine(line(/\[DESTROY\].*dport=80 .*USERSPACE/));
    expect(p.orig).toMatchObject({ packets: 5, bytes: 268 });
    expect(p.reply).toMatchObject({ packets: 3, bytes: 172 });
    expect(p.deltaTime).toBe(4);
    expect(p.flags).toEqual(['ASSURED', 'USERSPACE']);
    expect(p.id).toBe('1282069827');
    expect(p.state).toBe('TIME_WAIT');
  });

  test('zone= and mark=', () => {
    expect(parseConntrackLine(line(/\[NEW\].*dport=5353/)).zone).toBe(7);
    expect(parseConntrackLine(line(/\[NEW\].*dport=7 /)).mark).toBe(42);
  });

  test('ICMP tuples keep their own id apart from the entry id', () => {
    const p = parseConntrackLine(line(/\[NEW\] ipv6 .*icmpv6/));
    expect(p.family).toBe(6);
    expect(p.orig.icmp).toEqual({ type: 128, code: 0, id: 378 });
    expect(p.reply.icmp).toEqual({ type: 129, code: 0, id: 378 });
    expect(p.id).toBe('107060612');
  });

  test('a listing line: no time or type, mark=, delta-time=, use=', () => {
    const table = readFileSync(join(fixtures, 'table.txt'), 'utf8').split('\n').filter(Boolean);
    const p = parseConntrackLine(table.find((l) => l.includes('dport=7 '))!);
    expect(p.type).toBeUndefined();
    expect(p.tsUs).toBeUndefined();
    expect(p).toMatchObject({ timeout: 25, mark: 42, use: 1, deltaTime: 4 });
  });

  test('GRE keys in hex, protocols conntrack does not name, DCCP, helper=', () => {
    const gre = parseConntrackLine('ipv4     2 gre      47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x1a dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x1a mark=0 use=1 id=5');
    expect([gre.orig.sport, gre.orig.dport, gre.reply.dport]).toEqual([26, 0, 26]);
    const unknown = parseConntrackLine(' [NEW] ipv4     2 unknown  253 600 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 id=9');
    expect(unknown).toMatchObject({ proto: 253, protoName: 'unknown', timeout: 600, flags: ['UNREPLIED'] });
    const dccp = parseConntrackLine(' [UPDATE] ipv6     10 dccp     33 12 RESPOND src=2001:db8::1 dst=2001:db8::2 sport=5001 dport=6001 src=2001:db8::2 dst=2001:db8::1 sport=6001 dport=5001 id=3');
    expect(dccp).toMatchObject({ proto: 33, state: 'RESPOND', family: 6 });
    const ftp = parseConntrackLine('ipv4     2 tcp      6 431998 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=43000 dport=21 src=10.0.0.2 dst=10.0.0.1 sport=21 dport=43000 [ASSURED] mark=0 helper=ftp use=2 id=3420082243');
    expect(ftp.helper).toBe('ftp');
  });

  test('without -o extended the family comes from the addresses', () => {
    const p = parseConntrackLine('    [NEW] udp      17 30 src=2001:db8::1 dst=2001:db8::2 sport=1 dport=2 [UNREPLIED] src=2001:db8::2 dst=2001:db8::1 sport=2 dport=1');
    expect(p.family).toBe(6);
    expect(p.proto).toBe(17);
  });

  test.each([
    ['', /expected ipv4, ipv6 or a protocol name/],
    ['[NEW] ipv4 2 tcp six 120 src=1.2.3.4', /missing protocol number/],
    ['[NEW] ipv4 2 tcp 17 120 src=1.2.3.4 dst=1.2.3.5 src=1.2.3.5 dst=1.2.3.4', /protocol 'tcp' is number 6, not 17/],
    ['[NEW] ipv4 2 tcp 6 120 SYN_SENT src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2', /missing original or reply tuple/],
    ['[NEW] ipv4 2 tcp 6 120 SYN_SENT src=1.2.3.4 dst=1.2.3.5 sport=x dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1', /original sport: 'x' is not a number/],
    ['[NEW] ipv4 2 tcp 6 120 SYN_SENT src=1.2.3.4 dst=1.2.3.5 sport=70000 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1', /original sport: '70000' is not an integer from 0 to 65535/],
    ['[NEW] ipv4 2 tcp 6 120 SYN_SENT src=1.2.3.400 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1', /original src: '1.2.3.400' is not an IPv4 address/],
    ['[NEW] ipv6 10 udp 17 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1', /is not an IPv6 address/],
    ['[NEW] ipv4 2 udp 17 30 src=1.2.3.4 dst=1.2.3.5 src=1.2.3.5 dst=1.2.3.4 src=1.1.1.1', /more than two tuples/],
    ['[NEW] ipv4 2 udp 17 30 src=1.2.3.4 dst=1.2.3.5 garbage src=1.2.3.5 dst=1.2.3.4', /unexpected token 'garbage'/],
  ])('refuses %j with a reason', (text, reason) => {
    expect(() => parseConntrackLine(text)).toThrow(reason);
    expect(() => parseConntrackLine(text)).toThrow(CtTextError);
    expect(() => parseConntrackLine(text)).toThrow(FlowEventFormatError);
  });
});

describe('parseConntrackEvent', () => {
  test('DNAT and SNAT show in the status bits; the plain entries have none', () => {
    const dnat = parseConntrackEvent(line(/\[UPDATE\].*ESTABLISHED.*dport=80 /));
    expect(dnat.flow.status & STATUS.DST_NAT).toBeTruthy();
    expect(dnat.flow.status & STATUS.SRC_NAT).toBe(0);
    expect(dnat.flow.status & (STATUS.ASSURED | STATUS.SEEN_REPLY | STATUS.CONFIRMED)).toBe(STATUS.ASSURED | STATUS.SEEN_REPLY | STATUS.CONFIRMED);
    const snat = parseConntrackEvent(line(/\[NEW\].*dport=443 /));
    expect(snat.flow.status & STATUS.SRC_NAT).toBeTruthy();
    expect(snat.flow.status & STATUS.DST_NAT).toBe(0);
    expect(snat.flow.status & STATUS.SEEN_REPLY).toBe(0);
    const plain = parseConntrackEvent(line(/\[NEW\] ipv6 .* tcp /));
    expect(plain.flow.status & (STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(0);
    const icmp = parseConntrackEvent(line(/\[NEW\] ipv4 .* icmp /));
    expect(icmp.flow.status & (STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(0);
  });

  test('counters only where the line has them; a listing line is an UPDATE marked listed', () => {
    expect(parseConntrackEvent(line(/\[NEW\] ipv4 .* tcp /)).flow.counters).toBeUndefined();
    const destroy = parseConntrackEvent(line(/\[DESTROY\].*dport=5353/));
    expect(destroy.flow.counters).toEqual({ orig: { packets: 1, bytes: 30 }, reply: { packets: 0, bytes: 0 } });
    expect(destroy.flow).toMatchObject({ zone: 7, id: 1985488045, deltaTime: 3 });
    const listed = parseConntrackEvent('ipv4     2 udp      17 25 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1 id=7');
    expect(listed).toMatchObject({ type: 'UPDATE', listed: true });
    expect(listed.tsUs).toBeUndefined();
  });

  test('the caller names the host and its zone', () => {
    const e = parseConntrackEvent(line(/\[NEW\] ipv4 .* sctp /), { host: 'edge-1', zone: 12 });
    expect(e).toMatchObject({ host: 'edge-1', hostZone: 12, flow: { zone: 0, proto: 132, state: 'CLOSED' } });
  });
});
