/**
 * peekFlowKey, the capture workers' light pass, against the full decoder: whenever it answers, the
 * full decoder calls the frame an IP packet and flowKeyOf gives that packet the same key (so the
 * same worker owns it), on valid frames of every link type, random bytes and mutated frames, with
 * and without zones. And it does answer for the plain IPv4 traffic it exists for.
 */
import fc from 'fast-check';
import { ethernetFrame, icmpMessage, ipv4Packet, ipv6Packet, linuxSll2Frame, linuxSllFrame, loopbackFrame, mplsPayload, nflogFrame, pppoePayload, tcpSegment, udpDatagram } from '../../../ingest/capture/frameBuilders';
import { LINKTYPE } from '../../../ingest/capture/types';
import { decodeFrame } from '../../../ingest/decode/index';
import { peekFlowKey } from '../../../ingest/decode/peek';
import type { PeekZoneOf } from '../../../ingest/decode/peek';
import { flowKeyOf } from '../../../processors/conntrack/engine';
import { flowHash } from '../../../processors/conntrack/tuple';
import { IPPROTO, TCP_FLAG } from '../../../processors/packet';
import { zoneResolver } from '../../../processors/zones';
import { mutatedFrames } from './mutatedFrames';

const LINK_TYPES = Object.values(LINKTYPE);

const tcp = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, options: Uint8Array.of(1, 1, 1, 0), payload: tcpSegment({ sport: 1, dport: 2, seq: 3, flags: TCP_FLAG.SYN, payload: new Uint8Array(9) }) });
const udp = ipv4Packet({ src: '192.168.7.20', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udpDatagram({ sport: 53, dport: 4000, payload: new Uint8Array(12) }) });
const fragment = ipv4Packet({ src: '10.0.0.3', dst: '10.0.0.4', proto: IPPROTO.UDP, id: 7, fragOffset: 24, payload: new Uint8Array(16) });
const icmpError = ipv4Packet({ src: '10.0.0.9', dst: '10.0.0.1', proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 3, payload: tcp }) });
const v6 = ipv6Packet({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: IPPROTO.UDP, extensions: [{ type: 0 }], payload: udpDatagram({ sport: 1, dport: 2 }) });
const v6Tcp = ipv6Packet({ src: '2001:db8::7', dst: '::ffff:10.1.2.3', nextHeader: IPPROTO.TCP, extensions: [{ type: 0 }, { type: 60 }, { type: 51 }], payload: tcpSegment({ sport: 80, dport: 999, seq: 1, flags: TCP_FLAG.ACK }) });
const v6Fragment = ipv6Packet({ src: 'fe80::1', dst: 'fe80::2', nextHeader: IPPROTO.UDP, extensions: [{ type: 44, offset: 16, mf: true, id: 5 }], payload: new Uint8Array(24) });
const v6Echo = ipv6Packet({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: IPPROTO.ICMPV6, payload: icmpMessage({ type: 128, id: 3, seq: 4 }) });
const v6Error = ipv6Packet({ src: '2001:db8::9', dst: '2001:db8::1', nextHeader: IPPROTO.ICMPV6, payload: icmpMessage({ type: 1, code: 4, payload: v6 }) });
const echo = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.ICMP, payload: icmpMessage({ type: 8, id: 1, seq: 2 }) });
// A later fragment whose bytes happen to start like an error: no header there, so no quote.
const errorFragment = ipv4Packet({ src: '10.0.0.9', dst: '10.0.0.1', proto: IPPROTO.ICMP, id: 9, fragOffset: 8, payload: icmpMessage({ type: 3, code: 1, payload: tcp }) });

/** Valid frames of every link type, as [linkType, bytes]. */
const VALID: Array<[number, Uint8Array]> = [
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: tcp, vlans: [1, 2] })],
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: udp, vlans: [30] })],
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: fragment })],
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: icmpError })],
  [LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8864, payload: pppoePayload(udp) })],
  [LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8847, payload: mplsPayload([1, 2], tcp) })],
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: v6 })],
  [LINKTYPE.RAW, udp],
  [LINKTYPE.IPV4, tcp],
  [LINKTYPE.IPV6, v6],
  [LINKTYPE.RAW, v6Tcp],
  [LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x86dd, payload: v6Fragment, vlans: [7] })],
  [LINKTYPE.IPV6, v6Echo],
  [LINKTYPE.IPV6, v6Error],
  [LINKTYPE.RAW, echo],
  [LINKTYPE.RAW, errorFragment],
  [LINKTYPE.LINUX_SLL, linuxSllFrame(udp)],
  [LINKTYPE.LINUX_SLL2, linuxSll2Frame(tcp)],
  [LINKTYPE.NULL, loopbackFrame(udp)],
  [LINKTYPE.LOOP, loopbackFrame(tcp, { littleEndian: false })],
  [LINKTYPE.NFLOG, nflogFrame(udp)],
  [LINKTYPE.PPP, Uint8Array.of(0xff, 0x03, 0x00, 0x21, ...tcp)],
];

