/**
 * The state changelog (processors/stream/stateChangelog.ts): a processor restored from the
 * compacted changes of another goes on exactly as the other would have. Processor A runs every
 * packet; B runs them in batches, writing its changes after each batch to one log; at a batch
 * boundary C is restored from the compacted log and runs the rest (and D, restored from the log
 * B's and C's changes make, for the last part). B's output before the cut, then C's (then D's),
 * must equal A's: events, accounting records, INVALID packets, verdicts, the commit bound after
 * every packet, and at the end the table, the expectations and the counters. Inputs: every crafted
 * kernel scenario (NAT, helpers, NOTRACK, SCTP, IPv6) with its own and with shortened timeouts,
 * and random streams with fragments, time going back, long gaps and a small table.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { readPackets } from '../../../ingest/packetSource';
import { icmpMessage, ipv4Packet, ipv6Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { PartitionProcessor } from '../../../processors/stream/partitionProcessor';
import type { PartitionProcessorOptions, ZonedPacket } from '../../../processors/stream/partitionProcessor';
import { ConntrackPipeline } from '../../../processors/pipeline';
import type { PacketVerdict } from '../../../processors/pipeline';
import { compact, META_KEY } from '../../../processors/stream/stateChangelog';
import type { StateRecord } from '../../../processors/stream/stateChangelog';
import { oracleArgs } from '../../../scripts/parityLib';
import { prng as rng } from '../../../scripts/sampleTraffic';
import { expectSameAcrossCuts, runOps, type Op } from './stateChangelogHarness';

const SCENARIOS = join(__dirname, '..', '..', 'fixtures', 'scenarios');
const RAW_IP = 101;

function scenario(name: string): { ops: Op[]; sysctl: string[]; opts: Pick<PartitionProcessorOptions, 'rules'> } {
  const bytes = new Uint8Array(readFileSync(join(SCENARIOS, name, 'packets.pcap')));
  const args = oracleArgs(join(SCENARIOS, name));
  if ('unsupported' in args) throw new Error(`${name}: ${args.unsupported}`);
  const ops: Op[] = [...readPackets(bytes)].map(({ index: _index, ...p }) => ({ packet: p }));
  return { ops, sysctl: args.sysctl, opts: { rules: args.rules } };
}


const SHORT = ['nf_conntrack_udp_timeout=1', 'nf_conntrack_icmp_timeout=1', 'nf_conntrack_tcp_timeout_syn_sent=1', 'nf_conntrack_tcp_timeout_close=1'];

describe('state changelog: restore goes on as the original', () => {
  const names = readdirSync(SCENARIOS).sort();

  test('the scenario set has SCTP, IPv6, NAT and helpers in it', () => {
    for (const n of ['sctp_association', 'ipv6_tcp_icmpv6', 'ftp_eprt_ipv6', 'tftp_wrq_ipv6', 'nat_snat_port_clash', 'ftp_nat_port_shrinks']) expect(names).toContain(n);
  });

  test.each(names)('%s: a cut after every packet, with its own and with shortened timeouts', (name) => {
    const s = scenario(name);
    for (const sysctl of [s.sysctl, [...s.sysctl, ...SHORT]]) {
      const opts = { ...s.opts, sysctl: makeSysctl(sysctl), activeTimeoutUs: 500_000, verdicts: true };
      const n = s.ops.length;
      const batches = Array.from({ length: n }, () => 1);
      for (let cut = 0; cut <= n; cut++) expectSameAcrossCuts(opts, s.ops, batches, [cut]);
      // Coarser batches (several packets between two stateChanges()), and two restores in a row.
      const random = rng(name.length * 7919 + n);
      for (let k = 0; k < 6; k++) {
        const sizes: number[] = [];
        for (let left = n; left > 0;) {
          const size = Math.min(left, 1 + Math.floor(random() * 6));
          sizes.push(size);
          left -= size;
        }
        const a = Math.floor(random() * (sizes.length + 1));
        const b = a + Math.floor(random() * (sizes.length + 1 - a));
        expectSameAcrossCuts(opts, s.ops, sizes, [a, b]);
      }
    }
  });
});

/** Random traffic among a few hosts over IPv4 and IPv6: TCP with flag, sequence and window edge cases, UDP, fragments, ICMP errors. */
const stepArb = fc.record({
  what: fc.constantFrom('udp', 'udp-reply', 'frag', 'tcp', 'tcp-reply', 'icmp-error', 'advance'),
  v6: fc.boolean(),
  a: fc.integer({ min: 1, max: 5 }),
  b: fc.integer({ min: 1, max: 3 }),
  port: fc.constantFrom(53, 80, 123),
  flags: fc.constantFrom(0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x03),
  seq: fc.constantFrom(100, 101, 1000, 2 ** 31, 2 ** 32 - 1),
  ack: fc.constantFrom(0, 101, 901, 2 ** 31),
  window: fc.constantFrom(0, 1, 512, 65535),
  len: fc.constantFrom(0, 10, 1400),
  gapMs: fc.oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1000, max: 200_000 }), fc.constant(-300)),
  dropLast: fc.boolean(),
});

