import { existsSync, readFileSync } from 'fs';
import { IPPROTO } from '../../../../processors/packet';
import type { IpPacket, SctpChunk } from '../../../../processors/packet';
import { STATUS } from '../../../../processors/flow';
import { Conn } from '../../../../processors/conntrack/conn';
import { ConnStore, kindOf } from '../../../../processors/conntrack/store';
import { makeSysctl } from '../../../../processors/conntrack/sysctl';
import { DIR_ORIGINAL, DIR_REPLY, IPCT } from '../../../../processors/conntrack/proto/tracker';
import type { Dir, TrackerContext, TrackerResult } from '../../../../processors/conntrack/proto/tracker';
import { SctpTracker } from '../../../../processors/conntrack/proto/sctp';
import type { SctpState } from '../../../../processors/conntrack/proto/sctp';
import { CHUNK } from '../../../../processors/conntrack/proto/sctpStates';

const A = '198.18.0.1', B = '198.18.0.2';
const T_FLAG = 1;

function chunk(type: number, extra: Partial<SctpChunk> = {}): SctpChunk {
  return { type, flags: 0, length: type === CHUNK.INIT || type === CHUNK.INIT_ACK ? 20 : 16, ...extra };
}
const init = (tag: number) => chunk(CHUNK.INIT, { initTag: tag });
const initAck = (tag: number) => chunk(CHUNK.INIT_ACK, { initTag: tag });

function pkt(dir: Dir, vtag: number, ...chunks: SctpChunk[]): IpPacket {
  const [src, dst] = dir === DIR_ORIGINAL ? [A, B] : [B, A];
  return { family: 4, src, dst, proto: IPPROTO.SCTP, length: 64, ttl: 64, l4: { kind: 'sctp', sport: 3868, dport: 3868, vtag, chunks } };
}

/** One entry driven like the core would: the first packet creates it, an accepted one confirms it. */
function harness() {
  const store = new ConnStore();
  const slot = store.alloc();
  const ports = ((3868 << 16) | 3868) >>> 0;
  store.setKind(slot, kindOf(0, IPPROTO.SCTP, 4));
  store.setTuple(slot, 0, 4, A, B, ports);
  store.setTuple(slot, 1, 4, B, A, ports);
  store.setId(slot, 1);
  const conn = new Conn(store, slot);
  const refreshes: number[] = [];
  const events: number[] = [];
  const kills: string[] = [];
  const ctx: TrackerContext = {
    sysctl: makeSysctl(),
    nowUs: 0,
    refresh: (_c, _d, _ip, t) => void refreshes.push(t),
    kill: (_c, reason) => void kills.push(reason),
    event: (_c, bits) => void events.push(bits),
    seqOffset: () => 0,
  };
  const send = (dir: Dir, ip: IpPacket): TrackerResult => {
    const res = SctpTracker.packet(conn, dir, ip, ctx);
    if (res.verdict === 'accept') conn.markConfirmed();
    return res;
  };
  const state = () => SctpTracker.stateName!(conn);
  const tags = () => (conn.proto as SctpState).vtag;
  return { conn, send, state, tags, refreshes, events, kills };
}

/** INIT / INIT ACK / COOKIE ECHO / COOKIE ACK between A (tag 0x2222 to reach it) and B (0x1111). */
function established() {
  const h = harness();
  h.send(DIR_ORIGINAL, pkt(0, 0, init(0x1111)));
  h.send(DIR_REPLY, pkt(1, 0x1111, initAck(0x2222)));
  h.send(DIR_ORIGINAL, pkt(0, 0x2222, chunk(CHUNK.COOKIE_ECHO)));
  h.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.COOKIE_ACK)));
  h.refreshes.length = h.events.length = 0;
  return h;
}