/** Zones from the VLAN id (identity) and from the interface, as --zone-from gives them. */
const ZONES: Array<PeekZoneOf | undefined> = [
  undefined,
  zoneResolver({ source: 'vlan', map: new Map(), defaultZone: 4 }),
  zoneResolver({ source: 'interface', map: new Map([['eth1', 9], ['2', 5]]), defaultZone: 1 }),
];

/** The promise: an answer is the full decoder's IP packet's key. */
function expectAgrees(linkType: number, data: Uint8Array, interfaceId: number, interfaceName: string | undefined, zoneOf: PeekZoneOf | undefined): number {
  const frame = { frame: 0, tsUs: 0, linkType, interfaceId, interfaceName, data };
  const key = peekFlowKey(frame, zoneOf);
  if (key < 0) return key;
  const r = decodeFrame(frame);
  expect(r.kind).toBe('ip');
  if (r.kind !== 'ip') return key;
  expect(key).toBe(flowKeyOf(r.packet.ip, zoneOf ? zoneOf(r.packet) : 0));
  return key;
}

const place = fc.record({
  interfaceId: fc.integer({ min: 0, max: 3 }),
  interfaceName: fc.option(fc.constantFrom('eth0', 'eth1'), { nil: undefined }),
  zone: fc.integer({ min: 0, max: ZONES.length - 1 }),
});

test('valid IPv4 and IPv6 frames are answered, and agree; only ICMP errors (keyed by their quote) are left to the full decoder', () => {
  let answered = 0;
  for (const [linkType, data] of VALID) {
    for (const zoneOf of ZONES) {
      const key = expectAgrees(linkType, data, 2, 'eth1', zoneOf);
      const r = decodeFrame({ frame: 0, tsUs: 0, linkType, interfaceId: 2, data });
      const quoting = r.kind === 'ip' && r.packet.ip.l4 !== undefined && 'inner' in r.packet.ip.l4 && r.packet.ip.l4.inner !== undefined;
      expect(r.kind).toBe('ip');
      expect(key >= 0).toBe(!quoting);
      if (key >= 0) answered++;
    }
  }
  // Every frame but the two ICMP errors that quote a packet, in every zone set-up.
  expect(answered).toBe((VALID.length - 2) * ZONES.length);
});

test('arbitrary bytes under every link type', () => {
  fc.assert(
    fc.property(fc.constantFrom(...LINK_TYPES, 147), fc.uint8Array({ maxLength: 120 }), place, (linkType, data, p) => {
      expectAgrees(linkType, data, p.interfaceId, p.interfaceName, ZONES[p.zone]);
    }),
    { numRuns: 3000 },
  );
});

test('arbitrary bytes after a valid link header, as IPv4 or IPv6', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }), place, (ip, asV6, vlan, p) => {
      // The version nibble the link layer announces, so the header checks are what is exercised.
      const bytes = Uint8Array.from(ip);
      if (bytes.length > 0) bytes[0] = (asV6 ? 0x60 : 0x40) | (bytes[0] & 0x0f);
      // IPv6: mostly Next Headers of the extension chain and ICMPv6, and a payload length that fits.
      if (asV6 && bytes.length > 40) {
        bytes[6] = [0, 43, 44, 51, 60, 58, 17, bytes[6]][bytes[6] & 7];
        if (bytes[4] & 1) bytes[4] = 0, bytes[5] = bytes.length - 40;
      }
      const data = ethernetFrame({ etherType: asV6 ? 0x86dd : 0x0800, payload: bytes, vlans: vlan === undefined ? [] : [vlan] });
      expectAgrees(LINKTYPE.ETHERNET, data, p.interfaceId, p.interfaceName, ZONES[p.zone]);
    }),
    { numRuns: 3000 },
  );
});

test('mutations of valid frames', () => {
  const mutated = mutatedFrames(VALID);
  fc.assert(
    fc.property(mutated, place, ({ linkType, data }, p) => {
      expectAgrees(linkType, data, p.interfaceId, p.interfaceName, ZONES[p.zone]);
    }),
    { numRuns: 5000 },
  );
});

test('flowHash reads the address pair in place: the FNV-1a of `${lo}|${hi}` it always was', () => {
  const reference = (zone: number, a: string, b: string): number => {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    let h = (0x811c9dc5 ^ zone) >>> 0;
    const s = `${lo}|${hi}`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h;
  };
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.string(), fc.string(), (zone, a, b) => {
      expect(flowHash(zone, a, b)).toBe(reference(zone, a, b));
    }),
    { numRuns: 2000 },
  );
  expect(flowHash(5, '10.0.0.1', '10.0.0.2')).toBe(reference(5, '10.0.0.1', '10.0.0.2'));
});
