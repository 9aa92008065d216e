/**
 * The bundled sample capture: synthetic traffic of a small gateway, made by ctflow itself
 * (deterministic: a seeded generator), so the README's first command has something realistic to
 * chew on: web sessions with data and orderly closes, refused connections, a SYN scan, DNS over
 * UDP, pings, an ICMP port-unreachable, an IPv6 session, a fragmented datagram, and a few packets
 * the kernel would call INVALID (bad flags, data beyond the window, a reply with no request).
 */
import { ipv4Packet, ipv6Packet, tcpSegment, udpDatagram, icmpMessage } from '../ingest/capture/frameBuilders';
import { writePcap } from '../ingest/capture/pcapWriter';
import type { PcapRecord } from '../ingest/capture/pcapWriter';

const F = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 };
const LINKTYPE_RAW = 101;

/** mulberry32: small, seeded, good enough to vary ports and sizes reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeSampleCapture(sessions = 400): Uint8Array {
  const rnd = prng(20261125);
  const records: PcapRecord[] = [];
  let t = Date.UTC(2026, 10, 25, 12, 0, 0) * 1000; // µs
  const emit = (data: Uint8Array, gapUs = 200 + Math.floor(rnd() * 800)): void => {
    t += gapUs;
    records.push({ tsUs: t, data });
  };
  const v4 = (src: string, dst: string, proto: number, payload: Uint8Array, extra: Partial<Parameters<typeof ipv4Packet>[0]> = {}): Uint8Array =>
    ipv4Packet({ src, dst, proto, payload, ...extra });
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => 32 + ((i * 7) % 90));

  const tcpSession = (client: string, server: string, sport: number, dport: number, reqLen: number, respLen: number, send: (d: Uint8Array) => void): void => {
    let cs = Math.floor(rnd() * 2 ** 31);
    let ss = Math.floor(rnd() * 2 ** 31);
    const c = (flags: number, payload: Uint8Array = new Uint8Array(0)): void => {
      send(v4(client, server, 6, tcpSegment({ sport, dport, seq: cs, ack: flags & F.ACK ? ss : 0, flags, window: 64240, payload, options: flags & F.SYN ? { mss: 1460, wscale: 7, sackPermitted: true } : {} })));
      cs = (cs + payload.length + (flags & (F.SYN | F.FIN) ? 1 : 0)) >>> 0;
    };
    const s = (flags: number, payload: Uint8Array = new Uint8Array(0)): void => {
      send(v4(server, client, 6, tcpSegment({ sport: dport, dport: sport, seq: ss, ack: cs, flags, window: 65160, payload, options: flags & F.SYN ? { mss: 1460, wscale: 7, sackPermitted: true } : {} })));
      ss = (ss + payload.length + (flags & (F.SYN | F.FIN) ? 1 : 0)) >>> 0;
    };
    c(F.SYN);
    s(F.SYN | F.ACK);
    c(F.ACK);
    c(F.PSH | F.ACK, bytes(reqLen));
    s(F.ACK);
    for (let left = respLen; left > 0; left -= 1400) s(F.ACK | (left <= 1400 ? F.PSH : 0), bytes(Math.min(1400, left)));
    c(F.ACK);
    c(F.FIN | F.ACK);
    s(F.FIN | F.ACK);
    c(F.ACK);
  };

  for (let n = 0; n < sessions; n++) {
    const client = `192.0.2.${10 + (n % 40)}`;
    const server = `198.51.100.${1 + (n % 7)}`;
    const sport = 32768 + Math.floor(rnd() * 28000);
    tcpSession(client, server, sport, n % 5 === 0 ? 80 : 443, 200 + Math.floor(rnd() * 400), 500 + Math.floor(rnd() * 8000), (d) => emit(d));
    if (n % 4 === 0) {
      // DNS query and answer
      const id = 1024 + Math.floor(rnd() * 60000);
      emit(v4(client, '203.0.113.53', 17, udpDatagram({ sport: id, dport: 53, payload: bytes(40) })));
      emit(v4('203.0.113.53', client, 17, udpDatagram({ sport: 53, dport: id, payload: bytes(120) })));
    }
    if (n % 25 === 0) {
      // ping and its reply; then a refused connection
      emit(v4(client, server, 1, icmpMessage({ type: 8, id: n + 1, seq: 1, payload: bytes(56) })));
      emit(v4(server, client, 1, icmpMessage({ type: 0, id: n + 1, seq: 1, payload: bytes(56) })));
      const sp = 40000 + n;
      emit(v4(client, server, 6, tcpSegment({ sport: sp, dport: 8080, seq: 1000, flags: F.SYN, window: 64240 })));
      emit(v4(server, client, 6, tcpSegment({ sport: 8080, dport: sp, seq: 0, ack: 1001, flags: F.RST | F.ACK, window: 0 })));
    }
  }
  // A SYN scan of one host: most ports answer with RST, two with SYN/ACK.
  for (let port = 1; port <= 200; port++) {
    emit(v4('192.0.2.66', '198.51.100.9', 6, tcpSegment({ sport: 61000, dport: port, seq: 4242, flags: F.SYN, window: 1024 })), 50);
    const open = port === 22 || port === 80;
    emit(v4('198.51.100.9', '192.0.2.66', 6, tcpSegment({ sport: port, dport: 61000, seq: open ? 777 : 0, ack: 4243, flags: open ? F.SYN | F.ACK : F.RST | F.ACK, window: open ? 29200 : 0 })), 50);
  }
  // A UDP probe answered by port unreachable (RELATED), and an unsolicited echo reply (INVALID).
  const probe = v4('192.0.2.10', '198.51.100.3', 17, udpDatagram({ sport: 51515, dport: 33434, payload: bytes(12) }));
  emit(probe);
  emit(v4('198.51.100.3', '192.0.2.10', 1, icmpMessage({ type: 3, code: 3, payload: probe.subarray(0, 28) })));
  emit(v4('198.51.100.4', '192.0.2.11', 1, icmpMessage({ type: 0, id: 999, seq: 1, payload: bytes(8) })));
  // Invalid TCP: SYN|FIN, and data far beyond the receiver's window on a live session.
  emit(v4('192.0.2.12', '198.51.100.5', 6, tcpSegment({ sport: 50000, dport: 443, seq: 5, flags: F.SYN | F.FIN })));
  const [cl, sv] = ['192.0.2.13', '198.51.100.6'];
  emit(v4(cl, sv, 6, tcpSegment({ sport: 50001, dport: 443, seq: 100, flags: F.SYN, window: 64240 })));
  emit(v4(sv, cl, 6, tcpSegment({ sport: 443, dport: 50001, seq: 900, ack: 101, flags: F.SYN | F.ACK, window: 65160 })));
  emit(v4(cl, sv, 6, tcpSegment({ sport: 50001, dport: 443, seq: 101, ack: 901, flags: F.ACK, window: 64240 })));
  emit(v4(cl, sv, 6, tcpSegment({ sport: 50001, dport: 443, seq: 101 + 5_000_000, ack: 901, flags: F.PSH | F.ACK, window: 64240, payload: bytes(100) })));
  const liveSeq = records.length;
  // An IPv6 session and a fragmented UDP datagram.
  const six = (src: string, dst: string, nh: number, payload: Uint8Array): Uint8Array => ipv6Packet({ src, dst, nextHeader: nh, payload });
  emit(six('2001:db8::10', '2001:db8:1::80', 17, udpDatagram({ sport: 5353, dport: 53, payload: bytes(30) })));
  emit(six('2001:db8:1::80', '2001:db8::10', 17, udpDatagram({ sport: 53, dport: 5353, payload: bytes(90) })));
  const big = udpDatagram({ sport: 7000, dport: 7001, payload: bytes(2000) });
  emit(v4('192.0.2.20', '198.51.100.7', 17, big.subarray(0, 1480), { id: 4711, mf: true }));
  emit(v4('192.0.2.20', '198.51.100.7', 17, big.subarray(1480), { id: 4711, fragOffset: 1480 }));
  if (liveSeq === 0) throw new Error('sample generator produced no session');
  return writePcap(records, LINKTYPE_RAW);
}
