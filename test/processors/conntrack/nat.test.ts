/**
 * NAT bindings in the engine: the reply tuples nf_nat gives new entries (port kept, moved within
 * its class on a clash, mappings reused per source, null bindings), and the properties that make
 * NAT work: both sides of every flow find its entry, and no two entries share a tuple.
 */
import fc from 'fast-check';
import type { IpPacket, TcpHeader } from '../../../processors/packet';
import type { FlowEvent, FlowRecord, Verdict } from '../../../processors/flow';
import { STATUS, copyVerdict } from '../../../processors/flow';
import { ConntrackEngine } from '../../../processors/conntrack/engine';
import type { NatRule } from '../../../processors/conntrack/rules/nat';
import { parseNat } from '../../../processors/conntrack/rules/nat';
import { parsePrefix } from '../../../processors/conntrack/rules/match';

function udp(src: string, dst: string, sport: number, dport: number): IpPacket {
  const family = src.includes(':') ? 6 : 4;
  return { family, src, dst, proto: 17, length: 28, ttl: 64, l4: { kind: 'udp', sport, dport, length: 8 } };
}

function syn(src: string, dst: string, sport: number, dport: number): IpPacket {
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq: 1000, ack: 0, flags: 0x02, window: 65535, headerLength: 20, dataLength: 0, options: {} };
  return { family: 4, src, dst, proto: 6, length: 40, ttl: 64, l4 };
}

function echo(src: string, dst: string, type: number, id: number): IpPacket {
  return { family: 4, src, dst, proto: 1, length: 28, ttl: 64, l4: { kind: 'icmp', type, code: 0, id, seq: 1 } };
}

/** An engine and a clock: `send` judges one packet a millisecond after the last. */
function gateway(rules: NatRule[], shards = 1): { engine: ConntrackEngine; send(p: IpPacket, afterUs?: number): Verdict; events: FlowEvent[]; entry(id: number | undefined): FlowRecord } {
  const engine = new ConntrackEngine({ rules: { nat: rules }, shards });
  const events: FlowEvent[] = [];
  let t = 1_700_000_000_000_000;
  let i = 0;
  return {
    engine,
    events,
    send: (p, afterUs = 1000) => copyVerdict(engine.process(p, (t += afterUs), i++, events)),
    entry: (id) => {
      const f = engine.list().find((e) => e.id === id);
      if (!f) throw new Error(`no entry ${id}`);
      return f;
    },
  };
}

const SNAT = parseNat('snat:10.0.0.0/24->192.0.2.1');

