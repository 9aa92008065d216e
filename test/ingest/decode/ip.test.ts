import fc from 'fast-check';
import { icmpMessage, ipv4Packet, ipv6Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { formatIpv6, ipv6Text, parseIpv6 } from '../../../ingest/decode/address';
import { decodeIp, type IpResult } from '../../../ingest/decode/ip';
import { IPPROTO, TCP_FLAG, type IpPacket } from '../../../processors/packet';

const udp = udpDatagram({ sport: 1000, dport: 2000, payload: new Uint8Array(100) });
const decode = (d: Uint8Array, end = d.length): IpResult => decodeIp(d, 0, end);
function ok(r: IpResult): IpPacket {
  if (r.kind !== 'ip') throw new Error(`malformed: ${r.reason}`);
  return r.packet;
}

describe('IPv4', () => {
  test('basic fields, length and offsets', () => {
    const d = ipv4Packet({ src: '192.0.2.1', dst: '198.51.100.7', proto: IPPROTO.UDP, payload: udp, ttl: 17 });
    const p = ok(decode(d));
    expect(p).toMatchObject({ family: 4, src: '192.0.2.1', dst: '198.51.100.7', proto: 17, length: 128, ttl: 17, l4Offset: 20 });
    expect(p.fragment).toBeUndefined();
    expect(p.bytes).toEqual(d);
  });

  test('options move the upper-layer header', () => {
    const d = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udp, options: Uint8Array.of(0x94, 4, 0, 0) });
    const p = ok(decode(d));
    expect(p.l4Offset).toBe(24);
    expect(p.l4).toMatchObject({ kind: 'udp', sport: 1000, dport: 2000 });
  });

  test('first fragment keeps its upper layer; later fragments have none', () => {
    const first = ok(decode(ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udp.subarray(0, 48), id: 77, mf: true })));
    expect(first.fragment).toEqual({ id: 77, offset: 0, moreFragments: true });
    expect(first.l4).toMatchObject({ kind: 'udp', sport: 1000 });
    const last = ok(decode(ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udp.subarray(48), id: 77, fragOffset: 48 })));
    expect(last.fragment).toEqual({ id: 77, offset: 48, moreFragments: false });
    expect(last.l4).toBeUndefined();
  });

  test('a first fragment too short for its transport header is not malformed', () => {
    const p = ok(decode(ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, payload: new Uint8Array(8), mf: true })));
    expect(p.l4).toBeUndefined();
  });

  test('length comes from the header, bytes from the capture', () => {
    const d = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udp });
    const p = ok(decode(d, 40));
    expect(p.length).toBe(128);
    expect(p.bytes?.length).toBe(40);
  });

  test.each([
    ['short header', (d: Uint8Array) => d.subarray(0, 12), 'truncated ipv4 header: 12 of 20 bytes'],
    ['ihl 3', (d: Uint8Array) => ((d[0] = 0x43), d), 'bad ipv4 header length 12 bytes (ihl 3)'],
    ['ihl 15, 40 bytes captured', (d: Uint8Array) => ((d[0] = 0x4f), d.subarray(0, 40)), 'truncated ipv4 header: 40 of 60 bytes'],
    ['total length below header', (d: Uint8Array) => ((d[2] = 0), (d[3] = 10), d), 'bad ipv4 total length 10 < header 20'],
    ['version 5', (d: Uint8Array) => ((d[0] = 0x55), d), 'bad ip version 5'],
  ])('%s is malformed', (_name, mutate, reason) => {
    const d = mutate(ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udp }));
    expect(decode(d)).toEqual({ kind: 'malformed', reason });
  });
});

