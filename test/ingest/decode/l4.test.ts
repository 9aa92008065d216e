import { icmpMessage, ipv4Packet, ipv6Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { decodeIp, type IpResult } from '../../../ingest/decode/ip';
import { IPPROTO, TCP_FLAG, type IcmpHeader, type IpPacket, type TcpHeader } from '../../../processors/packet';

const SRC = '198.18.0.1';
const DST = '198.18.0.2';
function ok(r: IpResult): IpPacket {
  if (r.kind !== 'ip') throw new Error(`malformed: ${r.reason}`);
  return r.packet;
}
const v4 = (proto: number, payload: Uint8Array) => ipv4Packet({ src: SRC, dst: DST, proto, payload });
const decode = (d: Uint8Array, end = d.length) => decodeIp(d, 0, end);

describe('TCP', () => {
  const syn = tcpSegment({
    sport: 40000,
    dport: 443,
    seq: 0xfffffff0,
    ack: 0,
    flags: TCP_FLAG.SYN | TCP_FLAG.ECE | TCP_FLAG.CWR,
    window: 64240,
    options: { mss: 1460, sackPermitted: true, timestamp: { value: 0x80000001, echo: 0 }, wscale: 7 },
  });

  test('header fields and options', () => {
    const tcp = ok(decode(v4(IPPROTO.TCP, syn))).l4 as TcpHeader;
    expect(tcp).toMatchObject({ kind: 'tcp', sport: 40000, dport: 443, seq: 0xfffffff0, ack: 0, flags: 0xc2, window: 64240, headerLength: 40, dataLength: 0 });
    expect(tcp.options).toEqual({ mss: 1460, sackPermitted: true, timestamp: { value: 0x80000001, echo: 0 }, wscale: 7 });
  });

  test('SACK blocks', () => {
    const seg = tcpSegment({ sport: 1, dport: 2, seq: 5, ack: 6, flags: TCP_FLAG.ACK, options: { sack: [[100, 200], [0xfffffff0, 0x10]] } });
    expect((ok(decode(v4(IPPROTO.TCP, seg))).l4 as TcpHeader).options).toEqual({ sack: [[100, 200], [0xfffffff0, 0x10]] });
  });

  test('an option with an impossible length ends option parsing', () => {
    const seg = tcpSegment({ sport: 1, dport: 2, seq: 5, flags: TCP_FLAG.SYN, options: { mss: 1200, wscale: 3 } });
    seg[25] = 1; // the window-scale option (after MSS and a NOP) claims length 1
    const tcp = ok(decode(v4(IPPROTO.TCP, seg))).l4 as TcpHeader;
    expect(tcp.options).toEqual({ mss: 1200 });
  });

  test('dataLength comes from the IP length even when the capture is cut', () => {
    const seg = tcpSegment({ sport: 1, dport: 2, seq: 5, flags: TCP_FLAG.PSH | TCP_FLAG.ACK, payload: new Uint8Array(1000).fill(7) });
    const d = v4(IPPROTO.TCP, seg);
    const tcp = ok(decode(d, 20 + 20 + 10)).l4 as TcpHeader;
    expect(tcp.dataLength).toBe(1000);
    expect(tcp.payload?.length).toBe(10);
    expect(tcp.payload?.buffer).toBe(d.buffer); // a view, not a copy
  });

  test('options cut by the capture keep what is there', () => {
    const d = v4(IPPROTO.TCP, syn);
    const tcp = ok(decode(d, 20 + 24)).l4 as TcpHeader;
    expect(tcp.headerLength).toBe(40);
    expect(tcp.options).toEqual({ mss: 1460 });
    expect(tcp.payload?.length).toBe(0);
  });

  test.each([
    ['header cut by the capture', (d: Uint8Array) => d.subarray(0, 32), 'truncated tcp header: 12 of 20 bytes'],
    ['data offset 4', (d: Uint8Array) => ((d[32] = 0x40), d), 'bad tcp header length 16'],
    ['data offset past the segment', (d: Uint8Array) => ((d[32] = 0xf0), d), 'bad tcp header length 60 > segment 40 bytes'],
  ])('%s: still an IP packet (the kernel judges it INVALID), without l4 and with the reason', (_name, mutate, reason) => {
    const p = ok(decode(mutate(v4(IPPROTO.TCP, syn))));
    expect(p.l4).toBeUndefined();
    expect(p.l4Error).toBe(reason);
  });
});

describe('UDP and UDP-Lite', () => {
  test('UDP length and payload view', () => {
    const d = v4(IPPROTO.UDP, udpDatagram({ sport: 53, dport: 5353, payload: Uint8Array.of(1, 2, 3) }));
    expect(ok(decode(d)).l4).toEqual({ kind: 'udp', sport: 53, dport: 5353, length: 11, payload: Uint8Array.of(1, 2, 3) });
  });

  test('UDP-Lite', () => {
    const d = v4(IPPROTO.UDPLITE, udpDatagram({ sport: 9, dport: 10, length: 8, payload: Uint8Array.of(4, 5) }));
    expect(ok(decode(d)).l4).toEqual({ kind: 'udplite', sport: 9, dport: 10, length: 8, payload: Uint8Array.of(4, 5) });
  });

  test('a UDP header cut short is an IP packet without l4, carrying the reason', () => {
    const p = ok(decode(v4(IPPROTO.UDP, new Uint8Array(6))));
    expect([p.l4, p.l4Error]).toEqual([undefined, 'truncated udp header: 6 of 8 bytes']);
  });
});

describe('ICMP', () => {
  const quotedSyn = v4(IPPROTO.TCP, tcpSegment({ sport: 42000, dport: 8443, seq: 123456789, flags: TCP_FLAG.SYN }));

  test('echo request id and sequence', () => {
    expect(ok(decode(v4(IPPROTO.ICMP, icmpMessage({ type: 8, id: 0x1234, seq: 9 })))).l4).toEqual({ kind: 'icmp', type: 8, code: 0, id: 0x1234, seq: 9 });
  });

  test('timestamp request is a query type too', () => {
    expect(ok(decode(v4(IPPROTO.ICMP, icmpMessage({ type: 13, id: 5, seq: 6, payload: new Uint8Array(12) })))).l4).toMatchObject({ id: 5, seq: 6 });
  });

  test('time exceeded quoting a whole TCP header', () => {
    const d = ipv4Packet({ src: '198.18.0.9', dst: SRC, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 11, payload: quotedSyn }) });
    const icmp = ok(decode(d)).l4 as IcmpHeader;
    expect(icmp).toMatchObject({ kind: 'icmp', type: 11, code: 0, id: 0, seq: 0 });
    expect(icmp.inner).toMatchObject({ family: 4, src: SRC, dst: DST, proto: IPPROTO.TCP, length: 40 });
    expect(icmp.inner?.l4).toMatchObject({ kind: 'tcp', sport: 42000, dport: 8443, seq: 123456789, flags: TCP_FLAG.SYN });
  });

  test('port unreachable quoting only 8 bytes of TCP (RFC 792 minimum)', () => {
    const quote = quotedSyn.subarray(0, 28);
    const d = ipv4Packet({ src: DST, dst: SRC, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 3, payload: quote }) });
    const icmp = ok(decode(d)).l4 as IcmpHeader;
    expect(icmp.inner?.length).toBe(40); // the quoted header's claim, not the quote's size
    expect(icmp.inner?.l4).toMatchObject({ kind: 'tcp', sport: 42000, dport: 8443, seq: 123456789 });
  });

  test('a quote cut inside the transport header keeps the IP part only', () => {
    const d = ipv4Packet({ src: DST, dst: SRC, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 1, payload: quotedSyn.subarray(0, 24) }) });
    const icmp = ok(decode(d)).l4 as IcmpHeader;
    expect(icmp.inner).toMatchObject({ src: SRC, dst: DST, proto: IPPROTO.TCP });
    expect(icmp.inner?.l4).toBeUndefined();
  });

  test('a quote too short for an IP header leaves no inner packet', () => {
    const d = ipv4Packet({ src: DST, dst: SRC, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 1, payload: quotedSyn.subarray(0, 12) }) });
    const icmp = ok(decode(d)).l4 as IcmpHeader;
    expect(icmp.type).toBe(3);
    expect(icmp.inner).toBeUndefined();
  });

  test('quotes are followed one level only', () => {
    const innerError = ipv4Packet({ src: DST, dst: SRC, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 3, payload: quotedSyn }) });
    const d = ipv4Packet({ src: '198.18.0.9', dst: DST, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 11, payload: innerError }) });
    const inner = (ok(decode(d)).l4 as IcmpHeader).inner;
    expect(inner?.l4).toEqual({ kind: 'icmp', type: 3, code: 3, id: 0, seq: 0 });
  });

  test('ICMPv6 packet too big quoting IPv6 UDP', () => {
    const quoted = ipv6Packet({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: IPPROTO.UDP, payload: udpDatagram({ sport: 7, dport: 8, payload: new Uint8Array(1400) }) });
    const d = ipv6Packet({ src: '2001:db8::fe', dst: '2001:db8::1', nextHeader: IPPROTO.ICMPV6, payload: icmpMessage({ type: 2, rest: 1280, payload: quoted.subarray(0, 1232) }) });
    const icmp = ok(decode(d)).l4 as IcmpHeader;
    expect(icmp).toMatchObject({ kind: 'icmpv6', type: 2, code: 0 });
    expect(icmp.inner).toMatchObject({ family: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: IPPROTO.UDP, length: 1448 });
    expect(icmp.inner?.l4).toMatchObject({ kind: 'udp', sport: 7, dport: 8 });
  });

  test('an ICMP header cut short is an IP packet without l4, carrying the reason', () => {
    const p = ok(decode(v4(IPPROTO.ICMP, Uint8Array.of(8, 0, 0, 0))));
    expect([p.l4, p.l4Error]).toEqual([undefined, 'truncated icmp header: 4 of 8 bytes']);
  });
});

