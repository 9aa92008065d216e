/** FlowFilter's meaning per option (conntrack(8)), its parsing and errors, and that filters AND. */
import fc from 'fast-check';
import { matchesEvent, matchesFlow, selectsEvent } from '../../../processors/filter/flowFilter';
import type { FlowFilter } from '../../../processors/filter/flowFilter';
import { FilterValueError, parseEventMask, parseFlowFilter } from '../../../processors/filter/parseFilter';
import type { FilterInput } from '../../../processors/filter/parseFilter';
import type { FlowEvent, FlowRecord, Tuple } from '../../../processors/flow';
import { STATUS } from '../../../processors/flow';

function flow(over: Partial<FlowRecord> & { orig?: Tuple; reply?: Tuple } = {}): FlowRecord {
  const orig = over.orig ?? { src: '10.0.0.1', dst: '198.51.100.7', sport: 40000, dport: 443 };
  return {
    id: 1,
    zone: 0,
    family: 4,
    proto: 6,
    state: 'ESTABLISHED',
    timeout: 100,
    reply: { src: orig.dst, dst: orig.src, sport: orig.dport, dport: orig.sport },
    status: STATUS.SEEN_REPLY | STATUS.ASSURED | STATUS.CONFIRMED,
    counters: { orig: { packets: 1, bytes: 1 }, reply: { packets: 1, bytes: 1 } },
    startUs: 0,
    lastUs: 0,
    ...over,
    orig,
  };
}

const snat = flow({ reply: { src: '198.51.100.7', dst: '192.0.2.1', sport: 443, dport: 61000 } });
const snatAddrOnly = flow({ reply: { src: '198.51.100.7', dst: '192.0.2.1', sport: 443, dport: 40000 } });
const snatPortOnly = flow({ reply: { src: '198.51.100.7', dst: '10.0.0.1', sport: 443, dport: 61000 } });
const dnat = flow({ reply: { src: '10.9.9.9', dst: '10.0.0.1', sport: 8443, dport: 40000 } });
const plain = flow();
const v6 = flow({ family: 6, orig: { src: '2001:db8::1', dst: '2001:db8:1::2', sport: 1, dport: 53 }, proto: 17, state: undefined });
const ping = flow({ proto: 1, state: undefined, orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0, icmp: { type: 8, code: 0, id: 77 } } });

const sel = (input: FilterInput, f: FlowRecord): boolean => matchesFlow(parseFlowFilter(input), f);

