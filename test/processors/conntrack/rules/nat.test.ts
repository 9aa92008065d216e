/** NAT rules as the command line writes them (the oracle's syntax), and address canonical forms. */
import { canonicalAddress, describeNat, parseNat } from '../../../../processors/conntrack/rules/nat';

describe('parseNat', () => {
  test('snat and masquerade: a source prefix and one address', () => {
    const r = parseNat('snat:198.18.0.0/24->198.18.200.1');
    expect(r).toMatchObject({ kind: 'snat', family: 4, toAddr: '198.18.200.1' });
    expect(r.match.src?.text).toBe('198.18.0.0/24');
    expect(r.toPorts).toBeUndefined();
    expect(parseNat('masquerade:10.0.0.0/8->192.0.2.1').kind).toBe('masquerade');
    expect(describeNat(r)).toBe('ip saddr 198.18.0.0/24 snat to 198.18.200.1');
  });

  test('dnat: protocol, address and port to address and port', () => {
    const r = parseNat('dnat:tcp/198.18.100.1:80->198.18.0.2:8080');
    expect(r).toMatchObject({ kind: 'dnat', family: 4, toAddr: '198.18.0.2', toPorts: { min: 8080, max: 8080 } });
    expect(r.match).toMatchObject({ proto: 6, dport: 80, family: 4 });
    expect(r.match.dst?.text).toBe('198.18.100.1');
  });

  test.each([
    ['snat:10.0.0.0/8', /is not KIND:MATCH->TO/],
    ['snap:10.0.0.0/8->1.2.3.4', /is not KIND:MATCH->TO/],
    ['snat:10.0.0.0/33->1.2.3.4', /not an IP address or CIDR prefix/],
    ['snat:10.0.0.0/8->1.2.3', /not an IP address/],
    ['snat:2001:db8::/32->2001:db8::1', /takes IPv4/],
    ['dnat:tcp/10.0.0.1->10.0.0.2:80', /dnat:PROTO\/ADDR:PORT->ADDR:PORT/],
    ['dnat:bogus/10.0.0.1:80->10.0.0.2:80', /not a protocol/],
    ['dnat:tcp/10.0.0.1:80->10.0.0.2:70000', /not a port/],
  ])('%j is refused, saying why', (text, why) => {
    expect(() => parseNat(text)).toThrow(why);
  });
});

describe('canonicalAddress', () => {
  test.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:1:1:1:1:1:1', '2001:db8:1:1:1:1:1:1'],
    ['::ffff:198.18.0.1', '::ffff:198.18.0.1'],
  ])('%s is written %s, as the packet decoder writes it', (text, want) => {
    expect(canonicalAddress(text).text).toBe(want);
  });
});