describe('SctpTracker: a whole association', () => {
  test('handshake, data, shutdown: states, timeouts, events', () => {
    const h = harness();
    const steps: Array<[Dir, IpPacket, string, number]> = [
      [0, pkt(0, 0, init(0x1111)), 'CLOSED', 10],
      [1, pkt(1, 0x1111, initAck(0x2222)), 'COOKIE_WAIT', 3],
      [0, pkt(0, 0x2222, chunk(CHUNK.COOKIE_ECHO)), 'COOKIE_ECHOED', 3],
      [1, pkt(1, 0x1111, chunk(CHUNK.COOKIE_ACK)), 'ESTABLISHED', 210],
      [0, pkt(0, 0x2222, chunk(CHUNK.DATA)), 'ESTABLISHED', 210],
      [1, pkt(1, 0x1111, chunk(CHUNK.SACK)), 'ESTABLISHED', 210],
      [0, pkt(0, 0x2222, chunk(CHUNK.SHUTDOWN)), 'SHUTDOWN_SENT', 3],
      [1, pkt(1, 0x1111, chunk(CHUNK.SHUTDOWN_ACK)), 'SHUTDOWN_ACK_SENT', 3],
      [0, pkt(0, 0x2222, chunk(CHUNK.SHUTDOWN_COMPLETE)), 'CLOSED', 10],
    ];
    for (const [dir, ip, state, timeout] of steps) {
      expect(h.send(dir, ip)).toEqual({ verdict: 'accept' });
      expect(h.state()).toBe(state);
      expect(h.refreshes.pop()).toBe(timeout);
    }
    const P = IPCT.PROTOINFO;
    expect(h.events).toEqual([P, P, P, P, IPCT.ASSURED, P, P, P]);
    expect(h.conn.has(STATUS.ASSURED)).toBe(true);
    expect(h.tags()).toEqual([0x2222, 0x1111]);
    expect(h.kills).toEqual([]);
  });

  test('the kernel oracle capture (sctp_association) gives the oracle states and timeouts', () => {
    const file = '/work/shared/oracle/scenarios/sctp_association/packets.pcap';
    if (!existsSync(file)) return;
    const d = readFileSync(file);
    const h = harness();
    const seen: Array<[string, number]> = [];
    for (let o = 24; o + 16 <= d.length; ) {
      const len = d.readUInt32LE(o + 8);
      const ip = d.subarray(o + 16, o + 16 + len); // linktype 101: raw IPv4
      o += 16 + len;
      const s = ip.subarray((ip[0] & 15) * 4, ip.readUInt16BE(2));
      const chunks: SctpChunk[] = [];
      for (let c = 12; c + 4 <= s.length; c += (s.readUInt16BE(c + 2) + 3) & ~3) {
        const ch: SctpChunk = { type: s[c], flags: s[c + 1], length: s.readUInt16BE(c + 2) };
        if (ch.type <= CHUNK.INIT_ACK && ch.type > 0) ch.initTag = s.readUInt32BE(c + 4);
        chunks.push(ch);
      }
      const dir: Dir = ip.readUInt32BE(12) === 0xc6120001 ? 0 : 1;
      expect(h.send(dir, pkt(dir, s.readUInt32BE(4), ...chunks)).verdict).toBe('accept');
      seen.push([h.state(), h.refreshes.pop()!]);
    }
    expect(seen).toEqual([['CLOSED', 10], ['COOKIE_WAIT', 3], ['COOKIE_ECHOED', 3], ['ESTABLISHED', 210], ['ESTABLISHED', 210]]);
    expect(h.conn.assured).toBe(true);
  });
});

describe('SctpTracker: verification tags', () => {
  test('a DATA chunk with the wrong tag is invalid and changes nothing', () => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x1111, chunk(CHUNK.DATA)))).toMatchObject({ verdict: 'invalid', reason: 'sctp_vtag_mismatch' });
    expect(h.send(DIR_REPLY, pkt(1, 0xdead, chunk(CHUNK.SHUTDOWN)))).toMatchObject({ reason: 'sctp_vtag_mismatch' });
    expect(h.state()).toBe('ESTABLISHED');
    expect(h.refreshes).toEqual([]);
  });

  test('an INIT must carry tag 0, on a new entry and on an existing one', () => {
    const h = harness();
    expect(h.send(DIR_ORIGINAL, pkt(0, 5, init(0x1111)))).toMatchObject({ verdict: 'invalid', reason: 'sctp_init_nonzero_vtag' });
    const e = established();
    expect(e.send(DIR_ORIGINAL, pkt(0, 0x2222, init(0x3333)))).toMatchObject({ reason: 'sctp_init_nonzero_vtag' });
  });

  test('ABORT: own tag, or the peer tag with the T bit', () => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x1111, chunk(CHUNK.ABORT)))).toMatchObject({ reason: 'sctp_abort_vtag_mismatch' });
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x1111, chunk(CHUNK.ABORT, { flags: T_FLAG })))).toEqual({ verdict: 'accept' });
    expect([h.state(), h.refreshes.pop()]).toEqual(['CLOSED', 10]);
    const g = established();
    expect(g.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.ABORT))).verdict).toBe('accept');
  });

  test('COOKIE ECHO must carry the tag the INIT ACK announced', () => {
    const h = harness();
    h.send(DIR_ORIGINAL, pkt(0, 0, init(0x1111)));
    h.send(DIR_REPLY, pkt(1, 0x1111, initAck(0x2222)));
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x9999, chunk(CHUNK.COOKIE_ECHO)))).toMatchObject({ reason: 'sctp_cookie_echo_vtag_mismatch' });
    expect(h.state()).toBe('COOKIE_WAIT');
  });

  test('an INIT ACK announcing another tag once established is invalid; INIT collision is checked', () => {
    const h = established();
    expect(h.send(DIR_REPLY, pkt(1, 0x1111, initAck(0x7777)))).toMatchObject({ reason: 'sctp_init_ack_vtag_mismatch' });
    const c = harness();
    c.send(DIR_ORIGINAL, pkt(0, 0, init(0xaaaa)));
    expect(c.send(DIR_REPLY, pkt(1, 0, init(0xbbbb))).verdict).toBe('accept'); // both sides INIT
    expect(c.send(DIR_ORIGINAL, pkt(0, 0xbbbb, initAck(0x1234)))).toMatchObject({ reason: 'sctp_init_collision' });
    expect(c.send(DIR_ORIGINAL, pkt(0, 0xbbbb, initAck(0xaaaa))).verdict).toBe('accept');
  });
});