describe('one option at a time, as conntrack(8) means it', () => {
  test('-p, -f, -w', () => {
    expect(sel({ proto: 'tcp' }, plain)).toBe(true);
    expect(sel({ proto: '17' }, plain)).toBe(false);
    expect(sel({ family: 'ipv6' }, v6)).toBe(true);
    expect(sel({ family: 'ipv4' }, v6)).toBe(false);
    expect(sel({ zone: '0' }, plain)).toBe(true);
    expect(sel({ zone: '5' }, plain)).toBe(false);
  });

  test('-s/-d are the original direction, -r/-q the reply direction', () => {
    expect(sel({ src: '10.0.0.1' }, dnat)).toBe(true);
    expect(sel({ dst: '198.51.100.7' }, dnat)).toBe(true);
    expect(sel({ replySrc: '198.51.100.7' }, dnat)).toBe(false);
    expect(sel({ replySrc: '10.9.9.9' }, dnat)).toBe(true);
    expect(sel({ replyDst: '192.0.2.1' }, snat)).toBe(true);
    expect(sel({ replyDst: '10.0.0.1' }, snat)).toBe(false);
  });

  test('ports: --sport/--dport original, --reply-port-* reply; never an entry of a protocol without ports', () => {
    expect(sel({ sport: '40000' }, snat)).toBe(true);
    expect(sel({ replyDport: '61000' }, snat)).toBe(true);
    expect(sel({ replyDport: '40000' }, snat)).toBe(false);
    expect(sel({ replySport: '8443' }, dnat)).toBe(true);
    expect(sel({ dport: '443' }, dnat)).toBe(true);
    expect(sel({ sport: '0' }, ping)).toBe(false);
  });

  test('--state is the protocol state, UNREPLIED/REPLIED/ASSURED for others; LISTEN is conntrack\'s name for SYN_SENT2', () => {
    expect(sel({ state: 'established' }, plain)).toBe(true);
    expect(sel({ state: 'TIME_WAIT' }, plain)).toBe(false);
    expect(sel({ state: 'LISTEN' }, flow({ state: 'SYN_SENT2' }))).toBe(true);
    expect(sel({ proto: 'udp', state: 'ASSURED' }, v6)).toBe(true);
    expect(sel({ proto: 'udp', state: 'UNREPLIED' }, v6)).toBe(false);
  });

  test('-u: every status given must be set; UNSET requires nothing; UNREPLIED is SEEN_REPLY off', () => {
    expect(sel({ status: 'ASSURED' }, plain)).toBe(true);
    expect(sel({ status: 'ASSURED,SEEN_REPLY' }, plain)).toBe(true);
    const replied = flow({ status: STATUS.SEEN_REPLY });
    expect(sel({ status: 'ASSURED,SEEN_REPLY' }, replied)).toBe(false);
    expect(sel({ status: 'SEEN_REPLY' }, replied)).toBe(true);
    expect(sel({ status: 'UNSET' }, flow({ status: 0 }))).toBe(true);
    expect(sel({ status: 'UNREPLIED' }, flow({ status: 0 }))).toBe(true);
    expect(sel({ status: 'UNREPLIED' }, replied)).toBe(false);
    expect(sel({ status: 'FIXED_TIMEOUT' }, plain)).toBe(false);
  });

  test('ICMP: type, code and id of the original tuple, only on ICMP entries', () => {
    expect(sel({ icmpType: '8', icmpCode: '0', icmpId: '77' }, ping)).toBe(true);
    expect(sel({ icmpId: '78' }, ping)).toBe(false);
    expect(sel({ icmpType: '8' }, plain)).toBe(false);
  });
});

describe('CIDR prefixes and --mask-src/--mask-dst', () => {
  test('a prefix and the same mask select the same addresses; a mask may have holes in IPv4, as conntrack ANDs it', () => {
    for (const last of [0, 1, 7, 8, 255]) {
      const f = flow({ orig: { src: `10.0.0.${last}`, dst: '10.1.2.3', sport: 1, dport: 2 } });
      expect(sel({ src: '10.0.0.0/29' }, f)).toBe(last < 8);
      expect(sel({ src: '10.0.0.0', maskSrc: '255.255.255.248' }, f)).toBe(last < 8);
    }
    expect(sel({ dst: '10.9.9.3', maskDst: '255.0.0.255' }, flow({ orig: { src: '1.1.1.1', dst: '10.1.2.3', sport: 1, dport: 2 } }))).toBe(true);
    expect(sel({ dst: '10.9.9.3', maskDst: '255.0.0.255' }, flow({ orig: { src: '1.1.1.1', dst: '10.1.2.4', sport: 1, dport: 2 } }))).toBe(false);
  });

  test('IPv6 prefixes and contiguous masks', () => {
    expect(sel({ src: '2001:db8::/32' }, v6)).toBe(true);
    expect(sel({ src: '2001:db9::/32' }, v6)).toBe(false);
    expect(sel({ dst: '2001:db8:1::', maskDst: 'ffff:ffff:ffff::' }, v6)).toBe(true);
    expect(() => parseFlowFilter({ dst: '2001:db8:1::', maskDst: 'ffff:0:ffff::' })).toThrow(/contiguous/);
  });

  test('a mask needs its address, and the address must not carry a length too', () => {
    expect(() => parseFlowFilter({ maskSrc: '255.0.0.0' })).toThrow(FilterValueError);
    expect(() => parseFlowFilter({ src: '10.0.0.0/8', maskSrc: '255.0.0.0' })).toThrow(/without a prefix length/);
  });
});

