/**
 * `node dist/scripts/scenarios/helpers.js OUTDIR`: writes the crafted helper scenarios (EPRT over
 * IPv4 and IPv6, TFTP, a second PASV replacing the first, an expectation that times out) as raw-IP
 * pcaps with their oracle arguments (`NAME.args`) and the matching ctflow arguments
 * (`NAME.ctflow-args`), in the layout the oracle's run-scenarios.sh reads. Addresses are already in
 * the oracle's pools (198.18.0.0/15, 2001:db8::/32), so it runs them with --keep-addresses.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipv4Packet, ipv6Packet, tcpSegment, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import type { PcapRecord } from '../../ingest/capture/pcapWriter';
import { IPPROTO, TCP_FLAG } from '../../processors/packet';

const LINKTYPE_RAW = 101;
const C = '198.18.0.1', S = '198.18.0.2';
const C6 = '2001:db8:1::1', S6 = '2001:db8:1::2';
const { SYN, ACK, PSH, FIN } = TCP_FLAG;

function ipPacket(src: string, dst: string, proto: number, payload: Uint8Array): Uint8Array {
  return src.includes(':') ? ipv6Packet({ src, dst, nextHeader: proto, payload }) : ipv4Packet({ src, dst, proto, payload });
}

/** One TCP conversation with its sequence numbers kept, like the oracle's own scenario builder. */
class TcpTalk {
  private cseq: number;
  private sseq: number;
  constructor(readonly c: string, readonly s: string, readonly cp: number, readonly sp: number, cseq = 1000, sseq = 5000) {
    this.cseq = cseq;
    this.sseq = sseq;
  }

  seg(fromClient: boolean, flags: number, data = ''): Uint8Array {
    const payload = new TextEncoder().encode(data);
    const seq = fromClient ? this.cseq : this.sseq;
    const ack = flags & ACK ? (fromClient ? this.sseq : this.cseq) : 0;
    const opts = flags & SYN ? { mss: 1460, wscale: 7, sackPermitted: true } : {};
    const tcp = tcpSegment({ sport: fromClient ? this.cp : this.sp, dport: fromClient ? this.sp : this.cp, seq, ack, flags, window: 64240, options: opts, payload });
    const used = payload.length + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    if (fromClient) this.cseq = (this.cseq + used) >>> 0;
    else this.sseq = (this.sseq + used) >>> 0;
    return fromClient ? ipPacket(this.c, this.s, IPPROTO.TCP, tcp) : ipPacket(this.s, this.c, IPPROTO.TCP, tcp);
  }

  handshake(): Uint8Array[] {
    return [this.seg(true, SYN), this.seg(false, SYN | ACK), this.seg(true, ACK)];
  }

  /** An FTP control dialogue: each line (client's or server's) and the other side's ACK. */
  lines(lines: Array<[fromClient: boolean, text: string]>): Uint8Array[] {
    return lines.flatMap(([fromClient, text]) => [this.seg(fromClient, PSH | ACK, text), this.seg(!fromClient, ACK)]);
  }

  data(fromClient: boolean, n: number): Uint8Array {
    return this.seg(fromClient, PSH | ACK, 'x'.repeat(n));
  }

  close(): Uint8Array[] {
    return [this.seg(true, FIN | ACK), this.seg(false, FIN | ACK), this.seg(true, ACK)];
  }
}

const LOGIN: Array<[boolean, string]> = [[false, '220 ready\r\n'], [true, 'USER a\r\n'], [false, '331 pw\r\n'], [true, 'PASS b\r\n'], [false, '230 ok\r\n']];

function udp(src: string, dst: string, sport: number, dport: number, payload: number[]): Uint8Array {
  return ipPacket(src, dst, IPPROTO.UDP, udpDatagram({ sport, dport, payload: Uint8Array.from(payload) }));
}

const text = (s: string): number[] => [...new TextEncoder().encode(s)];

interface Scenario {
  name: string;
  /** Oracle arguments (beyond --keep-addresses) and the matching ctflow ones. */
  args: string;
  ctflow: string;
  /** The packets and, for real-time cases, the gap in seconds before each (default 1 ms). */
  packets: Array<Uint8Array | { gapSec: number; packet: Uint8Array }>;
}

const FTP = { args: '--ftp-helper-port 21', ctflow: '--helper ftp:tcp/21' };

