/** Engine properties: determinism, shard independence, the table limit and early drop. */
import fc from 'fast-check';
import type { IpPacket, TcpHeader } from '../../../processors/packet';
import type { FlowEvent, FlowRecord, Verdict } from '../../../processors/flow';
import { STATUS, copyVerdict } from '../../../processors/flow';
import { ConntrackEngine } from '../../../processors/conntrack/engine';
import { makeSysctl, SysctlError } from '../../../processors/conntrack/sysctl';
import { synFlood } from '../../../bench/flood';

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

/** `prefetchGroup` > 0 announces each group of that many packets with engine.prefetch() first. */
function replay(stream: Array<{ ip: IpPacket; gapUs: number }>, shards: number, max = 262144, prefetchGroup = 0): { verdicts: Verdict[]; events: FlowEvent[]; maxCount: number } {
  const engine = new ConntrackEngine({ shards, sysctl: makeSysctl({ nf_conntrack_max: max }) });
  const verdicts: Verdict[] = [];
  const events: FlowEvent[] = [];
  const ips = stream.map((p) => p.ip);
  let t = 1_700_000_000_000_000;
  let maxCount = 0;
  stream.forEach((p, i) => {
    if (prefetchGroup > 0 && i % prefetchGroup === 0) engine.prefetch(ips, i, Math.min(i + prefetchGroup, ips.length));
    t += p.gapUs;
    verdicts.push(copyVerdict(engine.process(p.ip, t, i, events)));
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

  test('prefetch() is only a hint: announcing groups of packets changes no verdict and no event', () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 80 }), fc.integer({ min: 1, max: 20 }), (stream, group) => {
        expect(replay(stream, 1, 262144, group)).toEqual(replay(stream, 1));
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
  // What early_drop may evict, read off a listing: not ASSURED, or a TCP connection closing.
  const CLOSING = new Set(['FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE']);
  const droppable = (f: FlowRecord): boolean => !(f.status & STATUS.ASSURED) || CLOSING.has(f.state ?? '');

  /** Connections opened to ASSURED, closed, left half-open, or UDP: every kind early_drop must tell apart. */
  const lifeArb = fc.array(
    fc.record({ what: fc.constantFrom('assure', 'close', 'syn', 'udp', 'reply'), host: fc.integer({ min: 1, max: 12 }), gapMs: fc.integer({ min: 0, max: 2000 }) }),
    { maxLength: 60 },
  );
  const packetsOf = (what: string, h: number): IpPacket[] => {
    const c = `10.0.1.${h}`, s = '10.0.0.200';
    switch (what) {
      case 'assure':
        return [tcp(c, s, 1000, 80, 0x02, 100, 0), tcp(s, c, 80, 1000, 0x12, 500, 101), tcp(c, s, 1000, 80, 0x10, 101, 501), tcp(c, s, 1000, 80, 0x18, 101, 501, 10), tcp(s, c, 80, 1000, 0x10, 501, 111)];
      case 'close':
        return [tcp(c, s, 1000, 80, 0x11, 111, 501)];
      case 'syn':
        return [tcp(c, s, 2000, 80, 0x02, 7, 0)];
      case 'reply':
        return [udp(s, c, 53, 3000)];
      default:
        return [udp(c, s, 3000, 53)];
    }
  };

  test('every early drop evicts the oldest droppable entry of the whole table, as a walk of the listing finds it', () => {
    let drops = 0;
    let assuredSkipped = 0;
    fc.assert(
      fc.property(lifeArb, fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 3 }), (life, max, shards) => {
        const engine = new ConntrackEngine({ shards, sysctl: makeSysctl({ nf_conntrack_max: max }) });
        let t = 1_700_000_000_000_000;
        let i = 0;
        for (const step of life) {
          t += step.gapMs * 1000;
          for (const ip of packetsOf(step.what, step.host)) {
            const events: FlowEvent[] = [];
            engine.advance(t, events);
            const table = engine.list();
            const expected = table.find(droppable)?.id;
            engine.process(ip, t, i++, events);
            for (const e of events) {
              if (e.reason !== 'early_drop') continue;
              expect(e.flow.id).toBe(expected);
              drops++;
              if (table[0].id !== expected) assuredSkipped++;
            }
          }
        }
      }),
      { numRuns: 300 },
    );
    // The cases that matter happened: evictions that had to pass over ASSURED connections.
    expect(drops).toBeGreaterThan(100);
    expect(assuredSkipped).toBeGreaterThan(20);
  });

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
  test('entries expiring together are destroyed in deadline order, then id, with one shard as with several', () => {
    // Found by the shard property: the first UDP entry is refreshed, so its deadline (30.001 s)
    // falls after the second's (30 s) although it was scheduled first.
    const stream = [
      { ip: udp('10.0.0.2', '10.0.0.4', 1000, 80), gapUs: 0 },
      { ip: udp('10.0.0.1', '10.0.0.1', 1000, 80), gapUs: 0 },
      { ip: udp('10.0.0.2', '10.0.0.4', 1000, 80), gapUs: 1000 },
      { ip: tcp('10.0.0.1', '10.0.0.1', 1000, 80, 0x02, 0, 0), gapUs: 30_000_000 },
    ];
    const one = replay(stream, 1);
    const destroyed = one.events.filter((e) => e.type === 'DESTROY');
    expect(destroyed.map((e) => e.tsUs - destroyed[0].tsUs)).toEqual([0, 1000]);
    expect(replay(stream, 2)).toEqual(one);
  });

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

describe('a SYN flood far above nf_conntrack_max (npm run bench:flood runs it at 10M SYNs)', () => {
  test('the table stays at its limit, every flood entry beyond it is early-dropped, and established connections keep their state', () => {
    const r = synFlood(300_000, 20_000, 200);
    expect(r.entries).toBe(20_000);
    // Each SYN either found room or evicted an older half-open entry; none was refused.
    expect(r.drop).toBe(0);
    expect(r.early_drop).toBe(300_000 + 200 - 20_000);
    expect(r.legitStillEstablished).toBe(200);
    expect(r.legitPacketsNotEstablished).toBe(0);
    expect(r.legitPackets).toBe(2 * 200 * (1 + 3));
  });
});