describe('SCTP, GRE, DCCP and others', () => {
  test('SCTP INIT carries the initiate tag', () => {
    const sctp = new Uint8Array(12 + 20);
    sctp.set([0x0f, 0x1c, 0x0f, 0x1c, 0, 0, 0, 0], 0); // ports 3868 → 3868, vtag 0
    sctp.set([1, 0, 0, 20, 0xca, 0xfe, 0xba, 0xbe], 12); // INIT, length 20, initiate tag
    expect(ok(decode(v4(IPPROTO.SCTP, sctp))).l4).toEqual({
      kind: 'sctp',
      sport: 3868,
      dport: 3868,
      vtag: 0,
      chunks: [{ type: 1, flags: 0, length: 20, initTag: 0xcafebabe }],
    });
  });

  test('SCTP with several chunks (DATA padded, then SACK)', () => {
    const sctp = new Uint8Array(12 + 20 + 16);
    sctp.set([0, 1, 0, 2, 0, 0, 0, 9], 0);
    sctp.set([0, 3, 0, 17], 12); // DATA, length 17 → padded to 20
    sctp.set([3, 0, 0, 16], 32); // SACK
    const l4 = ok(decode(v4(IPPROTO.SCTP, sctp))).l4;
    expect(l4).toMatchObject({ vtag: 9, chunks: [{ type: 0, flags: 3, length: 17 }, { type: 3, flags: 0, length: 16 }] });
  });

  test('GREv1 (PPTP) call id', () => {
    const gre = Uint8Array.of(0x30, 0x81, 0x88, 0x0b, 0, 0, 0x12, 0x34, 0, 0, 0, 1);
    expect(ok(decode(v4(IPPROTO.GRE, gre))).l4).toEqual({ kind: 'gre', version: 1, protocolType: 0x880b, key: 0x1234 });
  });

  test('GREv0 key after a checksum', () => {
    const gre = Uint8Array.of(0xa0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef);
    expect(ok(decode(v4(IPPROTO.GRE, gre))).l4).toEqual({ kind: 'gre', version: 0, protocolType: 0x0800, key: 0xdeadbeef });
  });

  test('GREv0 without a key', () => {
    expect(ok(decode(v4(IPPROTO.GRE, Uint8Array.of(0, 0, 0x86, 0xdd)))).l4).toEqual({ kind: 'gre', version: 0, protocolType: 0x86dd });
  });

  test('DCCP request', () => {
    const dccp = new Uint8Array(16);
    dccp.set([0x13, 0x88, 0x00, 0x50, 4, 0, 0, 0, (0 << 1) | 1], 0); // X=1, type 0 (Request)
    expect(ok(decode(v4(IPPROTO.DCCP, dccp))).l4).toEqual({ kind: 'dccp', sport: 5000, dport: 80, type: 0 });
    dccp[8] = (2 << 1) | 1; // DCCP-Data
    expect(ok(decode(v4(IPPROTO.DCCP, dccp))).l4).toMatchObject({ type: 2 });
  });

  test.each([IPPROTO.ESP, IPPROTO.AH, 2, 253])('protocol %d is generic', (proto) => {
    expect(ok(decode(v4(proto, new Uint8Array(16)))).l4).toEqual({ kind: 'generic' });
  });
});
