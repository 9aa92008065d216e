/** Engine properties: determinism, shard independence, the table limit and early drop. */
import fc from 'fast-check';
import type { IpPacket, TcpHeader } from '../../../processors/packet';
import type { FlowEvent, Verdict } from '../../../processors/flow';
import { ConntrackEngine } from '../../../processors/conntrack/engine';
import { makeSysctl, SysctlError } from '../../../processors/conntrack/sysctl';

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack: number, dataLength = 0): IpPacket {
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq, ack, flags, window: 65535, headerLength: 20, dataLength, options: {} };
  return { family: 4, src, dst, proto: 6, length: 40 + dataLength, ttl: 64, l4 };
}

function udp(src: string, dst: string, sport: number, dport: number): IpPacket {
  return { family: 4, src, dst, proto: 17, length: 28, ttl: 64, l4: { kind: 'udp', sport, dport, length: 8 } };
}

/** A packet drawn from a small universe, so random streams hit the same flows often. */
const packetArb = fc
  .record({
    a: fc.integer({ min: 1, max: 4 }),
    b: fc.integer({ min: 1, max: 4 }),
    sp: fc.constantFrom(1000, 2000),
    dp: fc.constantFrom(80, 443),
    udp: fc.boolean(),
    flags: fc.constantFrom(0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x03, 0x00),
    seq: fc.constantFrom(0, 1, 1000, 2 ** 31, 2 ** 32 - 1),
    ack: fc.constantFrom(0, 1, 1001, 2 ** 31),
    len: fc.constantFrom(0, 10, 1400),
    gapMs: fc.integer({ min: 0, max: 200_000 }),
  })
  .map((r) => ({
    ip: r.udp ? udp(`10.0.0.${r.a}`, `10.0.0.${r.b}`, r.sp, r.dp) : tcp(`10.0.0.${r.a}`, `10.0.0.${r.b}`, r.sp, r.dp, r.flags, r.seq, r.ack, r.len),
    gapUs: r.gapMs * 1000,
  }));

function replay(stream: Array<{ ip: IpPacket; gapUs: number }>, shards: number, max = 262144): { verdicts: Verdict[]; events: FlowEvent[]; maxCount: number } {
  const engine = new ConntrackEngine({ shards, sysctl: makeSysctl({ nf_conntrack_max: max }) });
  const verdicts: Verdict[] = [];
  const events: FlowEvent[] = [];
  let t = 1_700_000_000_000_000;
  let maxCount = 0;
  stream.forEach((p, i) => {
    t += p.gapUs;
    verdicts.push(engine.process(p.ip, t, i, events));
    maxCount = Math.max(maxCount, engine.count);
  });
  return { verdicts, events, maxCount };
}

describe('ConntrackEngine properties', () => {
  test('replaying the same packets twice gives identical verdicts and events', () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 80 }), (stream) => {
        expect(replay(stream, 1)).toEqual(replay(stream, 1));
      }),
      { numRuns: 200 },
    );
  });

  test('the output does not depend on the number of shards', () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 80 }), fc.integer({ min: 2, max: 7 }), (stream, shards) => {
        expect(replay(stream, shards)).toEqual(replay(stream, 1));
      }),
      { numRuns: 200 },
    );
  });

  test('the table never holds more than nf_conntrack_max entries', () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 120 }), fc.integer({ min: 1, max: 5 }), (stream, max) => {
        expect(replay(stream, 3, max).maxCount).toBeLessThanOrEqual(max);
      }),
      { numRuns: 200 },
    );
  });
});

describe('table limit', () => {
  test('early drop evicts the oldest unassured entry and counts it', () => {
    const engine = new ConntrackEngine({ sysctl: makeSysctl(['nf_conntrack_max=2']) });
    const events: FlowEvent[] = [];
    engine.process(udp('10.0.0.1', '10.0.0.2', 1, 53), 1e12, 0, events);
    engine.process(udp('10.0.0.1', '10.0.0.2', 2, 53), 1e12 + 1, 1, events);
    const v = engine.process(udp('10.0.0.1', '10.0.0.2', 3, 53), 1e12 + 2, 2, events);
    expect(v.ctstate).toBe('NEW');
    expect(engine.count).toBe(2);
    expect(engine.stats().early_drop).toBe(1);
    const destroyed = events.filter((e) => e.type === 'DESTROY');
    expect(destroyed.map((e) => [e.reason, e.flow.orig.sport])).toEqual([['early_drop', 1]]);
  });

  test('with only assured entries a new connection is dropped and counted', () => {
    const engine = new ConntrackEngine({ sysctl: makeSysctl(['nf_conntrack_max=1']) });
    const ev: FlowEvent[] = [];
    const t0 = 1e12;
    engine.process(tcp('10.0.0.1', '10.0.0.2', 1000, 80, 0x02, 100, 0), t0, 0, ev);
    engine.process(tcp('10.0.0.2', '10.0.0.1', 80, 1000, 0x12, 500, 101), t0 + 1, 1, ev);
    engine.process(tcp('10.0.0.1', '10.0.0.2', 1000, 80, 0x10, 101, 501), t0 + 2, 2, ev);
    expect(engine.list()[0].state).toBe('ESTABLISHED');
    const v = engine.process(tcp('10.0.0.3', '10.0.0.2', 1000, 80, 0x02, 100, 0), t0 + 3, 3, ev);
    expect(v).toMatchObject({ ctstate: 'INVALID', reason: 'table_full' });
    expect(engine.stats().drop).toBe(1);
    expect(engine.list()).toHaveLength(1);
  });
});

describe('expiry by packet time', () => {
  test('an entry expires at its deadline and a later packet starts a new one', () => {
    const engine = new ConntrackEngine({ sysctl: makeSysctl(['nf_conntrack_udp_timeout=5']) });
    const ev: FlowEvent[] = [];
    engine.process(udp('10.0.0.1', '10.0.0.2', 1, 53), 1e12, 0, ev);
    engine.advance(1e12 + 4_999_999, ev);
    expect(engine.count).toBe(1);
    const v = engine.process(udp('10.0.0.1', '10.0.0.2', 1, 53), 1e12 + 5_000_000, 1, ev);
    expect(v.ctstate).toBe('NEW');
    expect(ev.map((e) => `${e.type}:${e.reason ?? ''}:${e.tsUs - 1e12}`)).toEqual(['NEW::0', 'DESTROY:timeout:5000000', 'NEW::5000000']);
  });
});

describe('sysctl', () => {
  test('knobs carry the kernel defaults and names', () => {
    const s = makeSysctl();
    expect(s.nf_conntrack_tcp_timeout_established).toBe(432000);
    expect(s.nf_conntrack_udp_timeout_stream).toBe(120);
    expect(s.nf_conntrack_tcp_loose).toBe(1);
    expect(makeSysctl(['net.netfilter.nf_conntrack_tcp_be_liberal=1']).nf_conntrack_tcp_be_liberal).toBe(1);
  });
  test('unknown names and bad values are refused with the name in the message', () => {
    expect(() => makeSysctl(['nf_conntrack_tcp_lose=1'])).toThrow(SysctlError);
    expect(() => makeSysctl(['nf_conntrack_tcp_lose=1'])).toThrow(/nf_conntrack_tcp_lose/);
    expect(() => makeSysctl(['nf_conntrack_max=abc'])).toThrow(/nf_conntrack_max/);
    expect(() => makeSysctl(['nf_conntrack_max'])).toThrow(/name=value/);
  });
});
