/**
 * Random captures for the --workers tests (captureWorkers.test.ts, shareJobs.test.ts): traffic
 * among a few hosts with what makes splitting the engine hard: fragments (some never completed),
 * times that step back, gaps long enough for entries to expire, ICMP errors quoting earlier packets.
 */
import fc from 'fast-check';
import { icmpMessage, ipv4Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';

const RAW_IP = 101;

/** Random traffic among a few hosts: UDP (some in fragments), TCP SYNs and ACKs, ICMP errors quoting earlier packets. */
export const captureArb = fc
  .array(
    fc.record({
      what: fc.constantFrom('udp', 'udp-reply', 'frag', 'syn', 'synack', 'ack', 'icmp-error'),
      a: fc.integer({ min: 1, max: 6 }),
      b: fc.integer({ min: 1, max: 6 }),
      port: fc.constantFrom(53, 80, 123),
      gapMs: fc.oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1000, max: 40_000 }), fc.constant(-300)),
      dropLast: fc.boolean(),
    }),
    { minLength: 1, maxLength: 120 },
  )
  .map((steps) => {
    let t = 1_700_000_000_000_000;
    let id = 1;
    const records: Array<{ tsUs: number; data: Uint8Array }> = [];
    for (const s of steps) {
      t += s.gapMs * 1000;
      const c = `10.0.0.${s.a}`, srv = `10.0.1.${s.b}`;
      const push = (data: Uint8Array) => records.push({ tsUs: t, data });
      switch (s.what) {
        case 'udp':
          push(ipv4Packet({ src: c, dst: srv, proto: 17, payload: udpDatagram({ sport: 4000, dport: s.port, payload: new Uint8Array(20) }) }));
          break;
        case 'udp-reply':
          push(ipv4Packet({ src: srv, dst: c, proto: 17, payload: udpDatagram({ sport: s.port, dport: 4000, payload: new Uint8Array(20) }) }));
          break;
        case 'frag': {
          // One UDP datagram in two fragments; sometimes the second never comes (given up later).
          const whole = udpDatagram({ sport: 5000, dport: s.port, payload: new Uint8Array(40) });
          const fid = id++;
          push(ipv4Packet({ src: c, dst: srv, proto: 17, id: fid, mf: true, payload: whole.subarray(0, 24) }));
          if (!s.dropLast) push(ipv4Packet({ src: c, dst: srv, proto: 17, id: fid, fragOffset: 24, payload: whole.subarray(24) }));
          break;
        }
        case 'syn':
          push(ipv4Packet({ src: c, dst: srv, proto: 6, payload: tcpSegment({ sport: 6000, dport: s.port, seq: 100, ack: 0, flags: 0x02 }) }));
          break;
        case 'synack':
          push(ipv4Packet({ src: srv, dst: c, proto: 6, payload: tcpSegment({ sport: s.port, dport: 6000, seq: 900, ack: 101, flags: 0x12 }) }));
          break;
        case 'ack':
          push(ipv4Packet({ src: c, dst: srv, proto: 6, payload: tcpSegment({ sport: 6000, dport: s.port, seq: 101, ack: 901, flags: 0x10 }) }));
          break;
        default: {
          // Port unreachable from a router, quoting the client's UDP datagram.
          const quoted = ipv4Packet({ src: c, dst: srv, proto: 17, payload: udpDatagram({ sport: 4000, dport: s.port }) });
          push(ipv4Packet({ src: '10.9.9.9', dst: c, proto: 1, payload: icmpMessage({ type: 3, code: 3, payload: quoted }) }));
        }
      }
    }
    return writePcap(records, RAW_IP);
  });
