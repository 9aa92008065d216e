/** PacketMatch: prefixes of both families, ports on either side, and refusals that name the text. */
import fc from 'fast-check';
import type { IpPacket } from '../../../../processors/packet';
import { inPrefix, ipv6Groups, matchesPacket, parsePrefix, parseProtoPort } from '../../../../processors/conntrack/rules/match';

const tcp = (src: string, dst: string, sport: number, dport: number, family: 4 | 6 = 4): IpPacket => ({
  family, src, dst, proto: 6, length: 40, ttl: 64,
  l4: { kind: 'tcp', sport, dport, seq: 0, ack: 0, flags: 2, window: 1, headerLength: 20, dataLength: 0, options: {} },
});

describe('prefixes', () => {
  test('IPv4 prefixes agree with a bit-by-bit comparison', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (net, addr, bits) => {
        const p = parsePrefix(`${net}/${bits}`);
        const bitsOf = (a: string) => a.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
        expect(inPrefix(p, 4, addr)).toBe(bitsOf(net).slice(0, bits) === bitsOf(addr).slice(0, bits));
      }),
    );
  });

  test('IPv6 text forms expand to the same groups', () => {
    expect(ipv6Groups('2001:db8::1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups('::ffff:198.18.0.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0xc612, 0x0001]);
    expect(ipv6Groups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const p = parsePrefix('2001:db8::/32');
    expect(inPrefix(p, 6, '2001:db8:1::1')).toBe(true);
    expect(inPrefix(p, 6, '2001:db9::1')).toBe(false);
    expect(inPrefix(p, 4, '198.18.0.1')).toBe(false);
    expect(inPrefix(parsePrefix('2001:db8:1:2::/63'), 6, '2001:db8:1:3::5')).toBe(true);
    expect(inPrefix(parsePrefix('2001:db8:1:2::/64'), 6, '2001:db8:1:3::5')).toBe(false);
  });

  test('bad prefixes are refused by their text', () => {
    expect(() => parsePrefix('198.18.0.0/33')).toThrow("'198.18.0.0/33' is not an IP address or CIDR prefix");
    expect(() => parsePrefix('example.com')).toThrow("'example.com'");
    expect(() => parsePrefix('10.0.0.0/8/1')).toThrow("'10.0.0.0/8/1'");
  });
});

describe('matchesPacket', () => {
  test('PROTO/PORT matches the port on either side, only for that protocol', () => {
    const m = parseProtoPort('tcp/80');
    expect(matchesPacket(m, tcp('10.0.0.1', '10.0.0.2', 40000, 80), 0)).toBe(true);
    expect(matchesPacket(m, tcp('10.0.0.2', '10.0.0.1', 80, 40000), 0)).toBe(true);
    expect(matchesPacket(m, tcp('10.0.0.2', '10.0.0.1', 81, 40000), 0)).toBe(false);
    expect(matchesPacket({ proto: 17, port: 80 }, tcp('10.0.0.1', '10.0.0.2', 40000, 80), 0)).toBe(false);
  });

  test('every field must hold: addresses, ports, zone, family', () => {
    const m = { src: parsePrefix('10.0.0.0/24'), dport: 80, zone: 3 };
    expect(matchesPacket(m, tcp('10.0.0.9', '1.1.1.1', 1, 80), 3)).toBe(true);
    expect(matchesPacket(m, tcp('10.0.0.9', '1.1.1.1', 1, 80), 0)).toBe(false);
    expect(matchesPacket(m, tcp('10.0.1.9', '1.1.1.1', 1, 80), 3)).toBe(false);
    expect(matchesPacket(m, tcp('10.0.0.9', '1.1.1.1', 1, 81), 3)).toBe(false);
    expect(matchesPacket({ family: 6 }, tcp('2001:db8::1', '2001:db8::2', 1, 2, 6), 0)).toBe(true);
    expect(matchesPacket({ family: 6 }, tcp('10.0.0.1', '10.0.0.2', 1, 2), 0)).toBe(false);
  });

  test('a port test fails on a packet without ports, as in nft', () => {
    const icmp: IpPacket = { family: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 1, length: 28, ttl: 64 };
    expect(matchesPacket({ port: 0 }, icmp, 0)).toBe(false);
    expect(matchesPacket({}, icmp, 0)).toBe(true);
  });

  test('the shorthand refuses what it cannot read, naming it', () => {
    expect(() => parseProtoPort('tcp:80')).toThrow("'tcp:80' is not PROTO/PORT");
    expect(() => parseProtoPort('tcp/70000')).toThrow("'70000' is not a port");
    expect(() => parseProtoPort('foo/80')).toThrow("'foo' is not a protocol");
  });
});
