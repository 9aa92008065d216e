/** Helpers inside the engine: assignment by rule, RELATED data connections, timers, masters, shards. */
import type { IpPacket, TcpHeader } from '../../../../processors/packet';
import type { FlowEvent, FlowRecord, Verdict } from '../../../../processors/flow';
import { STATUS, copyVerdict } from '../../../../processors/flow';
import { ConntrackEngine } from '../../../../processors/conntrack/engine';
import type { ExpectEvent } from '../../../../processors/conntrack/helpers/expectations';
import type { HelperRule } from '../../../../processors/conntrack/helpers';
import { parsePrefix } from '../../../../processors/conntrack/rules/match';
import { makeSysctl } from '../../../../processors/conntrack/sysctl';

const SYN = 0x02, ACK = 0x10, PSH = 0x08, RST = 0x04;
const FTP: HelperRule = { helper: 'ftp', match: { proto: 6, dport: 21 }, name: '--helper ftp:tcp/21' };
const TFTP: HelperRule = { helper: 'tftp', match: { proto: 17, dport: 69 }, name: '--helper tftp:udp/69' };

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack: number, text = ''): IpPacket {
  const payload = new TextEncoder().encode(text);
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq, ack, flags, window: 65535, headerLength: 20, dataLength: payload.length, options: {}, payload };
  return { family: src.includes(':') ? 6 : 4, src, dst, proto: 6, length: 40 + payload.length, ttl: 64, l4 };
}

function udp(src: string, dst: string, sport: number, dport: number, payload: number[]): IpPacket {
  return { family: 4, src, dst, proto: 17, length: 28 + payload.length, ttl: 64, l4: { kind: 'udp', sport, dport, length: 8 + payload.length, payload: Uint8Array.from(payload) } };
}

/** A TCP conversation keeping its sequence numbers. */
class Talk {
  private c = 1000;
  private s = 5000;
  constructor(readonly client: string, readonly server: string, readonly cp: number, readonly sp: number) {}
  seg(fromClient: boolean, flags: number, text = ''): IpPacket {
    const seq = fromClient ? this.c : this.s;
    const ack = fromClient ? this.s : this.c;
    const used = text.length + (flags & SYN ? 1 : 0);
    if (fromClient) this.c += used;
    else this.s += used;
    return fromClient ? tcp(this.client, this.server, this.cp, this.sp, flags, seq, flags & ACK ? ack : 0, text) : tcp(this.server, this.client, this.sp, this.cp, flags, seq, ack, text);
  }
  handshake(): IpPacket[] {
    return [this.seg(true, SYN), this.seg(false, SYN | ACK), this.seg(true, ACK)];
  }
  lines(lines: Array<[boolean, string]>): IpPacket[] {
    return lines.flatMap(([fromClient, text]) => [this.seg(fromClient, PSH | ACK, text), this.seg(!fromClient, ACK)]);
  }
}

/** A passive FTP session between client and server announcing `port`; the data connection is separate. */
function passiveControl(client: string, server: string, cport: number, port: number): IpPacket[] {
  const t = new Talk(client, server, cport, 21);
  const [a, b, c, d] = server.split('.');
  const pasv = `227 Entering Passive Mode (${a},${b},${c},${d},${port >> 8},${port & 255}).\r\n`;
  return [...t.handshake(), ...t.lines([[false, '220 ready\r\n'], [true, 'USER a\r\n'], [false, '331 pw\r\n'], [true, 'PASV\r\n'], [false, pasv]])];
}

interface Run {
  engine: ConntrackEngine;
  verdicts: Verdict[];
  events: FlowEvent[];
  expects: ExpectEvent[];
  t: number;
  push(ip: IpPacket, gapUs?: number): Verdict;
}

function engineRun(rules: HelperRule[], shards = 1, sysctl: Record<string, number> = {}): Run {
  const expects: ExpectEvent[] = [];
  const engine = new ConntrackEngine({ shards, rules: { helpers: rules }, sysctl: makeSysctl(sysctl), onExpectEvent: (e) => expects.push(e) });
  const run: Run = {
    engine,
    verdicts: [],
    events: [],
    expects,
    t: 1_700_000_000_000_000,
    push(ip, gapUs = 1000) {
      run.t += gapUs;
      const v = copyVerdict(engine.process(ip, run.t, run.verdicts.length, run.events));
      run.verdicts.push(v);
      return v;
    },
  };
  return run;
}

const C = '10.0.0.1', S = '10.0.0.2';