function streamOps(steps: Array<typeof stepArb extends fc.Arbitrary<infer T> ? T : never>): Op[] {
  let t = 1_700_000_000_000_000;
  let id = 1;
  const records: Array<{ tsUs: number; data: Uint8Array }> = [];
  const advances = new Map<number, number>(); // record count -> advanceTo time before that record
  for (const s of steps) {
    t += s.gapMs * 1000;
    const c = s.v6 ? `2001:db8::${s.a}` : `10.0.0.${s.a}`;
    const srv = s.v6 ? `2001:db8:1::${s.b}` : `10.0.1.${s.b}`;
    const ip = (src: string, dst: string, proto: number, payload: Uint8Array) =>
      s.v6 ? ipv6Packet({ src, dst, nextHeader: proto, payload }) : ipv4Packet({ src, dst, proto, payload });
    const push = (data: Uint8Array) => records.push({ tsUs: t, data });
    const tcp = (sport: number, dport: number) => tcpSegment({ sport, dport, seq: s.seq, ack: s.ack, flags: s.flags, window: s.window, payload: new Uint8Array(s.len) });
    switch (s.what) {
      case 'udp':
        push(ip(c, srv, 17, udpDatagram({ sport: 4000, dport: s.port, payload: new Uint8Array(20) })));
        break;
      case 'udp-reply':
        push(ip(srv, c, 17, udpDatagram({ sport: s.port, dport: 4000, payload: new Uint8Array(20) })));
        break;
      case 'frag': {
        const whole = udpDatagram({ sport: 5000, dport: s.port, payload: new Uint8Array(40) });
        const fid = id++;
        push(ipv4Packet({ src: `10.0.0.${s.a}`, dst: `10.0.1.${s.b}`, proto: 17, id: fid, mf: true, payload: whole.subarray(0, 24) }));
        if (!s.dropLast) push(ipv4Packet({ src: `10.0.0.${s.a}`, dst: `10.0.1.${s.b}`, proto: 17, id: fid, fragOffset: 24, payload: whole.subarray(24) }));
        break;
      }
      case 'tcp':
        push(ip(c, srv, 6, tcp(6000, s.port)));
        break;
      case 'tcp-reply':
        push(ip(srv, c, 6, tcp(s.port, 6000)));
        break;
      case 'icmp-error': {
        const quoted = ipv4Packet({ src: `10.0.0.${s.a}`, dst: `10.0.1.${s.b}`, proto: 17, payload: udpDatagram({ sport: 4000, dport: s.port }) });
        push(ipv4Packet({ src: '10.9.9.9', dst: `10.0.0.${s.a}`, proto: 1, payload: icmpMessage({ type: 3, code: 3, payload: quoted }) }));
        break;
      }
      default:
        advances.set(records.length, t);
    }
  }
  const ops: Op[] = [];
  const packets = [...readPackets(writePcap(records, RAW_IP))];
  for (let i = 0; i <= packets.length; i++) {
    const at = advances.get(i);
    if (at !== undefined) ops.push({ advanceTo: at });
    if (i < packets.length) {
      const { index: _index, ...p } = packets[i];
      ops.push({ packet: p });
    }
  }
  return ops;
}

test('random streams: fragments (some never completed), time going back, expiries, a small table, active records', () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 100 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 40 }),
      fc.nat(),
      fc.nat(),
      (steps, max, sizes, c1, c2) => {
        const ops = streamOps(steps);
        const batches: number[] = [];
        for (let left = ops.length, k = 0; left > 0; k++) {
          const size = Math.min(left, sizes[k % sizes.length]);
          batches.push(size);
          left -= size;
        }
        const a = c1 % (batches.length + 1);
        const b = a + (c2 % (batches.length + 1 - a));
        const sysctl = makeSysctl({ nf_conntrack_max: max, nf_conntrack_udp_timeout: 5, nf_conntrack_tcp_timeout_syn_sent: 10, nf_conntrack_tcp_timeout_syn_recv: 7, nf_conntrack_icmp_timeout: 3, nf_conntrack_tcp_timeout_close: 2 });
        expectSameAcrossCuts({ sysctl, activeTimeoutUs: 2_000_000, verdicts: true }, ops, batches, [a, b]);
      },
    ),
    { numRuns: 300 },
  );
});

