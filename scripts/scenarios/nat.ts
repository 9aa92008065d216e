/**
 * `node dist/scripts/scenarios/nat.js OUTDIR`: writes the crafted NAT and NOTRACK scenarios that
 * the oracle's own set lacks (MASQUERADE, an SNAT source-port clash, NOTRACK by source address,
 * UDP DNAT with an ICMP error and a clashing direct flow), in the layout of the oracle's
 * make-scenarios: OUTDIR/<name>.pcap, <name>.args (the oracle's arguments, shell words) and
 * <name>.ctflow-args (the same rules as ctflow options). Then, as root:
 *
 *   /work/shared/oracle/run-scenarios.sh OUTDIR RESULTS    # one kernel run per case
 *
 * and copy RESULTS/<name> into test/fixtures/scenarios/. Every address is already in the
 * oracle's pools (198.18.0.0/15), so the cases run with --keep-addresses and the ctflow arguments
 * name the same addresses as the kernel's rules.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { icmpMessage, ipv4Packet, tcpSegment, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import { IPPROTO, TCP_FLAG as F } from '../../processors/packet';

const LINKTYPE_RAW = 101;
const SYN_OPTIONS = { mss: 1460, wscale: 7, sackPermitted: true };

const tcp = (src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack = 0, payload?: Uint8Array): Uint8Array =>
  ipv4Packet({ src, dst, proto: IPPROTO.TCP, payload: tcpSegment({ sport, dport, flags, seq, ack, window: 64240, payload, options: flags & F.SYN ? SYN_OPTIONS : undefined }) });
const udp = (src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array =>
  ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport, dport, payload }) });
const echo = (src: string, dst: string, type: 0 | 8, id: number, seq: number): Uint8Array =>
  ipv4Packet({ src, dst, proto: IPPROTO.ICMP, payload: icmpMessage({ type, id, seq, payload: new Uint8Array(32) }) });
/** An ICMP error from `src` to `dst` quoting `quoted` (its IP header and first 8 bytes, as routers do). */
const icmpError = (src: string, dst: string, type: number, code: number, quoted: Uint8Array): Uint8Array =>
  ipv4Packet({ src, dst, proto: IPPROTO.ICMP, payload: icmpMessage({ type, code, rest: 0, payload: quoted.subarray(0, 28) }) });
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A TCP conversation seen from the router: `client`/`sport` as the client sends, and the address
 * and port the server's packets are addressed to (the NAT'd ones when SNAT applies).
 */
function handshake(client: string, sport: number, server: string, dport: number, replyTo = client, replyPort = sport): Uint8Array[] {
  return [
    tcp(client, server, sport, dport, F.SYN, 1000),
    tcp(server, replyTo, dport, replyPort, F.SYN | F.ACK, 5000, 1001),
    tcp(client, server, sport, dport, F.ACK, 1001, 5001),
  ];
}

interface Scenario {
  name: string;
  /** The oracle's arguments after the capture and output folder. */
  oracle: string[];
  /** The same rules as ctflow options (shell words). */
  ctflow: string;
  packets: Uint8Array[];
}

const INSIDE_A = '198.18.0.1', INSIDE_B = '198.18.0.3', SERVER = '198.18.9.9', SERVER2 = '198.18.9.10';

