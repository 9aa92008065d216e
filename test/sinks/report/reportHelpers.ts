/** Shared by the report tests: runs ctflow's other commands on a capture for comparison, and crafts captures with bad frames. */
import { runCli as ctflow, runCliAsync } from '../../cli/runCli';
import { ipv4Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';

/** ctflow's CLI in this process, and its form for commands that finish asynchronously (those that read Kafka). */
export { ctflow, runCliAsync as ctflowAsync };

export function jsonLines(...argv: string[]): Array<Record<string, any>> {
  const r = ctflow(...argv);
  if (r.code !== 0) throw new Error(`ctflow ${argv.join(' ')} failed: ${r.err.join('\n')}`);
  return r.out.map((l) => JSON.parse(l));
}

/**
 * A raw-IP capture: a UDP exchange, a TCP handshake, two frames too short to be IP packets
 * (frames 2 and 5), and a last record cut short (the capture ends in a broken record).
 */
export function captureWithBadFrames(): Uint8Array {
  const t0 = Date.UTC(2026, 0, 1) * 1000;
  const udp = (src: string, dst: string, sport: number, dport: number): Uint8Array => ipv4Packet({ src, dst, proto: 17, payload: udpDatagram({ sport, dport, payload: new Uint8Array(20) }) });
  const tcp = (src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack = 0): Uint8Array =>
    ipv4Packet({ src, dst, proto: 6, payload: tcpSegment({ sport, dport, seq, ack, flags, window: 64240 }) });
  const frames = [
    udp('10.0.0.1', '10.0.0.2', 5000, 53),
    udp('10.0.0.2', '10.0.0.1', 53, 5000),
    Uint8Array.of(0x45, 0x00, 0x00),
    tcp('10.0.0.1', '10.0.0.3', 40000, 443, 0x02, 100),
    tcp('10.0.0.3', '10.0.0.1', 443, 40000, 0x12, 900, 101),
    Uint8Array.of(0x60, 0x00),
    tcp('10.0.0.1', '10.0.0.3', 40000, 443, 0x10, 101, 901),
  ];
  const pcap = writePcap(frames.map((data, k) => ({ tsUs: t0 + k * 1000, data })), 101);
  const lastRecord = writePcap([{ tsUs: t0 + 9000, data: udp('10.0.0.9', '10.0.0.2', 1, 2) }], 101).subarray(24);
  const out = new Uint8Array(pcap.length + lastRecord.length - 10);
  out.set(pcap);
  out.set(lastRecord.subarray(0, lastRecord.length - 10), pcap.length);
  return out;
}

/** One UDP flow of `n` datagrams, alternating direction: a story longer than one page. */
export function longUdpFlow(n: number): Uint8Array {
  const t0 = Date.UTC(2026, 0, 1) * 1000;
  const records = Array.from({ length: n }, (_, k) => {
    const [src, dst, sport, dport] = k % 2 ? ['10.0.0.2', '10.0.0.1', 9000, 5000] : ['10.0.0.1', '10.0.0.2', 5000, 9000];
    return { tsUs: t0 + k * 100, data: ipv4Packet({ src, dst, proto: 17, payload: udpDatagram({ sport, dport, payload: new Uint8Array(8) }) }) };
  });
  return writePcap(records, 101);
}