describe('the FTP helper in the engine', () => {
  test('a passive data connection is RELATED, EXPECTED and names its master; the master shows helper=ftp and use=2', () => {
    const r = engineRun([FTP]);
    passiveControl(C, S, 40000, 50000).forEach((p) => r.push(p));
    expect(r.engine.expectations()).toHaveLength(1);
    const d = new Talk(C, S, 40001, 50000);
    const [syn, synack, ack] = d.handshake();
    expect(r.push(syn).ctstate).toBe('RELATED');
    expect(r.push(synack).ctstate).toBe('ESTABLISHED');
    expect(r.push(ack).ctstate).toBe('ESTABLISHED');
    expect(r.engine.expectations()).toHaveLength(0);
    const [master, data] = r.engine.list() as [FlowRecord, FlowRecord];
    expect(master).toMatchObject({ helper: 'ftp', use: 2 });
    expect(master.status & STATUS.HELPER).toBeTruthy();
    expect(data.masterId).toBe(master.id);
    expect(data.status & STATUS.EXPECTED).toBeTruthy();
    expect(data.helper).toBeUndefined();
    expect(r.events.filter((e) => e.type === 'NEW').map((e) => e.flow.masterId)).toEqual([undefined, master.id]);
    expect(r.expects.map((e) => [e.type, e.reason])).toEqual([['NEW', undefined], ['DESTROY', 'matched']]);
  });

  test('without a helper rule nothing is expected and nothing is marked', () => {
    const r = engineRun([]);
    passiveControl(C, S, 40000, 50000).forEach((p) => r.push(p));
    expect(r.push(new Talk(C, S, 40001, 50000).seg(true, SYN)).ctstate).toBe('NEW');
    expect(r.engine.list().every((f) => !(f.status & (STATUS.HELPER | STATUS.EXPECTED)) && f.helper === undefined)).toBe(true);
    expect(r.expects).toEqual([]);
  });

  test('a rule applies only to the connections it matches (here: another server)', () => {
    const r = engineRun([{ helper: 'ftp', match: { proto: 6, dport: 21, dst: parsePrefix('10.9.0.0/16') }, name: 'engine.rules.helpers[0]' }]);
    passiveControl(C, S, 40000, 50000).forEach((p) => r.push(p));
    expect(r.engine.expectations()).toEqual([]);
    expect(r.push(new Talk(C, S, 40001, 50000).seg(true, SYN)).ctstate).toBe('NEW');
  });

  test('the expectation lives 300 s (ftp_exp_policy): RELATED at 299 s, NEW at 301 s with a DESTROY at 300 s', () => {
    for (const [gapSec, ctstate] of [[299, 'RELATED'], [301, 'NEW']] as const) {
      const r = engineRun([FTP]);
      passiveControl(C, S, 40000, 50000).forEach((p) => r.push(p));
      const announced = r.expects[0].tsUs; // the 227's time
      expect(r.t - announced).toBe(1000); // (the client's ACK came 1 ms later)
      expect(r.push(new Talk(C, S, 40001, 50000).seg(true, SYN), gapSec * 1e6 - 1000).ctstate).toBe(ctstate);
      const destroy = r.expects.find((e) => e.type === 'DESTROY')!;
      if (ctstate === 'NEW') expect([destroy.reason, destroy.tsUs - announced, destroy.expectation.timeout]).toEqual(['timeout', 300e6, 0]);
      else expect(destroy.reason).toBe('matched');
    }
  });

  test("the master's destruction takes its expectation with it", () => {
    const r = engineRun([FTP]);
    const control = passiveControl(C, S, 40000, 50000);
    control.forEach((p) => r.push(p));
    const last = control[control.length - 1].l4 as TcpHeader;
    r.push(tcp(C, S, 40000, 21, RST | ACK, last.ack, last.seq + last.dataLength)); // the client resets the control connection: CLOSE, 10 s
    expect(r.engine.expectations()).toHaveLength(1);
    expect(r.push(new Talk(C, S, 40001, 50000).seg(true, SYN), 11e6).ctstate).toBe('NEW'); // the master expired first
    expect(r.expects.map((e) => [e.type, e.reason])).toEqual([['NEW', undefined], ['DESTROY', 'master_destroyed']]);
  });

  test('half a command: the packet keeps its verdict, with the reason the helper drops it', () => {
    const r = engineRun([FTP]);
    const t = new Talk(C, S, 40000, 21);
    [...t.handshake(), ...t.lines([[false, '220 ready\r\n'], [true, 'USER a\r\n']])].forEach((p) => r.push(p));
    expect(r.push(t.seg(true, PSH | ACK, 'PORT 10,0,'))).toMatchObject({ ctstate: 'ESTABLISHED', dir: 'original', reason: 'ftp_partial_command' });
    expect(r.push(t.seg(true, PSH | ACK, '0,1,195,80\r\n')).reason).toBeUndefined();
    expect(r.engine.expectations()).toEqual([]);
  });

  test('PORT naming another address than the client is not trusted (loose=0)', () => {
    const r = engineRun([FTP]);
    const t = new Talk(C, S, 40000, 21);
    [...t.handshake(), ...t.lines([[false, '220 ready\r\n'], [true, 'USER a\r\n'], [false, '331 pw\r\n'], [true, 'PORT 10,0,0,7,195,80\r\n']])].forEach((p) => r.push(p));
    expect(r.engine.expectations()).toEqual([]);
  });

  test('IPv6: EPSV expects the client at the server on the announced port', () => {
    const r = engineRun([FTP]);
    const t = new Talk('2001:db8::1', '2001:db8::2', 40000, 21);
    [...t.handshake(), ...t.lines([[false, '220 ready\r\n'], [true, 'EPSV\r\n'], [false, '229 Entering Extended Passive Mode (|||50002|)\r\n']])].forEach((p) => r.push(p));
    expect(r.engine.expectations()).toMatchObject([{ family: 6, src: '2001:db8::1', dst: '2001:db8::2', dport: 50002, sportExact: false }]);
  });

  test("IPv6: a PORT's four numbers only replace the address's first 32 bits (the kernel's cmd.u3.ip)", () => {
    for (const [octets, expected] of [['32,1,13,184', 1], ['10,0,0,1', 0]] as const) {
      const r = engineRun([FTP]);
      const t = new Talk('2001:db8::1', '2001:db8::2', 40000, 21);
      [...t.handshake(), ...t.lines([[false, '220 ready\r\n'], [true, 'USER a\r\n'], [false, '331 pw\r\n'], [true, `PORT ${octets},195,80\r\n`]])].forEach((p) => r.push(p));
      // 32.1.13.184 is 2001:0db8, the client's own first 32 bits: the same address, so trusted.
      expect(r.engine.expectations().map((x) => [x.src, x.dst, x.dport])).toEqual(expected ? [['2001:db8::2', '2001:db8::1', 50000]] : []);
    }
  });

  test('the same output for any number of shards, expectation events included', () => {
    const hosts = ['10.0.0.1', '10.0.0.2', '10.0.1.3', '10.0.2.4', '10.0.3.5', '10.0.4.6'];
    const script: IpPacket[] = [];
    for (let i = 0; i < 12; i++) {
      const client = hosts[i % hosts.length], server = hosts[(i * 5 + 1) % hosts.length];
      if (client === server) continue;
      script.push(...passiveControl(client, server, 40000 + i, 50000 + i));
      if (i % 3 !== 0) script.push(...new Talk(client, server, 41000 + i, 50000 + i).handshake());
    }
    const out = (shards: number) => {
      const r = engineRun([FTP], shards);
      script.forEach((p) => r.push(p));
      r.engine.advance(r.t + 400e6, r.events); // every expectation left times out
      return { verdicts: r.verdicts, events: r.events, expects: r.expects, list: r.engine.list() };
    };
    const one = out(1);
    expect(one.verdicts.filter((v) => v.ctstate === 'RELATED').length).toBeGreaterThan(0);
    expect(one.expects.some((e) => e.reason === 'timeout')).toBe(true);
    expect(out(4)).toEqual(one);
    expect(out(7)).toEqual(one);
  });
});