const scenarios: Scenario[] = [
  {
    // MASQUERADE to 198.18.200.2: a TCP session, a DNS exchange and a ping, all answered to the
    // masquerading address; then a second host pings with the same ICMP id (the kernel must pick
    // another id for it: only the first ping's reply can be crafted).
    name: 'nat_masquerade',
    oracle: ['--nat', 'masquerade:198.18.0.0/24->198.18.200.2'],
    ctflow: '--nat masquerade:198.18.0.0/24->198.18.200.2',
    packets: [
      ...handshake(INSIDE_A, 40100, SERVER, 80, '198.18.200.2'),
      tcp(INSIDE_A, SERVER, 40100, 80, F.PSH | F.ACK, 1001, 5001, text('GET / HTTP/1.0\r\n\r\n')),
      tcp(SERVER, '198.18.200.2', 80, 40100, F.PSH | F.ACK, 5001, 1019, text('HTTP/1.0 200 OK\r\n\r\n')),
      udp(INSIDE_A, SERVER, 5300, 53, text('query')),
      udp(SERVER, '198.18.200.2', 53, 5300, text('answer')),
      echo(INSIDE_A, SERVER, 8, 77, 1),
      echo(SERVER, '198.18.200.2', 0, 77, 1),
      echo(INSIDE_B, SERVER, 8, 77, 1),
      tcp(INSIDE_A, SERVER, 40100, 80, F.FIN | F.ACK, 1019, 5020),
      tcp(SERVER, '198.18.200.2', 80, 40100, F.FIN | F.ACK, 5020, 1020),
      tcp(INSIDE_A, SERVER, 40100, 80, F.ACK, 1020, 5021),
    ],
  },
  {
    // SNAT of two inside hosts that use the same source ports towards the same server: the first
    // keeps its port, the second gets another one the kernel picks at random in the same class
    // (1024-65535, 600-1023, 1-511), so its replies cannot be crafted; a second connection of
    // the second host from the same port to another server reuses its first mapping
    // (find_appropriate_src).
    name: 'nat_snat_port_clash',
    oracle: ['--nat', 'snat:198.18.0.0/24->198.18.200.1'],
    ctflow: '--nat snat:198.18.0.0/24->198.18.200.1',
    packets: [
      ...handshake(INSIDE_A, 40000, SERVER, 443, '198.18.200.1'),
      tcp(INSIDE_B, SERVER, 40000, 443, F.SYN, 7000),
      tcp(INSIDE_B, SERVER2, 40000, 443, F.SYN, 9000),
      tcp(INSIDE_A, SERVER, 700, 22, F.SYN, 100),
      tcp(SERVER, '198.18.200.1', 22, 700, F.SYN | F.ACK, 300, 101),
      tcp(INSIDE_B, SERVER, 700, 22, F.SYN, 200),
      tcp(INSIDE_A, SERVER, 100, 514, F.SYN, 100),
      tcp(INSIDE_B, SERVER, 100, 514, F.SYN, 200),
      tcp(SERVER, '198.18.200.1', 443, 40000, F.PSH | F.ACK, 5001, 1001, text('hello')),
    ],
  },
  {
    // NOTRACK by source address (the raw table's `ip saddr 198.18.0.9 notrack`): only 198.18.0.9's
    // own packets are untracked, so the server's SYN/ACK back to it is INVALID and the server's
    // data starts an entry of its own in the reverse orientation (loose pickup). An ICMP error
    // from a router about 198.18.0.9's flow is judged by its own header: not untracked, and
    // RELATED to that reverse entry (the kernel said so); one sent by 198.18.0.9 is untracked,
    // and so is its ping, whose reply is then INVALID; other hosts are tracked as usual.
    name: 'notrack_saddr',
    oracle: ['--notrack', 'ip saddr 198.18.0.9'],
    ctflow: "--notrack 'ip saddr 198.18.0.9'",
    packets: [
      tcp('198.18.0.9', SERVER, 45000, 443, F.SYN, 1000),
      tcp(SERVER, '198.18.0.9', 443, 45000, F.SYN | F.ACK, 5000, 1001),
      tcp('198.18.0.9', SERVER, 45000, 443, F.ACK, 1001, 5001),
      tcp(SERVER, '198.18.0.9', 443, 45000, F.PSH | F.ACK, 5001, 1001, text('server data')),
      tcp('198.18.0.9', SERVER, 45000, 443, F.ACK, 1001, 5012),
      tcp(SERVER, '198.18.0.9', 443, 45000, F.PSH | F.ACK, 5012, 1001, text('more')),
      icmpError('198.18.0.5', '198.18.0.9', 3, 1, tcp('198.18.0.9', SERVER, 45000, 443, F.ACK, 1001, 5012)),
      icmpError('198.18.0.9', SERVER, 3, 3, udp(SERVER, '198.18.0.9', 53, 5353, text('x'))),
      echo('198.18.0.9', SERVER, 8, 5, 1),
      echo(SERVER, '198.18.0.9', 0, 5, 1),
      udp(INSIDE_A, SERVER, 5301, 53, text('query')),
      udp(SERVER, INSIDE_A, 53, 5301, text('answer')),
    ],
  },
  {
    // NOTRACK of TCP port 80 and the ICMP errors about those untracked connections: the raw rule
    // does not match them (they are ICMP), and conntrack finds no flow they quote (INVALID);
    // an error about a tracked flow next to them is RELATED as usual.
    name: 'notrack_port80_icmp_errors',
    oracle: ['--notrack', 'tcp/80'],
    ctflow: '--notrack tcp/80',
    packets: [
      tcp(INSIDE_A, SERVER, 44000, 80, F.SYN, 1000),
      icmpError(SERVER, INSIDE_A, 3, 3, tcp(INSIDE_A, SERVER, 44000, 80, F.SYN, 1000)),
      icmpError('198.18.50.1', SERVER, 11, 0, tcp(SERVER, INSIDE_A, 80, 44000, F.SYN | F.ACK, 5000, 1001)),
      tcp(INSIDE_A, SERVER, 44001, 443, F.SYN, 2000),
      icmpError(SERVER, INSIDE_A, 3, 3, tcp(INSIDE_A, SERVER, 44001, 443, F.SYN, 2000)),
    ],
  },
  {
    // UDP DNAT of 198.18.100.1:53 to 198.18.0.2:5353: a query and its answer from the real server;
    // a second client whose query meets a closed port, and the server's ICMP port unreachable
    // quoting the translated packet (RELATED, reply direction: it matches the reply tuple); then
    // the first client talks to 198.18.0.2:5353 directly from the same port, whose natural reply
    // tuple is the DNAT'd entry's, so the kernel's null SNAT binding moves its source port.
    name: 'nat_dnat_udp',
    oracle: ['--nat', 'dnat:udp/198.18.100.1:53->198.18.0.2:5353'],
    ctflow: '--nat dnat:udp/198.18.100.1:53->198.18.0.2:5353',
    packets: [
      udp(INSIDE_A, '198.18.100.1', 33000, 53, text('query 1')),
      udp('198.18.0.2', INSIDE_A, 5353, 33000, text('answer 1')),
      udp(INSIDE_A, '198.18.100.1', 33000, 53, text('query 2')),
      udp(INSIDE_B, '198.18.100.1', 33001, 53, text('query 3')),
      icmpError('198.18.0.2', INSIDE_B, 3, 3, udp(INSIDE_B, '198.18.0.2', 33001, 5353, text('query 3'))),
      udp(INSIDE_A, '198.18.0.2', 33000, 5353, text('direct')),
      udp('198.18.0.2', INSIDE_A, 5353, 33000, text('answer 2')),
    ],
  },
  {
    // Hairpin NAT: DNAT of the virtual 198.18.100.1:80 to 198.18.0.2:8080 and SNAT of the inside
    // net, both on one connection (SRC_NAT and DST_NAT): the server answers the SNAT address. An
    // outside client reaching the same virtual address is only DNAT'd.
    name: 'nat_hairpin',
    oracle: ['--nat', 'dnat:tcp/198.18.100.1:80->198.18.0.2:8080', '--nat', 'snat:198.18.0.0/24->198.18.200.1'],
    ctflow: '--nat dnat:tcp/198.18.100.1:80->198.18.0.2:8080 --nat snat:198.18.0.0/24->198.18.200.1',
    packets: [
      tcp(INSIDE_A, '198.18.100.1', 41000, 80, F.SYN, 1000),
      tcp('198.18.0.2', '198.18.200.1', 8080, 41000, F.SYN | F.ACK, 5000, 1001),
      tcp(INSIDE_A, '198.18.100.1', 41000, 80, F.ACK, 1001, 5001),
      tcp(INSIDE_A, '198.18.100.1', 41000, 80, F.PSH | F.ACK, 1001, 5001, text('GET / HTTP/1.0\r\n\r\n')),
      tcp('198.18.0.2', '198.18.200.1', 8080, 41000, F.PSH | F.ACK, 5001, 1019, text('HTTP/1.0 200 OK\r\n\r\n')),
      tcp('198.18.50.5', '198.18.100.1', 42000, 80, F.SYN, 3000),
      tcp('198.18.0.2', '198.18.50.5', 8080, 42000, F.SYN | F.ACK, 6000, 3001),
      tcp('198.18.50.5', '198.18.100.1', 42000, 80, F.ACK, 3001, 6001),
    ],
  },
  {
    // ICMP errors about SNAT'd flows come back to the SNAT address quoting the translated packet:
    // RELATED in the reply direction, from the server or from a router on the way; an error
    // quoting a port nobody uses, or quoting the untranslated inside address, relates to nothing
    // (INVALID). Then an RST answering an unreplied, SNAT'd SYN destroys its entry.
    name: 'nat_snat_icmp_errors',
    oracle: ['--nat', 'snat:198.18.0.0/24->198.18.200.1'],
    ctflow: '--nat snat:198.18.0.0/24->198.18.200.1',
    packets: [
      udp(INSIDE_A, SERVER, 5000, 53, text('query')),
      icmpError(SERVER, '198.18.200.1', 3, 3, udp('198.18.200.1', SERVER, 5000, 53, text('query'))),
      icmpError('198.18.50.1', '198.18.200.1', 11, 0, udp('198.18.200.1', SERVER, 5000, 53, text('query'))),
      icmpError(SERVER, '198.18.200.1', 3, 3, udp('198.18.200.1', SERVER, 5999, 53, text('query'))),
      icmpError(SERVER, INSIDE_A, 3, 3, udp(INSIDE_A, SERVER, 5000, 53, text('query'))),
      tcp(INSIDE_A, SERVER, 40000, 443, F.SYN, 1000),
      tcp(SERVER, '198.18.200.1', 443, 40000, F.RST | F.ACK, 0, 1001),
      tcp(INSIDE_A, SERVER, 40000, 443, F.SYN, 2000),
    ],
  },
];

function quote(word: string): string {
  return /^[\w@%+=:,./>-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const out = process.argv[2];
if (!out) {
  console.error('usage: node dist/scripts/scenarios/nat.js OUTDIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const s of scenarios) {
  const start = Date.UTC(2026, 10, 26, 5, 0, 0) * 1000;
  writeFileSync(join(out, `${s.name}.pcap`), writePcap(s.packets.map((data, i) => ({ tsUs: start + i * 1000, data })), LINKTYPE_RAW));
  writeFileSync(join(out, `${s.name}.args`), ['--keep-addresses', ...s.oracle].map(quote).join(' '));
  writeFileSync(join(out, `${s.name}.ctflow-args`), s.ctflow);
  console.log(`wrote ${s.name}: ${s.packets.length} packets`);
}