describe('SctpTracker: which first packet creates an entry', () => {
  test.each(['data', 'sack', 'abort', 'shutdown_complete', 'cookie_ack'])('%s cannot', (name) => {
    const type = CHUNK[name.toUpperCase() as keyof typeof CHUNK];
    const h = harness();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0, chunk(type)))).toMatchObject({ verdict: 'invalid', reason: `sctp_cannot_start_with_${name}` });
  });

  test.each([
    ['INIT ACK', 0, 'CLOSED', 10, initAck(9)],
    ['COOKIE ECHO', 0, 'CLOSED', 10, chunk(CHUNK.COOKIE_ECHO)],
    ['SHUTDOWN', 0, 'CLOSED', 10, chunk(CHUNK.SHUTDOWN)],
    ['ERROR', 0, 'CLOSED', 10, chunk(CHUNK.ERROR)],
    ['HEARTBEAT ACK', 0x1234, 'CLOSED', 10, chunk(CHUNK.HEARTBEAT_ACK)],
    ['SHUTDOWN ACK', 0x1234, 'SHUTDOWN_ACK_SENT', 3, chunk(CHUNK.SHUTDOWN_ACK)],
    ['HEARTBEAT', 0x1234, 'HEARTBEAT_SENT', 30, chunk(CHUNK.HEARTBEAT)],
  ])('%s with tag %i opens %s (%i s)', (_name, vtag, state, timeout, c) => {
    const h = harness();
    expect(h.send(DIR_ORIGINAL, pkt(0, vtag, c))).toEqual({ verdict: 'accept' });
    expect([h.state(), h.refreshes.pop()]).toEqual([state, timeout]);
  });

  test('chunks without their own tag rule must carry tag 0 on a new entry (no tag known yet)', () => {
    const h = harness();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x1234, chunk(CHUNK.SHUTDOWN)))).toMatchObject({ reason: 'sctp_vtag_mismatch' });
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x1234, chunk(CHUNK.COOKIE_ECHO)))).toMatchObject({ reason: 'sctp_cookie_echo_vtag_mismatch' });
  });

  test('an OOTB SHUTDOWN ACK expects its SHUTDOWN COMPLETE with the same tag', () => {
    const h = harness();
    h.send(DIR_ORIGINAL, pkt(0, 0x4444, chunk(CHUNK.SHUTDOWN_ACK)));
    expect(h.tags()).toEqual([0, 0x4444]);
    expect(h.send(DIR_REPLY, pkt(1, 0x4444, chunk(CHUNK.SHUTDOWN_COMPLETE, { flags: T_FLAG }))).verdict).toBe('invalid');
    expect(h.send(DIR_REPLY, pkt(1, 0x4444, chunk(CHUNK.SHUTDOWN_COMPLETE))).verdict).toBe('accept');
    expect(h.state()).toBe('CLOSED');
  });
});

