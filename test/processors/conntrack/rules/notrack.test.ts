/** NOTRACK rules: the command line's two forms, and the engine's raw-table behaviour (kernel facts in the oracle's README). */
import type { IcmpHeader, IpPacket, TcpHeader } from '../../../../processors/packet';
import type { FlowEvent, Verdict } from '../../../../processors/flow';
import { copyVerdict } from '../../../../processors/flow';
import { ConntrackEngine } from '../../../../processors/conntrack/engine';
import { NotrackRules, parseNotrack } from '../../../../processors/conntrack/rules/notrack';
import { makeSysctl } from '../../../../processors/conntrack/sysctl';

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack: number, dataLength = 0): IpPacket {
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq, ack, flags, window: 65535, headerLength: 20, dataLength, options: {} };
  return { family: 4, src, dst, proto: 6, length: 40 + dataLength, ttl: 64, l4 };
}

const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, PSHACK = 0x18;

function run(packets: IpPacket[], notrack: string[]): { verdicts: Verdict[]; events: FlowEvent[]; engine: ConntrackEngine } {
  const engine = new ConntrackEngine({ sysctl: makeSysctl(), rules: { notrack: notrack.map(parseNotrack) } });
  const events: FlowEvent[] = [];
  const verdicts = packets.map((p, i) => copyVerdict(engine.process(p, 1_700_000_000_000_000 + i * 1000, i, events)));
  return { verdicts, events, engine };
}

describe('parseNotrack', () => {
  test('PROTO/PORT is that port on either side', () => {
    const r = new NotrackRules([parseNotrack('tcp/80')]);
    expect(r.matches(tcp('10.0.0.1', '10.0.0.2', 4000, 80, SYN, 1, 0), 0)).toBe(true);
    expect(r.matches(tcp('10.0.0.2', '10.0.0.1', 80, 4000, SYNACK, 1, 2), 0)).toBe(true);
    expect(r.matches(tcp('10.0.0.1', '10.0.0.2', 4000, 443, SYN, 1, 0), 0)).toBe(false);
  });

  test('nft expressions: parts are ANDed, addresses are prefixes', () => {
    const r = new NotrackRules([parseNotrack('ip saddr 10.1.0.0/16 tcp dport 22')]);
    expect(r.matches(tcp('10.1.2.3', '10.0.0.2', 4000, 22, SYN, 1, 0), 0)).toBe(true);
    expect(r.matches(tcp('10.2.2.3', '10.0.0.2', 4000, 22, SYN, 1, 0), 0)).toBe(false);
    expect(r.matches(tcp('10.1.2.3', '10.0.0.2', 4000, 23, SYN, 1, 0), 0)).toBe(false);
    expect(parseNotrack('ip6 daddr 2001:db8::/32').match).toMatchObject({ family: 6 });
    expect(parseNotrack('meta l4proto udp').match).toEqual({ proto: 17 });
  });

  test.each([
    ['', /empty/],
    ['tcp/99999', /not a port/],
    ['ip saddr', /incomplete/],
    ['ip saddr 2001:db8::1', /not an IPv4 prefix/],
    ['tcp dport 80 udp sport 53', /conflicts/],
    ['ether saddr 00:11:22:33:44:55', /not a match ctflow knows/],
  ])('%j is refused, saying why', (text, why) => {
    expect(() => parseNotrack(text)).toThrow(why);
  });
});

describe('NOTRACK in the engine', () => {
  test('untracked packets create no entry, raise no event and are counted apart from conntrack -S', () => {
    const { verdicts, events, engine } = run(
      [tcp('10.0.0.1', '10.0.0.2', 4000, 80, SYN, 1000, 0), tcp('10.0.0.2', '10.0.0.1', 80, 4000, SYNACK, 5000, 1001), tcp('10.0.0.1', '10.0.0.2', 4001, 443, SYN, 7, 0)],
      ['tcp/80'],
    );
    expect(verdicts.map((v) => [v.ctstate, v.dir])).toEqual([['UNTRACKED', null], ['UNTRACKED', null], ['NEW', 'original']]);
    expect(engine.count).toBe(1);
    expect(engine.untracked).toBe(2);
    expect(events.map((e) => e.flow.orig.dport)).toEqual([443]);
    expect(engine.stats().found + engine.stats().invalid).toBe(0);
  });

  test('notrack on one direction only: the SYN/ACK is INVALID and the server data starts a reverse entry', () => {
    const { verdicts, engine } = run(
      [
        tcp('10.0.0.1', '10.0.0.2', 4000, 80, SYN, 1000, 0),
        tcp('10.0.0.2', '10.0.0.1', 80, 4000, SYNACK, 5000, 1001),
        tcp('10.0.0.1', '10.0.0.2', 4000, 80, ACK, 1001, 5001),
        tcp('10.0.0.2', '10.0.0.1', 80, 4000, PSHACK, 5001, 1001, 10),
      ],
      ['tcp dport 80'],
    );
    expect(verdicts.map((v) => v.ctstate)).toEqual(['UNTRACKED', 'INVALID', 'UNTRACKED', 'NEW']);
    expect(engine.list().map((f) => [f.orig.src, f.orig.sport])).toEqual([['10.0.0.2', 80]]);
  });

  test('an ICMP error is judged by its own header: a port rule does not untrack it', () => {
    const quoted = tcp('10.0.0.1', '10.0.0.2', 4000, 80, SYN, 1000, 0);
    const icmp: IcmpHeader = { kind: 'icmp', type: 3, code: 3, id: 0, seq: 0, inner: quoted } as IcmpHeader;
    const error: IpPacket = { family: 4, src: '10.0.0.2', dst: '10.0.0.1', proto: 1, length: 56, ttl: 64, l4: icmp };
    const { verdicts } = run([quoted, error], ['tcp/80']);
    expect(verdicts.map((v) => v.ctstate)).toEqual(['UNTRACKED', 'INVALID']);
  });

  test('a rule with a zone only untracks that zone', () => {
    const engine = new ConntrackEngine({ rules: { notrack: [{ match: { zone: 7 } }] } });
    const p = tcp('10.0.0.1', '10.0.0.2', 4000, 80, SYN, 1000, 0);
    expect(engine.process(p, 1, 0, [], 7).ctstate).toBe('UNTRACKED');
    expect(engine.process(p, 2, 1, [], 0).ctstate).toBe('NEW');
  });
});