const SCENARIOS: Array<() => Scenario> = [
  () => {
    // EPRT with an IPv4 address: like PORT, the server opens the data connection to it.
    const t = new TcpTalk(C, S, 43300, 21);
    const d = new TcpTalk(S, C, 20, 50003, 60000, 70000);
    const packets = [...t.handshake(), ...t.lines([...LOGIN, [true, 'EPRT |1|198.18.0.1|50003|\r\n'], [false, '200 ok\r\n'], [true, 'RETR f\r\n']]), ...d.handshake(), d.data(true, 300), ...d.close()];
    return { name: 'ftp_eprt_ipv4', ...FTP, packets };
  },
  () => {
    const t = new TcpTalk(C6, S6, 43400, 21);
    const d = new TcpTalk(S6, C6, 20, 50004, 60000, 70000);
    const packets = [...t.handshake(), ...t.lines([...LOGIN, [true, 'EPRT |2|2001:db8:1::1|50004|\r\n'], [false, '200 ok\r\n'], [true, 'LIST\r\n']]), ...d.handshake(), d.data(true, 300), ...d.close()];
    return { name: 'ftp_eprt_ipv6', ...FTP, packets };
  },
  () => {
    // A second PASV replaces the first expectation (max_expected 1): the first port is then an
    // ordinary NEW connection, the second RELATED; a third PASV is left waiting (expect.txt).
    const t = new TcpTalk(C, S, 43500, 21);
    const first = new TcpTalk(C, S, 43501, 50010, 20000, 30000);
    const second = new TcpTalk(C, S, 43502, 50011, 21000, 31000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,90).\r\n'], [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,91).\r\n']]),
      ...first.handshake(),
      ...second.handshake(),
      second.data(false, 200),
      ...second.close(),
      ...t.lines([[true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,92).\r\n']]),
    ];
    return { name: 'ftp_pasv_replaced', ...FTP, packets };
  },
  () => {
    // PORT naming a third host: the kernel's helper trusts only the client's own address
    // (loose=0), so nothing is expected and the server's connection to that port is NEW.
    const t = new TcpTalk(C, S, 43700, 21);
    const d = new TcpTalk(S, C, 20, 50050, 60000, 70000);
    const packets = [...t.handshake(), ...t.lines([...LOGIN, [true, 'PORT 198,18,0,9,195,130\r\n'], [false, '200 ok\r\n']]), ...d.handshake(), d.data(true, 100)];
    return { name: 'ftp_port_other_address', ...FTP, packets };
  },
  () => {
    // A PORT command split over two segments: the first half is a partial match (the kernel's
    // helper drops it), the second half does not start a line, so nothing is expected.
    const t = new TcpTalk(C, S, 43800, 21);
    const d = new TcpTalk(S, C, 20, 50060, 60000, 70000);
    const packets = [
      ...t.handshake(),
      ...t.lines(LOGIN),
      t.seg(true, PSH | ACK, 'PORT 198,18,'),
      t.seg(true, PSH | ACK, '0,1,195,140\r\n'),
      t.seg(false, ACK),
      ...t.lines([[false, '200 ok\r\n']]),
      ...d.handshake(),
      d.data(true, 100),
    ];
    return { name: 'ftp_port_split', ...FTP, packets };
  },
  () => {
    // A retransmitted PORT (same sequence number, so it still starts a line): the same
    // expectation again replaces the first (DESTROY, then NEW with a fresh timer).
    const t = new TcpTalk(C, S, 44000, 21);
    const d = new TcpTalk(S, C, 20, 50090, 60000, 70000);
    const login = [...t.handshake(), ...t.lines(LOGIN)];
    const port = t.seg(true, PSH | ACK, 'PORT 198,18,0,1,195,170\r\n');
    const packets = [...login, port, port, t.seg(false, ACK), ...t.lines([[false, '200 ok\r\n']]), ...d.handshake(), d.data(true, 50)];
    return { name: 'ftp_port_retransmitted', ...FTP, packets };
  },
  () => {
    // PORT on an IPv6 control connection: its four numbers overwrite only the first 32 bits of
    // the client's address (nf_conntrack_ftp's cmd.u3.ip), so 32,1,13,184 (2001:0db8) leaves the
    // client's own address and is trusted; the server's connection back is RELATED.
    const t = new TcpTalk(C6, S6, 44100, 21);
    const d = new TcpTalk(S6, C6, 20, 50100, 60000, 70000);
    const packets = [...t.handshake(), ...t.lines([...LOGIN, [true, 'PORT 32,1,13,184,195,180\r\n'], [false, '200 ok\r\n']]), ...d.handshake(), d.data(true, 50)];
    return { name: 'ftp_port_on_ipv6', ...FTP, packets };
  },
  () => {
    // TFTP write request over IPv6: the server's answer from its own new port is RELATED.
    const wrq = [0, 2, ...text('upload.bin'), 0, ...text('octet'), 0];
    const packets = [
      udp(C6, S6, 40200, 69, wrq),
      udp(S6, C6, 50070, 40200, [0, 4, 0, 0]),
      udp(C6, S6, 40200, 50070, [0, 3, 0, 1, ...text('payload')]),
      udp(S6, C6, 50070, 40200, [0, 4, 0, 1]),
    ];
    return { name: 'tftp_wrq_ipv6', args: '--helper tftp:udp/69', ctflow: '--helper tftp:udp/69', packets };
  },
  () => {
    // TFTP: the read request goes to port 69, the server answers from a new port of its own.
    const rrq = [0, 1, ...text('boot.img'), 0, ...text('octet'), 0];
    const packets = [
      udp(C, S, 40100, 69, rrq),
      udp(S, C, 50020, 40100, [0, 3, 0, 1, ...text('data block one')]),
      udp(C, S, 40100, 50020, [0, 4, 0, 1]),
      udp(S, C, 50020, 40100, [0, 3, 0, 2, ...text('end')]),
      udp(C, S, 40100, 50020, [0, 4, 0, 2]),
    ];
    return { name: 'tftp_rrq', args: '--helper tftp:udp/69', ctflow: '--helper tftp:udp/69', packets };
  },
  () => {
    // The master goes first, at once: after the 227 the control connection closes (TIME_WAIT) and
    // the client opens it again from the same port, which destroys the old entry (a SYN in
    // TIME_WAIT); its expectation goes with it and the data connection is NEW. (Letting the
    // master time out instead is no test: the kernel reaps expired entries lazily, and a run
    // where the data connection came 5 s after the master's CLOSE timeout still found it RELATED.)
    const t = new TcpTalk(C, S, 43900, 21);
    const again = new TcpTalk(C, S, 43900, 21, 900000, 950000);
    const d = new TcpTalk(C, S, 43901, 50080, 20000, 30000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,160).\r\n']]),
      ...t.close(),
      ...again.handshake(),
      ...d.handshake(),
    ];
    return { name: 'ftp_master_reopened', ...FTP, packets };
  },
  () => {
    // The FTP expectation lives 300 s (ftp_exp_policy): a data connection 340 s after the 227
    // finds none and is NEW. Real time, so the kernel sees the gap. Not 302 s: the kernel's timer
    // wheel fires a 300 s timer late, by up to its level's granularity (32.8 s at HZ=1000), and a
    // run with a 302 s gap found the expectation still there (RELATED).
    const t = new TcpTalk(C, S, 43600, 21);
    const d = new TcpTalk(C, S, 43601, 50040, 20000, 30000);
    const control = [...t.handshake(), ...t.lines([...LOGIN, [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,120).\r\n']])];
    const late = d.handshake();
    return {
      name: 'ftp_expect_timeout',
      args: `${FTP.args} --realtime`,
      ctflow: FTP.ctflow,
      packets: [...control, { gapSec: 340, packet: late[0] }, ...late.slice(1), d.data(false, 50)],
    };
  },
];

function main(): void {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node dist/scripts/scenarios/helpers.js OUTDIR');
  mkdirSync(out, { recursive: true });
  const only = process.argv.slice(3);
  for (const make of SCENARIOS) {
    const sc = make();
    if (only.length && !only.includes(sc.name)) continue;
    let tsUs = 1_795_600_000_000_000;
    const records: PcapRecord[] = sc.packets.map((p) => {
      const { gapSec, packet } = p instanceof Uint8Array ? { gapSec: 0.001, packet: p } : p;
      tsUs += Math.round(gapSec * 1e6);
      return { tsUs, data: packet };
    });
    writeFileSync(join(out, `${sc.name}.pcap`), writePcap(records, LINKTYPE_RAW));
    writeFileSync(join(out, `${sc.name}.args`), `--keep-addresses ${sc.args}\n`);
    writeFileSync(join(out, `${sc.name}.ctflow-args`), `${sc.ctflow}\n`);
    console.log(`wrote ${sc.name} (${records.length} packets)`);
  }
}

main();