test('random streams: every packet is judged as the pipeline judges it and counted with its own zone, protocol and length, held fragments too', () => {
  // The processor keeps a packet apart only while its verdict is held back (a fragment, or a
  // packet behind one); the packet must still be found when its verdict comes.
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 100 }), (steps) => {
      const ops = streamOps(steps);
      const sysctl = makeSysctl({ nf_conntrack_udp_timeout: 5 });
      const judged: Array<[number, number, number, number]> = [];
      const proc = new PartitionProcessor({ sysctl, activeTimeoutUs: 2_000_000, verdicts: true, onJudged: (zone, proto, bytes, v) => judged.push([v.index, zone, proto, bytes]) });
      const want: PacketVerdict[] = [];
      const ref = new ConntrackPipeline({ verdict: (v) => want.push(v), event: () => undefined }, { sysctl });
      const packets: ZonedPacket[] = [];
      for (const op of ops) {
        if ('packet' in op) {
          ref.push({ ...op.packet, index: packets.length });
          packets.push(op.packet);
        } else ref.engine.advance(op.advanceTo, []);
      }
      ref.end();
      const out = runOps(proc, ops);
      proc.end();
      const last = proc.drain();
      const verdicts = [...out.verdicts, ...last.verdicts];
      const invalid = [...out.invalid, ...last.invalid];
      expect(verdicts).toEqual(want);
      expect(judged).toEqual(want.map((v) => [v.index, 0, packets[v.index].ip.proto, packets[v.index].ip.length]));
      const bad = want.filter((v) => v.ctstate === 'INVALID');
      expect(invalid.map((r) => [r.src, r.dst, r.reason])).toEqual(bad.map((v) => [packets[v.index].ip.src, packets[v.index].ip.dst, v.reason]));
    }),
    { numRuns: 300 },
  );
});

