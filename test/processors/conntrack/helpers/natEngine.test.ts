/**
 * NAT with helpers in the engine (nf_nat_ftp, nf_nat_tftp, nf_nat_follow_master, seqadj): the
 * packets are as a NAT router receives them, the inside client's with its own address and the
 * server's sent to the SNAT address.
 */
import type { IpPacket, TcpHeader } from '../../../../processors/packet';
import type { FlowEvent, FlowRecord, Verdict } from '../../../../processors/flow';
import { STATUS, copyVerdict } from '../../../../processors/flow';
import { ConntrackEngine } from '../../../../processors/conntrack/engine';
import type { ExpectEvent } from '../../../../processors/conntrack/helpers/expectations';
import type { HelperRule } from '../../../../processors/conntrack/helpers';
import type { NatRule } from '../../../../processors/conntrack/rules/nat';
import { parsePrefix } from '../../../../processors/conntrack/rules/match';
import { makeSysctl } from '../../../../processors/conntrack/sysctl';

const SYN = 0x02, ACK = 0x10, PSH = 0x08;
const FTP: HelperRule = { helper: 'ftp', match: { proto: 6, dport: 21 }, name: '--helper ftp:tcp/21' };
const TFTP: HelperRule = { helper: 'tftp', match: { proto: 17, dport: 69 }, name: '--helper tftp:udp/69' };
const INSIDE = '10.0.0.1', SERVER = '192.0.2.9', PUBLIC = '203.0.113.1';
const SNAT: NatRule = { kind: 'snat', match: { src: parsePrefix('10.0.0.0/24') }, family: 4, toAddr: PUBLIC };

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack: number, text = ''): IpPacket {
  const payload = new TextEncoder().encode(text);
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq, ack, flags, window: 65535, headerLength: 20, dataLength: payload.length, options: {}, payload };
  return { family: 4, src, dst, proto: 6, length: 40 + payload.length, ttl: 64, l4 };
}

function udp(src: string, dst: string, sport: number, dport: number, payload: number[]): IpPacket {
  return { family: 4, src, dst, proto: 17, length: 28 + payload.length, ttl: 64, l4: { kind: 'udp', sport, dport, length: 8 + payload.length, payload: Uint8Array.from(payload) } };
}

function engineRun(helpers: HelperRule[], nat: NatRule[]) {
  const expects: ExpectEvent[] = [];
  const events: FlowEvent[] = [];
  const engine = new ConntrackEngine({ shards: 1, rules: { helpers, nat }, sysctl: makeSysctl({}), onExpectEvent: (e) => expects.push(e) });
  let t = 1_700_000_000_000_000, i = 0;
  const push = (ip: IpPacket): Verdict => copyVerdict(engine.process(ip, (t += 1000), i++, events));
  return { engine, expects, push };
}

/**
 * An active FTP session from INSIDE:40000 to SERVER:21 up to the PORT command and the server's
 * ACK of it, which acknowledges `serverSees` more bytes than the client sent (2 when the router
 * rewrote 10,0,0,1 to 203,0,113,1).
 */
function activeSession(serverSees: number, replyTo: string): { packets: IpPacket[]; serverAck: IpPacket; serverNext: IpPacket } {
  let c = 1000, s = 5000;
  const out = (flags: number, text = ''): IpPacket => {
    const p = tcp(INSIDE, SERVER, 40000, 21, flags, c, s, text);
    c += text.length + (flags & SYN ? 1 : 0);
    return p;
  };
  const back = (flags: number, text = '', extra = 0): IpPacket => {
    const p = tcp(SERVER, replyTo, 21, 40000, flags, s, c + extra, text);
    s += text.length + (flags & SYN ? 1 : 0);
    return p;
  };
  const packets = [out(SYN), back(SYN | ACK), out(ACK), back(PSH | ACK, '220 ready\r\n'), out(PSH | ACK, 'USER a\r\n'), back(PSH | ACK, '331 pw\r\n'), out(PSH | ACK, 'PORT 10,0,0,1,195,80\r\n')];
  return { packets, serverAck: back(ACK, '', serverSees), serverNext: back(PSH | ACK, '200 ok\r\n', serverSees) };
}