describe('SctpTracker: chunk sanity (do_basic_checks)', () => {
  test.each([
    ['no chunk', [], 'sctp_no_chunks'],
    ['a zero-length chunk', [chunk(CHUNK.DATA, { length: 0 })], 'sctp_zero_length_chunk'],
    ['INIT + DATA', [init(1), chunk(CHUNK.DATA)], 'sctp_chunk_must_be_alone'],
    ['DATA + SHUTDOWN COMPLETE', [chunk(CHUNK.DATA), chunk(CHUNK.SHUTDOWN_COMPLETE)], 'sctp_chunk_must_be_alone'],
    ['DATA + COOKIE ECHO', [chunk(CHUNK.DATA), chunk(CHUNK.COOKIE_ECHO)], 'sctp_cookie_chunk_not_first'],
  ])('%s is invalid', (_name, chunks, reason) => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x2222, ...(chunks as SctpChunk[])))).toMatchObject({ verdict: 'invalid', reason });
  });

  test('COOKIE ECHO may carry DATA after it', () => {
    const h = harness();
    h.send(DIR_ORIGINAL, pkt(0, 0, init(0x1111)));
    h.send(DIR_REPLY, pkt(1, 0x1111, initAck(0x2222)));
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x2222, chunk(CHUNK.COOKIE_ECHO), chunk(CHUNK.DATA))).verdict).toBe('accept');
    expect(h.state()).toBe('COOKIE_ECHOED');
  });
});

describe('SctpTracker: heartbeats and retransmissions', () => {
  test('heartbeats keep an association established and renew its timeout', () => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x2222, chunk(CHUNK.HEARTBEAT))).verdict).toBe('accept');
    expect(h.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.HEARTBEAT_ACK))).verdict).toBe('accept');
    expect([h.state(), h.refreshes, h.events]).toEqual(['ESTABLISHED', [210, 210], []]);
  });

  test('a secondary path seen from its first HEARTBEAT becomes established and assured', () => {
    const h = harness();
    h.send(DIR_ORIGINAL, pkt(0, 0x2222, chunk(CHUNK.HEARTBEAT)));
    expect(h.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.HEARTBEAT_ACK))).verdict).toBe('accept');
    expect([h.state(), h.refreshes, h.tags()]).toEqual(['ESTABLISHED', [30, 210], [0x2222, 0x1111]]);
    expect(h.events).toEqual([IPCT.PROTOINFO, IPCT.PROTOINFO, IPCT.ASSURED]);
    expect(h.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.DATA))).verdict).toBe('accept');
  });

  test('a HEARTBEAT with an unknown tag passes unrefreshed; the answer from the other side adopts it', () => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x5555, chunk(CHUNK.HEARTBEAT)))).toEqual({ verdict: 'accept', note: 'sctp_heartbeat_vtag_unknown' });
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x6666, chunk(CHUNK.HEARTBEAT_ACK)))).toMatchObject({ reason: 'sctp_heartbeat_ack_vtag_mismatch' });
    expect(h.send(DIR_REPLY, pkt(1, 0x6666, chunk(CHUNK.HEARTBEAT_ACK))).verdict).toBe('accept');
    expect([h.tags(), h.refreshes]).toEqual([[0, 0x6666], [210]]);
    // The side whose tag was forgotten learns it again from its next HEARTBEAT.
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x7777, chunk(CHUNK.HEARTBEAT), chunk(CHUNK.DATA))).verdict).toBe('accept');
    expect(h.tags()).toEqual([0x7777, 0x6666]);
  });

  test('a HEARTBEAT with the wrong tag bundled with DATA is invalid', () => {
    const h = established();
    expect(h.send(DIR_ORIGINAL, pkt(0, 0x5555, chunk(CHUNK.DATA), chunk(CHUNK.HEARTBEAT)))).toMatchObject({ reason: 'sctp_heartbeat_vtag_mismatch' });
  });

  test('a retransmitted INIT does not renew the timeout', () => {
    const h = harness();
    h.send(DIR_ORIGINAL, pkt(0, 0, init(0x1111)));
    expect(h.send(DIR_ORIGINAL, pkt(0, 0, init(0x1111)))).toEqual({ verdict: 'accept', note: 'sctp_init_retransmit' });
    expect([h.state(), h.refreshes]).toEqual(['CLOSED', [10]]);
  });

  test('shutting-down states may be early-dropped', () => {
    const h = established();
    expect(SctpTracker.canEarlyDrop!(h.conn)).toBe(false);
    h.send(DIR_REPLY, pkt(1, 0x1111, chunk(CHUNK.SHUTDOWN)));
    expect([h.state(), SctpTracker.canEarlyDrop!(h.conn)]).toEqual(['SHUTDOWN_RECD', true]);
  });
});