describe('changelog records', () => {
  const udp = (src: string, dst: string, sport: number, dport: number) =>
    [...readPackets(writePcap([{ tsUs: 1_700_000_000_000_000, data: ipv4Packet({ src, dst, proto: 17, payload: udpDatagram({ sport, dport }) }) }], RAW_IP))][0];
  const opts = () => ({ sysctl: makeSysctl({ nf_conntrack_udp_timeout: 5 }), activeTimeoutUs: 0, verdicts: false, trackState: true });
  const zoned = (p: ReturnType<typeof udp>, tsUs: number) => {
    const { index: _index, ...rest } = p;
    return { ...rest, tsUs };
  };

  test('an entry is written when created, a tombstone when destroyed; nothing at all when nothing happened', () => {
    const proc = new PartitionProcessor(opts());
    expect(proc.stateChanges().map((r) => r.key)).toEqual([META_KEY]);
    expect(proc.stateChanges()).toEqual([]);
    const p = udp('10.0.0.1', '10.0.0.2', 1000, 53);
    proc.push(zoned(p, 1e6));
    const created = proc.stateChanges();
    expect(created.map((r) => r.key)).toEqual(['c1', META_KEY]);
    expect(created[0].value![0]).toBe(1); // the format version
    expect(proc.stateChanges()).toEqual([]);
    proc.advanceTo(7e6); // past the 5 s UDP timeout
    const gone = proc.stateChanges();
    expect(gone.find((r) => r.key === 'c1')).toEqual({ key: 'c1', value: null });
    expect(compact([...created, ...gone]).has('c1')).toBe(false);
    expect(PartitionProcessor.restore(opts(), [...created, ...gone]).engine.count).toBe(0);
  });

  test('the snapshot for a checkpoint exists only while everything changed has been collected', () => {
    const proc = new PartitionProcessor(opts());
    expect(proc.stateSnapshot()).toBeUndefined(); // the meta record is not written yet
    const log = proc.stateChanges();
    expect(proc.stateSnapshot()).toEqual(compact(log));
    proc.push(zoned(udp('10.0.0.1', '10.0.0.2', 1000, 53), 1e6));
    expect(proc.stateSnapshot()).toBeUndefined();
    log.push(...proc.stateChanges());
    expect([...proc.stateSnapshot()!.keys()].sort()).toEqual(['c1', META_KEY]);
    expect(proc.stateSnapshot()).toEqual(compact(log));
    proc.advanceTo(7e6);
    expect(proc.stateSnapshot()).toBeUndefined();
    log.push(...proc.stateChanges());
    expect(proc.stateSnapshot()).toEqual(compact(log));
    expect(proc.stateSnapshot()!.has('c1')).toBe(false);
    expect(() => new PartitionProcessor({ ...opts(), trackState: false }).stateSnapshot()).toThrow('trackState');
  });

  test('compact keeps the last value of each key, and a tombstone deletes', () => {
    const v = (n: number) => new Uint8Array([n]);
    const log: StateRecord[] = [{ key: 'a', value: v(1) }, { key: 'b', value: v(2) }, { key: 'a', value: null }, { key: 'b', value: v(3) }, { key: 'a', value: v(4) }, { key: 'c', value: v(5) }, { key: 'c', value: null }];
    expect([...compact(log)]).toEqual([['b', v(3)], ['a', v(4)]]);
  });

  test('an unknown format version, a truncated value and a missing meta record are refused, naming the key', () => {
    const proc = new PartitionProcessor(opts());
    proc.push(zoned(udp('10.0.0.1', '10.0.0.2', 1000, 53), 1e6));
    const log = proc.stateChanges();
    const entry = log.find((r) => r.key === 'c1')!;
    const meta = log.find((r) => r.key === META_KEY)!;
    const bumped = entry.value!.slice();
    bumped[0] = 99;
    expect(() => PartitionProcessor.restore(opts(), [meta, { key: 'c1', value: bumped }])).toThrow("state record 'c1': unknown entry format version 99 (this build reads version 1)");
    expect(() => PartitionProcessor.restore(opts(), [meta, { key: 'c1', value: entry.value!.subarray(0, 100) }])).toThrow(/state record 'c1': truncated/);
    const badMeta = meta.value!.slice();
    badMeta[0] = 7;
    expect(() => PartitionProcessor.restore(opts(), [entry, { key: META_KEY, value: badMeta }])).toThrow("state record 'm': unknown meta format version 7 (this build reads version 1)");
    expect(() => PartitionProcessor.restore(opts(), [entry])).toThrow(/state record 'm': missing, but 1 other keys are present/);
    expect(() => PartitionProcessor.restore(opts(), [meta, { key: 'c2', value: entry.value }])).toThrow("state record 'c2': holds entry 1");
    expect(() => PartitionProcessor.restore(opts(), [meta, { key: 'x', value: entry.value }])).toThrow("state record 'x': unknown key");
  });

  test("a verdict held behind a fragment moves its flow's accounting in a later batch: the flow is written again then", () => {
    // Batch 1: a fragment is held, then two packets of another flow are judged but their verdicts
    // wait for it. Batch 2: the fragment completes, the verdicts come out and count for their
    // flow, whose entry no packet touched in that batch. Cut. Batch 3: the flow's next packet
    // makes an active record, whose counts include the two delayed ones.
    const at = (ms: number) => 1_700_000_000_000_000 + ms * 1000;
    const whole = udpDatagram({ sport: 5000, dport: 53, payload: new Uint8Array(40) });
    const frames = [
      { tsUs: at(0), data: ipv4Packet({ src: '10.0.0.9', dst: '10.0.1.9', proto: 17, id: 7, mf: true, payload: whole.subarray(0, 24) }) },
      { tsUs: at(100), data: ipv4Packet({ src: '10.0.0.1', dst: '10.0.1.1', proto: 17, payload: udpDatagram({ sport: 4000, dport: 53 }) }) },
      { tsUs: at(200), data: ipv4Packet({ src: '10.0.1.1', dst: '10.0.0.1', proto: 17, payload: udpDatagram({ sport: 53, dport: 4000 }) }) },
      { tsUs: at(300), data: ipv4Packet({ src: '10.0.0.9', dst: '10.0.1.9', proto: 17, id: 7, fragOffset: 24, payload: whole.subarray(24) }) },
      { tsUs: at(3000), data: ipv4Packet({ src: '10.0.0.1', dst: '10.0.1.1', proto: 17, payload: udpDatagram({ sport: 4000, dport: 53 }) }) },
    ];
    const ops: Op[] = [...readPackets(writePcap(frames, RAW_IP))].map(({ index: _index, ...p }) => ({ packet: p }));
    const log = expectSameAcrossCuts({ sysctl: makeSysctl(), activeTimeoutUs: 2_000_000, verdicts: true }, ops, [3, 1, 1], [2]);
    expect(log.length).toBeGreaterThan(0);
  });

  test('stateChanges() needs trackState', () => {
    expect(() => new PartitionProcessor({ ...opts(), trackState: false }).stateChanges()).toThrow(/trackState/);
  });

  test('runOps sees what the processor did (sanity of the harness)', () => {
    const out = runOps(new PartitionProcessor(opts()), [{ packet: zoned(udp('10.0.0.1', '10.0.0.2', 1000, 53), 1e6) }]);
    expect(out.events.map((e) => e.type)).toEqual(['NEW']);
  });
});