describe('NAT with helpers in the engine', () => {
  test('active FTP behind SNAT: the expectation is for the SNAT address and the ACKs of the rewritten PORT are in the window', () => {
    const r = engineRun([FTP], [SNAT]);
    const { packets, serverAck, serverNext } = activeSession(2, PUBLIC);
    packets.forEach((p) => expect(r.push(p).ctstate).not.toBe('INVALID'));
    expect(r.expects.map((e) => [e.type, e.expectation.src, e.expectation.dst, e.expectation.dport])).toEqual([['NEW', SERVER, PUBLIC, 50000]]);
    expect(r.push(serverAck)).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply' });
    expect(r.push(serverNext)).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply' });
    const master = r.engine.list()[0] as FlowRecord;
    expect(master.status & STATUS.SEQ_ADJUST).toBeTruthy();
    // The server's data connection to the SNAT address is mapped back to the client (nf_nat_follow_master).
    expect(r.push(tcp(SERVER, PUBLIC, 20, 50000, SYN, 9000, 0))).toMatchObject({ ctstate: 'RELATED', dir: 'original' });
    expect(r.push(tcp(INSIDE, SERVER, 50000, 20, SYN | ACK, 7000, 9001))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply' });
    const data = r.engine.list().find((f) => f.orig.sport === 20) as FlowRecord;
    expect(data.reply).toMatchObject({ src: INSIDE, dst: SERVER, sport: 50000, dport: 20 });
    expect(data.status & STATUS.DST_NAT).toBeTruthy();
    expect(data.masterId).toBe(master.id);
  });

  test('the same ACK two bytes beyond what the client sent is INVALID when nothing was rewritten', () => {
    const r = engineRun([FTP], []);
    const { packets, serverAck } = activeSession(2, INSIDE);
    packets.forEach((p) => r.push(p));
    expect(r.push(serverAck)).toMatchObject({ ctstate: 'INVALID', reason: 'tcp_ack_over_upper_bound' });
    expect((r.engine.list()[0] as FlowRecord).status & STATUS.SEQ_ADJUST).toBeFalsy();
  });

  test.each([
    [50300, [50300, 50301], undefined],
    [65534, [65534], 'ftp_nat_all_ports_in_use'],
  ])('two clients behind one SNAT address announce port %i: the second gets the next port up, or none at the top', (announced, expected, reason) => {
    const r = engineRun([FTP], [SNAT]);
    const verdicts = ['10.0.0.1', '10.0.0.3'].map((client, k) => {
      const sport = 40000 + k;
      const p = (flags: number, seq: number, ack: number, text = ''): IpPacket => tcp(client, SERVER, sport, 21, flags, seq, ack, text);
      const q = (flags: number, seq: number, ack: number, text = ''): IpPacket => tcp(SERVER, PUBLIC, 21, sport, flags, seq, ack, text);
      // (the helper reads only a segment that follows a line of the same side: USER first)
      [p(SYN, 1000, 0), q(SYN | ACK, 5000, 1001), p(ACK, 1001, 5001), q(PSH | ACK, 5001, 1001, '220 x\r\n'), p(PSH | ACK, 1001, 5008, 'USER a\r\n'), q(ACK, 5008, 1009)].forEach((x) => r.push(x));
      const [a, b, c, d] = client.split('.');
      return r.push(p(PSH | ACK, 1009, 5008, `PORT ${a},${b},${c},${d},${announced >> 8},${announced & 255}\r\n`));
    });
    expect(r.expects.filter((e) => e.type === 'NEW').map((e) => e.expectation.dport)).toEqual(expected);
    expect(verdicts.map((v) => v.ctstate)).toEqual(['ESTABLISHED', 'ESTABLISHED']);
    expect(verdicts[1].reason).toBe(reason);
  });

  test('TFTP behind SNAT: the server answers the SNAT address, and that connection is bound back to the client', () => {
    const r = engineRun([TFTP], [SNAT]);
    expect(r.push(udp(INSIDE, SERVER, 40100, 69, [0, 1, 0x66, 0, 0x6f, 0])).ctstate).toBe('NEW');
    expect(r.expects[0].expectation).toMatchObject({ src: SERVER, dst: PUBLIC, dport: 40100 });
    expect(r.push(udp(SERVER, PUBLIC, 50020, 40100, [0, 3, 0, 1]))).toMatchObject({ ctstate: 'RELATED', dir: 'original' });
    expect(r.push(udp(INSIDE, SERVER, 40100, 50020, [0, 4, 0, 1]))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'reply' });
    const data = r.engine.list().find((f) => f.orig.sport === 50020) as FlowRecord;
    expect(data.reply).toMatchObject({ src: INSIDE, dst: SERVER, sport: 40100, dport: 50020 });
  });

  test('a helper without NAT leaves its connections unadjusted and its data connections unbound', () => {
    const r = engineRun([TFTP], []);
    r.push(udp(INSIDE, SERVER, 40100, 69, [0, 1, 0x66, 0, 0x6f, 0]));
    expect(r.expects[0].expectation).toMatchObject({ src: SERVER, dst: INSIDE, dport: 40100 });
    expect(r.push(udp(SERVER, INSIDE, 50020, 40100, [0, 3, 0, 1])).ctstate).toBe('RELATED');
    const data = r.engine.list().find((f) => f.orig.sport === 50020) as FlowRecord;
    expect(data.status & (STATUS.SRC_NAT | STATUS.DST_NAT)).toBe(0);
    expect(data.reply).toMatchObject({ src: INSIDE, dst: SERVER });
  });
});
