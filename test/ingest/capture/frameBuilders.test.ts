import {
  icmpMessage,
  internetChecksum,
  ipv4Packet,
  ipv6Packet,
  tcpSegment,
  udpDatagram,
} from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { openCapture } from '../../../ingest/capture/reader';
import { LINKTYPE } from '../../../ingest/capture/types';
import { parseIpv4, parseIpv6 } from '../../../ingest/decode/address';
import { IPPROTO, TCP_FLAG } from '../../../processors/packet';

function pseudo4(src: string, dst: string, proto: number, len: number): Uint8Array {
  const p = new Uint8Array(12);
  p.set(parseIpv4(src), 0);
  p.set(parseIpv4(dst), 4);
  p[9] = proto;
  p[10] = len >> 8;
  p[11] = len & 0xff;
  return p;
}

function pseudo6(src: string, dst: string, proto: number, len: number): Uint8Array {
  const p = new Uint8Array(40);
  p.set(parseIpv6(src), 0);
  p.set(parseIpv6(dst), 16);
  p[34] = len >> 8;
  p[35] = len & 0xff;
  p[39] = proto;
  return p;
}

describe('internetChecksum', () => {
  test('RFC 1071 worked example', () => {
    expect(internetChecksum(Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7))).toBe(0x220d);
  });

  test('odd lengths pad with a zero byte', () => {
    expect(internetChecksum(Uint8Array.of(0x12, 0x34, 0x56))).toBe(~(0x1234 + 0x5600) & 0xffff);
  });

  test('large inputs fold without overflow', () => {
    const big = new Uint8Array(65535).fill(0xff);
    expect(internetChecksum(big)).toBe(internetChecksum(big.subarray(0, 65534), big.subarray(65534)));
  });
});

describe('builders produce valid checksums', () => {
  const src = '192.0.2.10';
  const dst = '198.51.100.20';

  test('IPv4 header and TCP with options and payload', () => {
    const seg = tcpSegment({ sport: 1234, dport: 80, seq: 1, ack: 2, flags: TCP_FLAG.PSH | TCP_FLAG.ACK, options: { timestamp: { value: 1, echo: 2 } }, payload: Uint8Array.of(1, 2, 3) });
    const pkt = ipv4Packet({ src, dst, proto: IPPROTO.TCP, payload: seg, id: 99 });
    expect(internetChecksum(pkt.subarray(0, 20))).toBe(0);
    expect(internetChecksum(pseudo4(src, dst, IPPROTO.TCP, seg.length), pkt.subarray(20))).toBe(0);
    expect(seg[16] | seg[17]).toBe(0); // the builder's input is left alone
  });

  test('UDP over IPv4', () => {
    const pkt = ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport: 53, dport: 53, payload: Uint8Array.of(9) }) });
    expect(internetChecksum(pseudo4(src, dst, IPPROTO.UDP, 9), pkt.subarray(20))).toBe(0);
  });

  test('ICMP has no pseudo-header', () => {
    const pkt = ipv4Packet({ src, dst, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 8, id: 1, seq: 1, payload: Uint8Array.of(1, 2, 3, 4, 5) }) });
    expect(internetChecksum(pkt.subarray(20))).toBe(0);
  });

  test('ICMPv6 and UDP over IPv6 (with an extension header before them)', () => {
    const s6 = '2001:db8::1';
    const d6 = '2001:db8::2';
    const icmp = ipv6Packet({ src: s6, dst: d6, nextHeader: IPPROTO.ICMPV6, payload: icmpMessage({ type: 128, id: 3, seq: 4 }) });
    expect(internetChecksum(pseudo6(s6, d6, IPPROTO.ICMPV6, 8), icmp.subarray(40))).toBe(0);
    const udp = ipv6Packet({ src: s6, dst: d6, nextHeader: IPPROTO.UDP, payload: udpDatagram({ sport: 1, dport: 2 }), extensions: [{ type: 60 }] });
    expect(internetChecksum(pseudo6(s6, d6, IPPROTO.UDP, 8), udp.subarray(48))).toBe(0);
  });

  test('fragments keep the caller’s transport bytes', () => {
    const payload = udpDatagram({ sport: 1, dport: 2, payload: new Uint8Array(16) });
    const frag = ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload, mf: true });
    expect(frag.subarray(20)).toEqual(payload);
  });
});

describe('writePcap', () => {
  test('round-trips timestamps, lengths and link type', () => {
    const data = Uint8Array.of(0x45, 1, 2, 3);
    const file = writePcap([{ tsUs: 1_600_000_000_999_999, data, origLength: 60 }], LINKTYPE.IPV4);
    const [f] = [...openCapture(file)];
    expect(f).toMatchObject({ frame: 0, tsUs: 1_600_000_000_999_999, linkType: LINKTYPE.IPV4, origLength: 60 });
    expect(f.data).toEqual(data);
  });
});

describe('address parsing', () => {
  test.each(['1.2.3', '1.2.3.256', 'a.b.c.d', '1.2.3.4.5'])('rejects ipv4 %s', (s) => expect(() => parseIpv4(s)).toThrow());
  test.each(['1::2::3', '1:2:3:4:5:6:7', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9'])('rejects ipv6 %s', (s) => expect(() => parseIpv6(s)).toThrow());
  test('accepts a dotted-quad tail', () => {
    expect(Array.from(parseIpv6('::ffff:10.1.2.3').subarray(10))).toEqual([0xff, 0xff, 10, 1, 2, 3]);
  });
});
