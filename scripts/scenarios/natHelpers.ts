/**
 * `node -r ./scripts/tsRequireHook.js scripts/scenarios/natHelpers.ts OUTDIR`: writes the crafted
 * NAT-with-helpers scenarios (the kernel's nf_nat_ftp and nf_nat_tftp) in the layout the oracle's
 * run-scenarios.sh reads (NAME.pcap, NAME.args, NAME.ctflow-args). Then, as root,
 * `/work/shared/oracle/run-scenarios.sh OUTDIR RESULTS` and copy RESULTS/<name> into
 * test/fixtures/scenarios/.
 *
 * Packets are as the router receives them (before NAT): the inside client's with its own address,
 * the server's addressed to the NAT'd address. When the router's helper rewrites a command (PORT
 * 198,18,0,1 becomes 198,18,200,1: two bytes longer), the other side acknowledges the rewritten
 * stream, so its ACKs run `mangled` bytes ahead of what the sender sent: `Talk` keeps that
 * offset per direction, as real endpoints behind a NAT'ing router would see it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipv4Packet, tcpSegment, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import { IPPROTO, TCP_FLAG } from '../../processors/packet';

const LINKTYPE_RAW = 101;
const { SYN, ACK, PSH, FIN } = TCP_FLAG;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** One end as the router sees it: the address and port its packets carry, and those the other end's packets are sent to. */
interface End {
  addr: string;
  port: number;
  /** Where the other side addresses this end (its NAT'd address and port). */
  seenAs: { addr: string; port: number };
}

const end = (addr: string, port: number, seenAddr = addr, seenPort = port): End => ({ addr, port, seenAs: { addr: seenAddr, port: seenPort } });

/** A TCP conversation with sequence numbers kept, and per direction the bytes the router's helper added. */
class Talk {
  private seq: [number, number];
  /** Bytes the router added to each direction's stream (what the receiver acknowledges beyond the sender's numbers). */
  readonly grown: [number, number] = [0, 0];
  constructor(readonly c: End, readonly s: End, cseq = 1000, sseq = 5000, readonly acksUnmangled = false) {
    this.seq = [cseq, sseq];
  }

  seg(fromClient: boolean, flags: number, data = ''): Uint8Array {
    const d = fromClient ? 0 : 1;
    const payload = text(data);
    const seq = this.seq[d];
    const otherGrown = this.acksUnmangled ? 0 : this.grown[1 - d];
    const ack = flags & ACK ? (this.seq[1 - d] + otherGrown) >>> 0 : 0;
    const options = flags & SYN ? { mss: 1460, wscale: 7, sackPermitted: true } : {};
    const [from, to] = fromClient ? [this.c, this.s] : [this.s, this.c];
    const tcp = tcpSegment({ sport: from.port, dport: to.seenAs.port, seq, ack, flags, window: 64240, options, payload });
    this.seq[d] = (seq + payload.length + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0)) >>> 0;
    return ipv4Packet({ src: from.addr, dst: to.seenAs.addr, proto: IPPROTO.TCP, payload: tcp });
  }

  handshake(): Uint8Array[] {
    return [this.seg(true, SYN), this.seg(false, SYN | ACK), this.seg(true, ACK)];
  }

  /** Lines each acknowledged by the other side; `grows` is how much the router's rewrite lengthens that line. */
  lines(lines: Array<[fromClient: boolean, line: string, grows?: number]>): Uint8Array[] {
    return lines.flatMap(([fromClient, line, grows]) => {
      const sent = this.seg(fromClient, PSH | ACK, line);
      if (grows) this.grown[fromClient ? 0 : 1] += grows;
      return [sent, this.seg(!fromClient, ACK)];
    });
  }

  data(fromClient: boolean, n: number): Uint8Array {
    return this.seg(fromClient, PSH | ACK, 'x'.repeat(n));
  }

  close(): Uint8Array[] {
    return [this.seg(true, FIN | ACK), this.seg(false, FIN | ACK), this.seg(true, ACK)];
  }
}

const LOGIN: Array<[boolean, string]> = [[false, '220 ready\r\n'], [true, 'USER a\r\n'], [false, '331 pw\r\n'], [true, 'PASS b\r\n'], [false, '230 ok\r\n']];

const udp = (src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array =>
  ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport, dport, payload }) });

interface Scenario {
  name: string;
  oracle: string[];
  ctflow: string;
  packets: Uint8Array[];
}