describe('the TFTP helper in the engine', () => {
  const rrq = [0, 1, ...new TextEncoder().encode('boot.img'), 0, ...new TextEncoder().encode('octet'), 0];

  test("a read request makes the server's answer from a new port RELATED", () => {
    const r = engineRun([TFTP]);
    expect(r.push(udp(C, S, 40100, 69, rrq)).ctstate).toBe('NEW');
    expect(r.engine.expectations()).toMatchObject([{ proto: 17, src: S, dst: C, dport: 40100, helper: 'tftp' }]);
    expect(r.push(udp(S, C, 50020, 40100, [0, 3, 0, 1, 65])).ctstate).toBe('RELATED');
    expect(r.push(udp(C, S, 40100, 50020, [0, 4, 0, 1])).ctstate).toBe('ESTABLISHED');
  });

  test('with nf_conntrack_expect_max=0 the request is dropped by the helper and its entry never confirmed', () => {
    const r = engineRun([TFTP], 1, { nf_conntrack_expect_max: 0 });
    // conntrack's verdict came before the helper; the reason says what the helper did.
    expect(r.push(udp(C, S, 40100, 69, rrq))).toMatchObject({ ctstate: 'NEW', reason: 'tftp_expectation_table_full' });
    expect(r.engine.count).toBe(0);
    expect(r.events).toEqual([]);
    // A packet that is no request is let through and confirmed as usual.
    r.push(udp(C, S, 40101, 69, [0, 5]));
    expect(r.engine.count).toBe(1);
  });
});
