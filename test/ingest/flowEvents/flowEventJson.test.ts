/** The JSON form: ctflow's own `events --json` objects, read back. */
import { join } from 'node:path';
import { parseFlowEventJson } from '../../../ingest/flowEvents/flowEventJson';
import { FlowEventFormatError } from '../../../ingest/flowEvents/common';
import { loadCapture, runCapture } from '../../../cli/runCapture';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import type { FlowEvent } from '../../../processors/flow';
import { STATUS } from '../../../processors/flow';
import { eventJson } from '../../../sinks/jsonRecords';

const base = {
  ts: 1700000000.25,
  type: 'UPDATE',
  id: 77,
  zone: 0,
  l3: 'ipv4',
  proto: 'tcp',
  protonum: 6,
  state: 'ESTABLISHED',
  timeout: 432000,
  orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, packets: 3, bytes: 180 },
  reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000, packets: 2, bytes: 120 },
  status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
  start: 1700000000,
  last: 1700000000.25,
};
const parse = (o: unknown): ReturnType<typeof parseFlowEventJson> => parseFlowEventJson(JSON.stringify(o));

describe('parseFlowEventJson', () => {
  test('reads every field of the eventJson shape', () => {
    const e = parse(base);
    expect(e).toEqual({
      type: 'UPDATE',
      tsUs: 1700000000250000,
      flow: {
        id: 77,
        zone: 0,
        family: 4,
        proto: 6,
        state: 'ESTABLISHED',
        timeout: 432000,
        orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 },
        reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000 },
        status: STATUS.SEEN_REPLY | STATUS.ASSURED | STATUS.CONFIRMED,
        counters: { orig: { packets: 3, bytes: 180 }, reply: { packets: 2, bytes: 120 } },
        startUs: 1700000000000000,
        lastUs: 1700000000250000,
      },
    });
  });

  test('state null means "not in this event"; no type means a listing line; host is kept', () => {
    const { type: _type, ts: _ts, ...listing } = base;
    const e = parse({ ...listing, state: null, host: 'db-7' });
    expect(e.flow.state).toBeUndefined();
    expect(e).toMatchObject({ type: 'UPDATE', listed: true, host: 'db-7' });
    expect(e.tsUs).toBeUndefined();
  });

  test('ICMP ids, and NAT read from the tuples even when status does not name it', () => {
    const e = parse({
      ...base,
      proto: 'icmp',
      protonum: 1,
      state: null,
      orig: { src: '10.0.0.1', dst: '10.0.0.2', icmp: { type: 8, code: 0, id: 5 } },
      reply: { src: '10.0.0.2', dst: '192.0.2.1', icmp: { type: 0, code: 0, id: 5 } },
    });
    expect(e.flow.orig.icmp).toEqual({ type: 8, code: 0, id: 5 });
    expect(e.flow.status & STATUS.SRC_NAT).toBeTruthy();
    expect(e.flow.status & STATUS.DST_NAT).toBe(0);
    expect(e.flow.counters).toBeUndefined();
  });

  test('a protocol conntrack does not name needs its number', () => {
    expect(parse({ ...base, proto: 'unknown', protonum: 253, state: null }).flow.proto).toBe(253);
    expect(() => parse({ ...base, proto: 'unknown', protonum: undefined })).toThrow(/proto: 'unknown' is not a protocol name conntrack prints; give protonum/);
    expect(() => parse({ ...base, proto: 'udp' })).toThrow(/proto 'udp' is number 17, not 6/);
  });

  test.each([
    ['not JSON at all', /^not JSON: /],
    ['[1,2]', /not a JSON object/],
    [JSON.stringify({ ...base, l3: 'ipx' }), /^l3: /],
    [JSON.stringify({ ...base, type: 'CREATE' }), /^type: /],
    [JSON.stringify({ ...base, status: ['SEEN_REPLY', 'UNREPLIED'] }), /^status\.1: /],
    [JSON.stringify({ ...base, orig: { ...base.orig, sport: 65536 } }), /^orig\.sport: /],
    [JSON.stringify({ ...base, orig: { ...base.orig, src: '10.0.0.300' } }), /orig src: '10.0.0.300' is not an IPv4 address/],
    [JSON.stringify({ ...base, reply: undefined }), /^reply: /],
  ])('refuses %s', (text, reason) => {
    expect(() => parseFlowEventJson(text)).toThrow(FlowEventFormatError);
    expect(() => parseFlowEventJson(text)).toThrow(reason);
  });
});

describe("ctflow's own events read back", () => {
  test('every event of a capture survives eventJson and the parser', () => {
    const events: FlowEvent[] = [];
    for (const name of ['tcp_full_session', 'icmp_echo', 'ipv6_tcp_icmpv6', 'sctp_association', 'tcp_refused']) {
      const capture = join(__dirname, '..', '..', 'fixtures', 'scenarios', name, 'packets.pcap');
      runCapture(loadCapture(capture), { sysctl: makeSysctl(['nf_conntrack_acct=1']), shards: 1, onEvent: (e) => events.push(e) });
    }
    expect(events.length).toBeGreaterThan(8);
    expect(events.some((e) => e.type === 'DESTROY' && e.flow.counters.orig.packets > 0)).toBe(true);
    for (const e of events) {
      const back = parseFlowEventJson(JSON.stringify(eventJson(e)));
      expect(back.type).toBe(e.type);
      expect(back.tsUs).toBe(e.tsUs);
      expect(back.flow.id).toBe(e.flow.id);
      expect(back.flow.orig).toEqual(e.flow.orig);
      expect(back.flow.reply).toEqual(e.flow.reply);
      expect(back.flow.counters).toEqual(e.flow.counters);
      expect(back.flow.state).toBe(e.protoinfo || e.type === 'DESTROY' ? e.flow.state : undefined);
      // Read-back status: the engine's bits, plus CONFIRMED and the NAT bits the tuples show.
      expect(back.flow.status & ~(STATUS.CONFIRMED | STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(e.flow.status & ~(STATUS.CONFIRMED | STATUS.SRC_NAT | STATUS.DST_NAT));
    }
  });
});