const CLIENT = '198.18.0.1', SERVER = '198.18.9.9', SNAT_TO = '198.18.200.1';
const SNAT = { oracle: ['--nat', `snat:198.18.0.0/24->${SNAT_TO}`], ctflow: `--nat snat:198.18.0.0/24->${SNAT_TO}` };
const FTP = { oracle: ['--helper', 'ftp:tcp/21'], ctflow: '--helper ftp:tcp/21' };

/** Active FTP behind SNAT; `acksUnmangled`: the server acknowledges the client's own numbers (as a replayed capture taken inside would). */
function activeSnat(name: string, acksUnmangled: boolean): Scenario {
  // PORT names the client's inside address; the router rewrites it to the SNAT address (two
  // characters longer) and the server connects back to that address, which the router maps to
  // the client (nf_nat_follow_master).
  const t = new Talk(end(CLIENT, 43300, SNAT_TO), end(SERVER, 21), 1000, 5000, acksUnmangled);
  const d = new Talk(end(SERVER, 20), end(CLIENT, 50000, SNAT_TO), 60000, 70000);
  const packets = [
    ...t.handshake(),
    ...t.lines([...LOGIN, [true, 'PORT 198,18,0,1,195,80\r\n', 2], [false, '200 ok\r\n'], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
    ...d.handshake(),
    d.data(true, 300),
    ...d.close(),
    ...t.lines([[false, '226 done\r\n']]),
    ...t.close(),
  ];
  return { name, oracle: [...FTP.oracle, ...SNAT.oracle], ctflow: `${FTP.ctflow} ${SNAT.ctflow}`, packets };
}

const SCENARIOS: Array<() => Scenario> = [
  () => activeSnat('ftp_nat_active_snat', false),
  () => activeSnat('ftp_nat_active_snat_unmangled_acks', true),
  () => {
    // Passive FTP to a DNAT'd server: the client talks to 198.18.100.1, the server's 227 names its
    // own 198.18.0.2 and is rewritten to the public address (two characters longer); the client's
    // data connection to the public address goes to the server.
    const VIP = '198.18.100.1', REAL = '198.18.0.2', OUT = '198.18.50.5';
    const t = new Talk(end(OUT, 44000), end(REAL, 21, VIP, 21));
    const d = new Talk(end(OUT, 44001), end(REAL, 50010, VIP, 50010), 20000, 30000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,0,2,195,90).\r\n', 2], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
      ...d.handshake(),
      d.data(false, 200),
      ...d.close(),
      ...t.lines([[false, '226 done\r\n']]),
      ...t.close(),
    ];
    return {
      name: 'ftp_nat_passive_dnat',
      oracle: [...FTP.oracle, '--nat', `dnat:tcp/${VIP}:21->${REAL}:21`],
      ctflow: `${FTP.ctflow} --nat dnat:tcp/${VIP}:21->${REAL}:21`,
      packets,
    };
  },
  () => {
    // Passive FTP from behind SNAT (the everyday case): the server's 227 names its own address,
    // which the client reaches unchanged, so the rewrite keeps the text's length; the client's
    // data connection is SNAT'd like its master, and the server answers the SNAT address.
    const t = new Talk(end(CLIENT, 43800, SNAT_TO), end(SERVER, 21));
    const d = new Talk(end(CLIENT, 43801, SNAT_TO), end(SERVER, 50030), 20000, 30000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PASV\r\n'], [false, '227 Entering Passive Mode (198,18,9,9,195,110).\r\n'], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
      ...d.handshake(),
      d.data(false, 200),
      ...d.close(),
      ...t.lines([[false, '226 done\r\n']]),
      ...t.close(),
    ];
    return { name: 'ftp_nat_passive_snat', oracle: [...FTP.oracle, ...SNAT.oracle], ctflow: `${FTP.ctflow} ${SNAT.ctflow}`, packets };
  },
  () => {
    // Active FTP to a DNAT'd server: the outside client's PORT names its own address (kept as
    // it is); the real server's data connection back to it is mapped to come from the public
    // address the client talked to (nf_nat_follow_master's source manip), so the client answers that.
    const VIP = '198.18.100.1', REAL = '198.18.0.2', OUT = '198.18.50.5';
    const t = new Talk(end(OUT, 44100), end(REAL, 21, VIP, 21));
    const d = new Talk(end(REAL, 20, VIP, 20), end(OUT, 50040), 60000, 70000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PORT 198,18,50,5,195,120\r\n'], [false, '200 ok\r\n'], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
      ...d.handshake(),
      d.data(true, 300),
      ...d.close(),
      ...t.lines([[false, '226 done\r\n']]),
      ...t.close(),
    ];
    return {
      name: 'ftp_nat_active_dnat',
      oracle: [...FTP.oracle, '--nat', `dnat:tcp/${VIP}:21->${REAL}:21`],
      ctflow: `${FTP.ctflow} --nat dnat:tcp/${VIP}:21->${REAL}:21`,
      packets,
    };
  },
  () => {
    // EPRT and then EPSV behind SNAT: EPRT's address is rewritten (two characters longer); the
    // 229 reply names only a port, rewritten to the same text, and the client's data connection
    // to it is SNAT'd like its master (nf_nat_follow_master), so the server answers the SNAT address.
    const t = new Talk(end(CLIENT, 43400, SNAT_TO), end(SERVER, 21));
    const active = new Talk(end(SERVER, 20), end(CLIENT, 50003, SNAT_TO), 60000, 70000);
    const passive = new Talk(end(CLIENT, 43401, SNAT_TO), end(SERVER, 50020), 80000, 90000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'EPRT |1|198.18.0.1|50003|\r\n', 2], [false, '200 ok\r\n'], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
      ...active.handshake(),
      active.data(true, 300),
      ...active.close(),
      ...t.lines([[false, '226 done\r\n'], [true, 'EPSV\r\n'], [false, '229 Entering Extended Passive Mode (|||50020|)\r\n'], [true, 'LIST\r\n'], [false, '150 here\r\n']]),
      ...passive.handshake(),
      passive.data(false, 100),
      ...passive.close(),
      ...t.close(),
    ];
    return { name: 'ftp_nat_eprt_epsv_snat', oracle: [...FTP.oracle, ...SNAT.oracle], ctflow: `${FTP.ctflow} ${SNAT.ctflow}`, packets };
  },
  () => {
    // Two PORT commands behind SNAT, the first sent twice: each rewrite adds two bytes, so the
    // server's ACKs run 2 bytes ahead after the first and 4 after the second; a late ACK of only
    // the first reply (sent after the second PORT) must still be read with the first offset. The
    // retransmission re-reads the same command: the expectation is made again, the offsets stay.
    const t = new Talk(end(CLIENT, 43500, SNAT_TO), end(SERVER, 21));
    const d1 = new Talk(end(SERVER, 20), end(CLIENT, 50100, SNAT_TO), 60000, 70000);
    const d2 = new Talk(end(SERVER, 20), end(CLIENT, 50101, SNAT_TO), 61000, 71000);
    const login = [...t.handshake(), ...t.lines(LOGIN)];
    const port1 = t.seg(true, PSH | ACK, 'PORT 198,18,0,1,195,180\r\n');
    t.grown[0] += 2;
    const ack1 = t.seg(false, ACK);
    const afterFirst = [...t.lines([[false, '200 ok\r\n'], [true, 'RETR a\r\n'], [false, '150 here\r\n']])];
    const data1 = [...d1.handshake(), d1.data(true, 100), ...d1.close()];
    const done1 = t.lines([[false, '226 done\r\n']]);
    const port2 = t.seg(true, PSH | ACK, 'PORT 198,18,0,1,195,181\r\n');
    t.grown[0] += 2;
    const ack2 = t.seg(false, ACK);
    const rest = [...t.lines([[false, '200 ok\r\n'], [true, 'RETR b\r\n'], [false, '150 here\r\n']]), ...d2.handshake(), d2.data(true, 100), ...d2.close(), ...t.lines([[false, '226 done\r\n']]), ...t.close()];
    const packets = [...login, port1, port1, ack1, ...afterFirst, ...data1, ...done1, port2, ack1, ack2, ...rest];
    return { name: 'ftp_nat_port_twice_snat', oracle: [...FTP.oracle, ...SNAT.oracle], ctflow: `${FTP.ctflow} ${SNAT.ctflow}`, packets };
  },
  () => {
    // A rewrite that shrinks the command: 198,18,0,111 becomes 198,18,2,1 (two bytes shorter),
    // so the server acknowledges two bytes less than the client sent.
    const inside = '198.18.0.111', outside = '198.18.2.1';
    const t = new Talk(end(inside, 43600, outside), end(SERVER, 21));
    const d = new Talk(end(SERVER, 20), end(inside, 50200, outside), 60000, 70000);
    const packets = [
      ...t.handshake(),
      ...t.lines([...LOGIN, [true, 'PORT 198,18,0,111,196,24\r\n', -2], [false, '200 ok\r\n'], [true, 'RETR f\r\n'], [false, '150 here\r\n']]),
      ...d.handshake(),
      d.data(true, 100),
      ...d.close(),
      ...t.lines([[false, '226 done\r\n']]),
      ...t.close(),
    ];
    return { name: 'ftp_nat_port_shrinks', oracle: [...FTP.oracle, '--nat', `snat:198.18.0.0/24->${outside}`], ctflow: `${FTP.ctflow} --nat snat:198.18.0.0/24->${outside}`, packets };
  },
  () => {
    // Two inside clients behind one SNAT address announce the same port to the same server: after
    // NAT both expectations would be the server connecting to SNAT_TO:65534, so the kernel looks
    // for another port for the second (nf_nat_exp_find_port). It picks one at random in
    // [port, 65535) (a run with 50300 moved the second to 52797, which cannot be crafted), but
    // from 65534 there is none: it gives up and drops the second PORT unchanged ("all ports in
    // use"), so only the first client's data connection is expected.
    const a = new Talk(end(CLIENT, 43700, SNAT_TO), end(SERVER, 21));
    const b = new Talk(end('198.18.0.3', 43701, SNAT_TO), end(SERVER, 21), 3000, 8000);
    const da = new Talk(end(SERVER, 20), end(CLIENT, 65534, SNAT_TO), 60000, 70000);
    const packets = [
      ...a.handshake(),
      ...b.handshake(),
      ...a.lines([...LOGIN, [true, 'PORT 198,18,0,1,255,254\r\n', 2], [false, '200 ok\r\n']]),
      ...b.lines([...LOGIN, [true, 'PORT 198,18,0,3,255,254\r\n'], [false, '200 ok\r\n']]),
      ...da.handshake(),
      da.data(true, 100),
    ];
    return { name: 'ftp_nat_same_port_two_clients', oracle: [...FTP.oracle, ...SNAT.oracle], ctflow: `${FTP.ctflow} ${SNAT.ctflow}`, packets };
  },
  () => {
    // TFTP behind SNAT: the read request is SNAT'd; the server answers the SNAT address from a new
    // port, and that connection is mapped back to the client (nf_nat_tftp's follow-master).
    const rrq = Uint8Array.from([0, 1, ...text('boot.img'), 0, ...text('octet'), 0]);
    const block = (n: number, s: string): Uint8Array => Uint8Array.from([0, 3, 0, n, ...text(s)]);
    const ackOf = (n: number): Uint8Array => Uint8Array.from([0, 4, 0, n]);
    const packets = [
      udp(CLIENT, SERVER, 40100, 69, rrq),
      udp(SERVER, SNAT_TO, 50020, 40100, block(1, 'data block one')),
      udp(CLIENT, SERVER, 40100, 50020, ackOf(1)),
      udp(SERVER, SNAT_TO, 50020, 40100, block(2, 'end')),
      udp(CLIENT, SERVER, 40100, 50020, ackOf(2)),
    ];
    return { name: 'tftp_nat_snat', oracle: ['--helper', 'tftp:udp/69', ...SNAT.oracle], ctflow: `--helper tftp:udp/69 ${SNAT.ctflow}`, packets };
  },
];

function quote(word: string): string {
  return /^[\w@%+=:,./>-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const out = process.argv[2];
if (!out) {
  console.error('usage: node -r ./scripts/tsRequireHook.js scripts/scenarios/natHelpers.ts OUTDIR [NAME...]');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const only = process.argv.slice(3);
for (const make of SCENARIOS) {
  const s = make();
  if (only.length && !only.includes(s.name)) continue;
  const start = Date.UTC(2026, 10, 26, 6, 0, 0) * 1000;
  writeFileSync(join(out, `${s.name}.pcap`), writePcap(s.packets.map((data, i) => ({ tsUs: start + i * 1000, data })), LINKTYPE_RAW));
  writeFileSync(join(out, `${s.name}.args`), ['--keep-addresses', ...s.oracle].map(quote).join(' '));
  writeFileSync(join(out, `${s.name}.ctflow-args`), s.ctflow);
  console.log(`wrote ${s.name}: ${s.packets.length} packets`);
}