describe('NAT, decided on the tuples as conntrack does', () => {
  test('--src-nat: the reply goes to another address or port than the original source', () => {
    expect([snat, snatAddrOnly, snatPortOnly, dnat, plain].map((f) => sel({ srcNat: true }, f))).toEqual([true, true, true, false, false]);
    expect([snat, snatAddrOnly, dnat, plain].map((f) => sel({ dstNat: true }, f))).toEqual([false, false, true, false]);
    expect([snat, dnat, plain].map((f) => sel({ anyNat: true }, f))).toEqual([true, true, false]);
  });

  test('with an address: translated to (SNAT) or from (DNAT) it; a port in it must be the new port; port-only NAT never matches an address', () => {
    expect(sel({ srcNat: '192.0.2.1' }, snat)).toBe(true);
    expect(sel({ srcNat: '192.0.2.2' }, snat)).toBe(false);
    expect(sel({ srcNat: '192.0.2.1:61000' }, snat)).toBe(true);
    expect(sel({ srcNat: '192.0.2.1:61001' }, snat)).toBe(false);
    expect(sel({ srcNat: '192.0.2.1:40000' }, snatAddrOnly)).toBe(false);
    expect(sel({ srcNat: '10.0.0.1' }, snatPortOnly)).toBe(false);
    expect(sel({ dstNat: '10.9.9.9:8443' }, dnat)).toBe(true);
    expect(sel({ anyNat: '10.9.9.9' }, dnat)).toBe(true);
    expect(sel({ anyNat: '10.9.9.9' }, snat)).toBe(false);
    expect(sel({ anyNat: '192.0.2.1' }, snat)).toBe(true);
  });

  test('ICMP: SNAT may rewrite the echo id, which counts as the port; type and code never do', () => {
    const idOnly = flow({ ...ping, reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 0, dport: 0, icmp: { type: 0, code: 0, id: 1000 } } });
    expect([sel({ srcNat: true }, idOnly), sel({ dstNat: true }, idOnly)]).toEqual([true, false]);
    const masq = flow({ ...ping, reply: { src: '10.0.0.2', dst: '192.0.2.1', sport: 0, dport: 0, icmp: { type: 0, code: 0, id: 1000 } } });
    expect(sel({ srcNat: '192.0.2.1:1000' }, masq)).toBe(true);
    expect(sel({ srcNat: '192.0.2.1:77' }, masq)).toBe(false);
    const untouched = flow({ ...ping, reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 0, dport: 0, icmp: { type: 0, code: 0, id: 77 } } });
    expect(sel({ anyNat: true }, untouched)).toBe(false);
  });

  test('--src-nat and --dst-nat together want both', () => {
    const both = flow({ reply: { src: '10.9.9.9', dst: '192.0.2.1', sport: 443, dport: 40000 } });
    expect([both, snat, dnat].map((f) => sel({ srcNat: true, dstNat: true }, f))).toEqual([true, false, false]);
  });

  test('a status bit alone does not make an entry NATed (nf_nat marks every entry it passes)', () => {
    expect(sel({ anyNat: true }, flow({ status: STATUS.SRC_NAT | STATUS.DST_NAT | STATUS.SEEN_REPLY }))).toBe(false);
  });
});