describe('IPv6', () => {
  const A = '2001:db8::a';
  const B = '2001:db8::b';

  test('extension chain: hop-by-hop, routing, destination options, AH, then TCP', () => {
    const tcp = tcpSegment({ sport: 443, dport: 55000, seq: 1, ack: 2, flags: TCP_FLAG.ACK });
    const d = ipv6Packet({
      src: A,
      dst: B,
      nextHeader: IPPROTO.TCP,
      payload: tcp,
      extensions: [{ type: 0 }, { type: 43, body: new Uint8Array(22) }, { type: 60 }, { type: 51, body: new Uint8Array(14) }],
    });
    const p = ok(decode(d));
    expect(p.proto).toBe(IPPROTO.TCP);
    expect(p.length).toBe(d.length);
    expect(p.l4Offset).toBe(40 + 8 + 24 + 8 + 16);
    expect(p.l4).toMatchObject({ kind: 'tcp', sport: 443, dport: 55000, dataLength: 0 });
  });

  test('fragment header: the first fragment decodes its upper layer', () => {
    const d = ipv6Packet({ src: A, dst: B, nextHeader: IPPROTO.UDP, payload: udp.subarray(0, 56), extensions: [{ type: 0 }, { type: 44, offset: 0, mf: true, id: 0xdeadbeef }] });
    const p = ok(decode(d));
    expect(p.fragment).toEqual({ id: 0xdeadbeef, offset: 0, moreFragments: true });
    expect(p.proto).toBe(IPPROTO.UDP);
    expect(p.l4).toMatchObject({ kind: 'udp', sport: 1000, dport: 2000 });
  });

  test('fragment header: a later fragment names the protocol but has no upper layer', () => {
    const d = ipv6Packet({ src: A, dst: B, nextHeader: IPPROTO.UDP, payload: udp.subarray(56), extensions: [{ type: 44, offset: 56, mf: false, id: 9 }] });
    const p = ok(decode(d));
    expect(p.fragment).toEqual({ id: 9, offset: 56, moreFragments: false });
    expect(p.proto).toBe(IPPROTO.UDP);
    expect(p.l4).toBeUndefined();
  });

  test('an atomic fragment (offset 0, no more fragments) is not a fragment', () => {
    const p = ok(decode(ipv6Packet({ src: A, dst: B, nextHeader: IPPROTO.UDP, payload: udp, extensions: [{ type: 44, offset: 0, mf: false, id: 1 }] })));
    expect(p.fragment).toBeUndefined();
    expect(p.l4).toMatchObject({ kind: 'udp' });
  });

  test('mobility (135) ends the chain as the upper-layer protocol', () => {
    const p = ok(decode(ipv6Packet({ src: A, dst: B, nextHeader: 135, payload: new Uint8Array(8), extensions: [{ type: 60 }] })));
    expect(p.proto).toBe(135);
    expect(p.l4).toEqual({ kind: 'generic' });
  });

  test('ICMPv6 echo', () => {
    const p = ok(decode(ipv6Packet({ src: A, dst: B, nextHeader: IPPROTO.ICMPV6, payload: icmpMessage({ type: 128, id: 7, seq: 3 }) })));
    expect(p.l4).toEqual({ kind: 'icmpv6', type: 128, code: 0, id: 7, seq: 3 });
  });

  test.each([
    ['short header', (d: Uint8Array) => d.subarray(0, 39), 'truncated ipv6 header: 39 of 40 bytes'],
    ['extension header cut by the capture', (d: Uint8Array) => d.subarray(0, 41), 'truncated ipv6 extension header 0: 1 of 2 bytes'],
    ['extension header longer than the packet', (d: Uint8Array) => ((d[41] = 200), d), 'bad ipv6 extension header 0 length 1608: beyond packet end'],
  ])('%s is malformed', (_name, mutate, reason) => {
    const d = mutate(ipv6Packet({ src: A, dst: B, nextHeader: IPPROTO.UDP, payload: udp, extensions: [{ type: 0 }] }));
    expect(decode(d)).toEqual({ kind: 'malformed', reason });
  });
});

describe('IPv6 address text (inet_ntop style)', () => {
  test.each([
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:1:0:1:1:1:1', '2001:db8:1:0:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['0:0:0:0:0:ffff:c000:0201', '::ffff:192.0.2.1'],
    ['0:0:0:0:0:0:c000:0201', '::192.0.2.1'],
    ['0:0:0:0:0:0:0:2', '::2'],
    ['FF02:0:0:0:0:0:0:FB', 'ff02::fb'],
  ])('%s → %s', (input, text) => {
    expect(ipv6Text(parseIpv6(input), 0)).toBe(text);
  });

  test('the cache of recent addresses gives the text built afresh, whatever mix of repeats and collisions', () => {
    // A small pool of addresses (zero runs, v4 tails) met over and over at random offsets, so
    // lookups hit, miss and evict; each answer must be the text and name the same 16 bytes.
    // Addresses that differ in one word only, enough of them for slots to collide.
    const word = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
    const toBytes = (ws: number[]) => Uint8Array.from(ws.flatMap((w) => [w >> 8, w & 0xff]));
    const pool = fc
      .tuple(fc.array(word, { minLength: 8, maxLength: 8 }), fc.nat({ max: 7 }), fc.array(word, { minLength: 1, maxLength: 300 }))
      .map(([base, at, values]) => values.map((v) => toBytes(base.map((w, i) => (i === at ? v : w)))));
    fc.assert(
      fc.property(pool, fc.array(fc.nat(), { maxLength: 600 }), fc.nat({ max: 7 }), (pool, picks, pad) => {
        for (const pick of picks) {
          const bytes = pool[pick % pool.length];
          const d = new Uint8Array(pad + 16);
          d.set(bytes, pad);
          const text = ipv6Text(d, pad);
          expect(text).toBe(formatIpv6(d, pad));
          expect(parseIpv6(text)).toEqual(bytes);
        }
      }),
      { numRuns: 300 },
    );
  });
});
