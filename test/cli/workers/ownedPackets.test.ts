/**
 * OwnedPacketReader, a capture as one of N workers reads it (a few frames a call, as shares do), against readPackets: over all workers,
 * every IP packet comes out exactly once as its owner's (flowKeyOf % N) with the index and content
 * readPackets gives it, as foreign with its index and time everywhere else, and every worker ends
 * with readPackets' summary (frames, non-IP, malformed frames and their reasons). Random captures
 * mix valid, mutated, cut and non-IP frames, with VLAN zones or none.
 */
import fc from 'fast-check';
import { ethernetFrame, icmpMessage, ipv4Packet, ipv6Packet, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { LINKTYPE } from '../../../ingest/capture/types';
import { readAllPackets } from '../../../ingest/packetSource';
import type { ReadSummary } from '../../../ingest/packetSource';
import { OwnedPacketReader } from '../../../cli/workers/ownedPackets';
import type { Ownership, OwnedPacketSink } from '../../../cli/workers/ownedPackets';
import { flowKeyOf } from '../../../processors/conntrack/engine';
import type { CapturedPacket } from '../../../processors/packet';
import { IPPROTO, TCP_FLAG } from '../../../processors/packet';
import { zoneResolver } from '../../../processors/zones';

/** The whole capture read a few frames at a time, as a share resumes between chunks; readPackets()'s summary. */
function readOwnedPackets(bytes: Uint8Array, o: Ownership, sink: OwnedPacketSink): ReadSummary {
  const reader = new OwnedPacketReader(bytes, o, sink);
  while (reader.read(7));
  return reader.summary;
}

const host = (n: number): string => `10.0.${n >> 4}.${n & 15}`;

/** Frame bodies to draw from: IPv4 TCP/UDP/ICMP errors/fragments, IPv6, ARP. */
const frameArb = fc
  .record({
    what: fc.constantFrom('tcp', 'udp', 'frag', 'icmp', 'v6', 'arp'),
    a: fc.integer({ min: 1, max: 40 }),
    b: fc.integer({ min: 1, max: 40 }),
    vlan: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
    mutate: fc.boolean(),
    cut: fc.option(fc.nat(), { nil: undefined }),
  })
  .map(({ what, a, b, vlan, edits, mutate, cut }) => {
    const src = host(a);
    const dst = host(b);
    let ip: Uint8Array;
    if (what === 'tcp') ip = ipv4Packet({ src, dst, proto: IPPROTO.TCP, payload: tcpSegment({ sport: 1000 + a, dport: 80, seq: 1, flags: TCP_FLAG.SYN }) });
    else if (what === 'udp') ip = ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport: 53, dport: 2000 + b }) });
    else if (what === 'frag') ip = ipv4Packet({ src, dst, proto: IPPROTO.UDP, id: a, fragOffset: 16, payload: new Uint8Array(8) });
    else if (what === 'icmp') ip = ipv4Packet({ src: '10.9.9.9', dst: src, proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 3, payload: ipv4Packet({ src, dst, proto: IPPROTO.UDP, payload: udpDatagram({ sport: 4, dport: 53 }) }) }) });
    else if (what === 'v6') ip = ipv6Packet({ src: `2001:db8::${a}`, dst: `2001:db8::${b}`, nextHeader: IPPROTO.UDP, payload: udpDatagram({ sport: 1, dport: 2 }) });
    else ip = new Uint8Array(28);
    const data = ethernetFrame({ payload: ip, etherType: what === 'arp' ? 0x0806 : undefined, vlans: vlan === undefined ? [] : [vlan] });
    if (mutate) for (const [at, value] of edits) data[at % data.length] = value;
    return cut === undefined ? data : data.subarray(0, cut % (data.length + 1));
  });

const captureArb = fc.array(fc.tuple(frameArb, fc.integer({ min: 0, max: 2_000_000 })), { minLength: 1, maxLength: 60 }).map((frames) => {
  let t = 1_700_000_000_000_000;
  return writePcap(
    frames.map(([data, gap]) => ({ tsUs: (t += gap), data })),
    LINKTYPE.ETHERNET,
  );
});

test('every IP packet once, as its owner\'s, numbered as readPackets numbers it; the same summary in every worker', () => {
  fc.assert(
    fc.property(captureArb, fc.integer({ min: 2, max: 4 }), fc.boolean(), (bytes, workers, byVlan) => {
      const zoneOf = byVlan ? zoneResolver({ source: 'vlan', map: new Map(), defaultZone: 0 }) : undefined;
      const all = readAllPackets(bytes);
      const owner = all.packets.map((p) => flowKeyOf(p.ip, zoneOf ? zoneOf(p) : 0) % workers);
      const owned: CapturedPacket[] = [];
      for (let worker = 0; worker < workers; worker++) {
        const seen: number[] = [];
        const summary = readOwnedPackets(bytes, { worker, workers, zoneOf }, {
          own(p) {
            expect(owner[p.index]).toBe(worker);
            seen.push(p.index);
            owned.push(p);
          },
          foreign(index, tsUs) {
            expect(owner[index]).not.toBe(worker);
            expect(tsUs).toBe(all.packets[index].tsUs);
            seen.push(index);
          },
        });
        expect(seen).toEqual(all.packets.map((p) => p.index));
        expect(summary).toEqual(all.summary);
      }
      expect(owned.sort((x, y) => x.index - y.index)).toEqual(all.packets);
    }),
    { numRuns: 300 },
  );
});