describe('bad values name the field and the value', () => {
  test.each<[FilterInput, string]>([
    [{ proto: 'foo' }, 'proto'],
    [{ family: 'ipv5' }, 'family'],
    [{ zone: '70000' }, 'zone'],
    [{ state: 'BOGUS' }, 'state'],
    [{ proto: 'tcp', state: 'ASSURED' }, 'state'],
    [{ status: 'ASSURED,BOGUS' }, 'status'],
    [{ src: '10.0.0.300' }, 'src'],
    [{ replyDst: '10.0.0.0/33' }, 'replyDst'],
    [{ sport: '65536' }, 'sport'],
    [{ proto: 'icmp', dport: '80' }, 'dport'],
    [{ proto: 'tcp', icmpType: '8' }, 'icmpType'],
    [{ icmpCode: '256' }, 'icmpCode'],
    [{ srcNat: 'capture.pcap' }, 'srcNat'],
    [{ family: 'ipv6', src: '10.0.0.1' }, 'src'],
    [{ src: '10.0.0.1', dst: '2001:db8::1' }, 'dst'],
  ])('%j is refused, under %s', (input, field) => {
    let err: unknown;
    try {
      parseFlowFilter(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FilterValueError);
    expect((err as FilterValueError).field).toBe(field);
    // The value, or for a list the word of it that is wrong.
    const value = String(input[field as keyof FilterInput]);
    expect([value, ...value.split(',')].some((v) => (err as Error).message.includes(`'${v}'`))).toBe(true);
  });
});

describe('-e event masks', () => {
  const ev = (type: FlowEvent['type'], f: FlowRecord = plain): FlowEvent => ({ type, tsUs: 0, flow: f, protoinfo: false });
  test('conntrack names, any case; UPDATES is the UPDATE event; ALL is every type', () => {
    expect([...parseEventMask('new,DESTROY')].sort()).toEqual(['DESTROY', 'NEW']);
    expect([...parseEventMask('UPDATES')]).toEqual(['UPDATE']);
    expect(parseEventMask('ALL').size).toBe(3);
    expect(() => parseEventMask('NEW,FOO')).toThrow(/'FOO'/);
    const mask = parseEventMask('NEW,DESTROY');
    expect(['NEW', 'UPDATE', 'DESTROY'].map((t) => matchesEvent(mask, ev(t as FlowEvent['type'])))).toEqual([true, false, true]);
    expect(matchesEvent(undefined, ev('UPDATE'))).toBe(true);
  });

  test('an event passes when its type is in the mask and its entry passes the filters', () => {
    const filter = parseFlowFilter({ srcNat: true });
    const mask = parseEventMask('NEW');
    expect(selectsEvent(filter, mask, ev('NEW', snat))).toBe(true);
    expect(selectsEvent(filter, mask, ev('NEW', plain))).toBe(false);
    expect(selectsEvent(filter, mask, ev('DESTROY', snat))).toBe(false);
  });
});

describe('combinations', () => {
  const addr = fc.constantFrom('10.0.0.1', '10.0.0.2', '192.0.2.1', '198.51.100.7', '10.9.9.9');
  const port = fc.constantFrom(53, 443, 8443, 40000, 61000);
  const tuple = fc.record({ src: addr, dst: addr, sport: port, dport: port });
  const anyFlow = fc.record({
    orig: tuple,
    reply: tuple,
    proto: fc.constantFrom(6, 17, 132),
    zone: fc.constantFrom(0, 5),
    status: fc.constantFrom(0, STATUS.SEEN_REPLY, STATUS.SEEN_REPLY | STATUS.ASSURED),
    state: fc.constantFrom('ESTABLISHED', 'TIME_WAIT', undefined),
  }).map((r) => flow(r));
  const inputs = fc.record(
    {
      proto: fc.constantFrom('tcp', 'udp', 'sctp'),
      zone: fc.constantFrom('0', '5'),
      status: fc.constantFrom('ASSURED', 'SEEN_REPLY', 'UNREPLIED', 'ASSURED,SEEN_REPLY'),
      state: fc.constantFrom('ESTABLISHED', 'TIME_WAIT', 'UNREPLIED'),
      src: fc.constantFrom('10.0.0.0/8', '10.0.0.1', '192.0.2.0/24'),
      dst: fc.constantFrom('198.51.100.7', '10.0.0.0/30'),
      replySrc: addr,
      replyDst: addr,
      sport: port.map(String),
      dport: port.map(String),
      replySport: port.map(String),
      replyDport: port.map(String),
      srcNat: fc.constantFrom<string | true>(true, '192.0.2.1', '192.0.2.1:61000'),
      dstNat: fc.constantFrom<string | true>(true, '10.9.9.9'),
      anyNat: fc.constantFrom<string | true>(true, '10.9.9.9', '192.0.2.1'),
    },
    { requiredKeys: [] },
  );

  test('a filter of several options selects exactly what every one-option filter selects (AND)', () => {
    fc.assert(
      fc.property(inputs, anyFlow, (input, f) => {
        let whole: FlowFilter;
        try {
          whole = parseFlowFilter(input as FilterInput);
        } catch (err) {
          // Only the cross-checks may refuse a combination (a state of another protocol).
          expect(err).toBeInstanceOf(FilterValueError);
          return;
        }
        const singles = Object.entries(input).map(([k, v]) => parseFlowFilter({ [k]: v } as FilterInput));
        expect(matchesFlow(whole, f)).toBe(singles.every((s) => matchesFlow(s, f)));
      }),
      { numRuns: 2000 },
    );
  });

  test('the empty filter selects everything', () => {
    fc.assert(fc.property(anyFlow, (f) => matchesFlow({}, f)));
  });
});