describe('source NAT', () => {
  test('keeps the source port while the translated tuple is free, and marks SRC_NAT', () => {
    const g = gateway([SNAT]);
    const v = g.send(udp('10.0.0.1', '203.0.113.9', 40000, 53));
    const f = g.entry(v.flowId);
    expect(f.reply).toMatchObject({ src: '203.0.113.9', dst: '192.0.2.1', sport: 53, dport: 40000 });
    expect(f.status & STATUS.SRC_NAT).toBeTruthy();
    expect(f.status & STATUS.DST_NAT).toBeFalsy();
    expect(g.send(udp('203.0.113.9', '192.0.2.1', 53, 40000))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply', flowId: v.flowId });
  });

  test.each([
    [40000, 40001],
    [65535, 1024],
    [700, 701],
    [1023, 600],
    [100, 101],
    [511, 1],
  ])('a clash on port %i moves the second host to %i (next free upward in the same class)', (port, moved) => {
    const g = gateway([SNAT]);
    g.send(udp('10.0.0.1', '203.0.113.9', port, 53));
    const second = g.entry(g.send(udp('10.0.0.2', '203.0.113.9', port, 53)).flowId);
    expect(second.reply.dport).toBe(moved);
  });

  test('ICMP echo ids are moved like ports, over 0-65535', () => {
    const g = gateway([SNAT]);
    g.send(echo('10.0.0.1', '203.0.113.9', 8, 65535));
    const second = g.entry(g.send(echo('10.0.0.2', '203.0.113.9', 8, 65535)).flowId);
    expect(second.reply.icmp).toEqual({ type: 0, code: 0, id: 0 });
    expect(g.send(echo('203.0.113.9', '192.0.2.1', 0, 0))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply', flowId: second.id });
  });

  test('the same inside socket keeps its outside port towards other servers (find_appropriate_src)', () => {
    const g = gateway([SNAT]);
    g.send(udp('10.0.0.1', '203.0.113.9', 5000, 53));
    g.send(udp('10.0.0.2', '203.0.113.9', 5000, 53)); // moved to 5001
    const other = g.entry(g.send(udp('10.0.0.2', '203.0.113.10', 5000, 53)).flowId);
    expect(other.reply.dport).toBe(5001);
    const fresh = g.entry(g.send(udp('10.0.0.3', '203.0.113.10', 5000, 53)).flowId);
    expect(fresh.reply.dport).toBe(5000);
  });

  test('a destroyed entry frees its port and its mapping', () => {
    const g = gateway([SNAT]);
    g.send(udp('10.0.0.1', '203.0.113.9', 5000, 53));
    const moved = g.entry(g.send(udp('10.0.0.2', '203.0.113.9', 5000, 53)).flowId);
    expect(moved.reply.dport).toBe(5001);
    // 31 s later both UDP entries (30 s unreplied) are gone: the port is free again.
    const again = g.entry(g.send(udp('10.0.0.2', '203.0.113.9', 5000, 53), 31_000_000).flowId);
    expect(g.engine.count).toBe(1);
    expect(again.reply.dport).toBe(5000);
  });

  test('a masquerade rule translates like SNAT to its address; non-matching sources are left alone', () => {
    const g = gateway([parseNat('masquerade:10.0.0.0/24->192.0.2.7')]);
    expect(g.entry(g.send(syn('10.0.0.1', '203.0.113.9', 4000, 443)).flowId).reply.dst).toBe('192.0.2.7');
    const outside = g.entry(g.send(syn('10.9.0.1', '203.0.113.9', 4000, 443)).flowId);
    expect(outside.reply.dst).toBe('10.9.0.1');
    expect(outside.status & (STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(0);
  });
});

describe('destination NAT', () => {
  const DNAT = parseNat('dnat:udp/198.18.100.1:53->198.18.0.2:5353');

  test('rewrites the reply source to the real server; its answers match in the reply direction', () => {
    const g = gateway([DNAT]);
    const v = g.send(udp('198.18.0.1', '198.18.100.1', 33000, 53));
    const f = g.entry(v.flowId);
    expect(f.reply).toMatchObject({ src: '198.18.0.2', dst: '198.18.0.1', sport: 5353, dport: 33000 });
    expect(f.status & STATUS.DST_NAT).toBeTruthy();
    expect(g.send(udp('198.18.0.2', '198.18.0.1', 5353, 33000))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply', flowId: v.flowId });
  });

  test("a direct flow whose natural reply tuple is a DNAT'd entry's gets a new source port (the null SNAT binding)", () => {
    const g = gateway([DNAT]);
    g.send(udp('198.18.0.1', '198.18.100.1', 33000, 53));
    const direct = g.entry(g.send(udp('198.18.0.1', '198.18.0.2', 33000, 5353)).flowId);
    expect(direct.reply.dport).toBe(33001);
    expect(direct.status & STATUS.SRC_NAT).toBeTruthy();
  });

  test('SNAT rules see the packet after DNAT (its new destination)', () => {
    const toServer: NatRule = { kind: 'snat', family: 4, match: { family: 4, dst: parsePrefix('198.18.0.2') }, toAddr: '198.18.0.254' };
    const g = gateway([DNAT, toServer]);
    const f = g.entry(g.send(udp('198.18.0.1', '198.18.100.1', 33000, 53)).flowId);
    expect(f.reply).toMatchObject({ src: '198.18.0.2', dst: '198.18.0.254', sport: 5353, dport: 33000 });
    expect(f.status & (STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(STATUS.SRC_NAT | STATUS.DST_NAT);
  });

  test('when no free tuple exists the entry is not confirmed (insert_failed), the packet still NEW', () => {
    // A protocol without ports: nothing can move, so the direct flow's reply tuple stays taken.
    const generic: NatRule = { kind: 'dnat', family: 4, match: { proto: 99, dst: parsePrefix('198.18.100.1') }, toAddr: '198.18.0.2' };
    const raw = (src: string, dst: string): IpPacket => ({ family: 4, src, dst, proto: 99, length: 30, ttl: 64, l4: { kind: 'generic' } } as IpPacket);
    const g = gateway([generic]);
    g.send(raw('198.18.0.1', '198.18.100.1'));
    const v = g.send(raw('198.18.0.1', '198.18.0.2'));
    expect(v).toMatchObject({ ctstate: 'NEW', dir: 'original', flowId: undefined, reason: 'nat_tuple_taken' });
    expect(g.engine.count).toBe(1);
    expect(g.engine.stats().insert_failed).toBe(1);
  });

  test('IPv6 rules (from the config file) translate IPv6 entries only', () => {
    const v6: NatRule = { kind: 'dnat', family: 6, match: { family: 6, proto: 17, dst: parsePrefix('2001:db8:100::1'), dport: 53 }, toAddr: '2001:db8::2', toPorts: { min: 53, max: 53 } };
    const g = gateway([v6]);
    expect(g.entry(g.send(udp('2001:db8::1', '2001:db8:100::1', 4000, 53)).flowId).reply.src).toBe('2001:db8::2');
    expect(g.send(udp('2001:db8::2', '2001:db8::1', 53, 4000))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply' });
  });
});

test('with NAT rules the engine runs one shard whatever it is asked for', () => {
  expect(gateway([SNAT], 8).engine.shardCount).toBe(1);
  expect(new ConntrackEngine({ shards: 8 }).shardCount).toBe(8);
});

describe('NAT properties', () => {
  /** Flows from a few inside hosts and ports, to a few servers, some through a DNAT'd virtual address. */
  const flowArb = fc.record({
    host: fc.integer({ min: 1, max: 4 }),
    sport: fc.constantFrom(80, 511, 600, 1023, 1024, 40000, 65535),
    server: fc.integer({ min: 1, max: 3 }),
    viaVirtual: fc.boolean(),
  });
  const rules = [parseNat('dnat:udp/198.51.100.1:53->203.0.113.1:53'), parseNat('snat:10.0.0.0/24->192.0.2.1')];
  const open = (g: ReturnType<typeof gateway>, f: { host: number; sport: number; server: number; viaVirtual: boolean }): Verdict =>
    g.send(udp(`10.0.0.${f.host}`, f.viaVirtual ? '198.51.100.1' : `203.0.113.${f.server}`, f.sport, 53));

  test('every packet of both sides of every flow finds that flow', () => {
    fc.assert(
      fc.property(fc.array(flowArb, { maxLength: 40 }), (flows) => {
        const g = gateway(rules);
        const ids = flows.map((f) => open(g, f).flowId);
        for (const e of g.engine.list()) {
          const r = e.reply;
          expect(g.send(udp(r.src, r.dst, r.sport, r.dport))).toMatchObject({ dir: 'reply', flowId: e.id });
          expect(g.send(udp(e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'original', flowId: e.id });
        }
        // A repeated flow found the entry its first packet made.
        flows.forEach((f, k) => expect(ids[k]).toBe(ids[flows.findIndex((o) => o.host === f.host && o.sport === f.sport && (o.viaVirtual ? f.viaVirtual : !f.viaVirtual && o.server === f.server))]));
      }),
      { numRuns: 150 },
    );
  });

  test('no two entries share a tuple, and moved ports stay in their class', () => {
    const classOf = (p: number): number => (p < 512 ? 0 : p < 1024 ? 1 : 2);
    fc.assert(
      fc.property(fc.array(flowArb, { maxLength: 60 }), (flows) => {
        const g = gateway(rules);
        flows.forEach((f) => open(g, f));
        const seen = new Set<string>();
        for (const e of g.engine.list()) {
          for (const t of [e.orig, e.reply]) {
            const key = `${t.src} ${t.sport} ${t.dst} ${t.dport}`;
            expect(seen.has(key)).toBe(false);
            seen.add(key);
          }
          expect(classOf(e.reply.dport)).toBe(classOf(e.orig.sport));
          expect(e.reply.dst).toBe('192.0.2.1');
        }
      }),
      { numRuns: 150 },
    );
  });
});
