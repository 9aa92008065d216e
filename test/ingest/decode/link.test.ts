/**
 * Every link type round-trips: build an IP packet, frame it, write a pcap, read it back and
 * decode it to the same IP packet.
 */
import {
  ethernetFrame,
  ipv4Packet,
  ipv6Packet,
  linuxSll2Frame,
  linuxSllFrame,
  loopbackFrame,
  mplsPayload,
  nflogFrame,
  pppoePayload,
  udpDatagram,
} from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { openCapture } from '../../../ingest/capture/reader';
import { LINKTYPE } from '../../../ingest/capture/types';
import { decodeFrame, findIpHeader } from '../../../ingest/decode/index';
import { IPPROTO } from '../../../processors/packet';

const v4 = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.UDP, payload: udpDatagram({ sport: 5353, dport: 53 }) });
const v6 = ipv6Packet({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: IPPROTO.UDP, payload: udpDatagram({ sport: 5353, dport: 53 }) });

function roundTrip(linkType: number, frame: Uint8Array) {
  const [f] = [...openCapture(writePcap([{ tsUs: 1_000_001, data: frame }], linkType))];
  return decodeFrame(f);
}

function expectIp(linkType: number, frame: Uint8Array, ip: Uint8Array, vlan?: number) {
  const r = roundTrip(linkType, frame);
  if (r.kind !== 'ip') throw new Error(`expected ip, got ${r.kind}: ${r.reason}`);
  expect(r.packet.ip.bytes).toEqual(ip);
  expect(r.packet.ip.family).toBe(ip[0] >> 4);
  expect(r.packet.ip.l4).toMatchObject({ kind: 'udp', sport: 5353, dport: 53 });
  expect(r.packet.tsUs).toBe(1_000_001);
  expect(r.packet.vlan).toBe(vlan);
}

describe.each([
  ['ipv4', v4],
  ['ipv6', v6],
])('link types carrying %s', (_name, ip) => {
  test('Ethernet', () => expectIp(LINKTYPE.ETHERNET, ethernetFrame({ payload: ip }), ip));
  test('Ethernet with padding to the 60-byte minimum', () => {
    const frame = ethernetFrame({ payload: ip });
    const padded = new Uint8Array(Math.max(60, frame.length) + 4); // + an FCS
    padded.set(frame);
    expectIp(LINKTYPE.ETHERNET, padded, ip);
  });
  test('802.1Q', () => expectIp(LINKTYPE.ETHERNET, ethernetFrame({ payload: ip, vlans: [42] }), ip, 42));
  test('QinQ records the outer tag', () => expectIp(LINKTYPE.ETHERNET, ethernetFrame({ payload: ip, vlans: [100, 200] }), ip, 100));
  test('old QinQ TPID 0x9100', () =>
    expectIp(LINKTYPE.ETHERNET, ethernetFrame({ payload: ip, vlans: [7, 8], tpids: [0x9100, 0x8100] }), ip, 7));
  test('PPPoE session', () => expectIp(LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8864, payload: pppoePayload(ip) }), ip));
  test('MPLS with two labels', () =>
    expectIp(LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8847, payload: mplsPayload([16, 17], ip) }), ip));
  test('LLC/SNAP', () => {
    const snap = Uint8Array.of(0xaa, 0xaa, 0x03, 0, 0, 0, ip[0] >> 4 === 6 ? 0x86 : 0x08, ip[0] >> 4 === 6 ? 0xdd : 0x00);
    const payload = new Uint8Array(snap.length + ip.length);
    payload.set(snap);
    payload.set(ip, snap.length);
    expectIp(LINKTYPE.ETHERNET, ethernetFrame({ etherType: payload.length, payload }), ip);
  });
  test.each([LINKTYPE.RAW, LINKTYPE.RAW_ALT12, LINKTYPE.RAW_ALT14])('raw IP (link type %d)', (lt) => expectIp(lt, ip, ip));
  test('typed raw IP (228/229)', () => expectIp(ip[0] >> 4 === 6 ? LINKTYPE.IPV6 : LINKTYPE.IPV4, ip, ip));
  test('Linux cooked v1', () => expectIp(LINKTYPE.LINUX_SLL, linuxSllFrame(ip), ip));
  test('Linux cooked v2', () => expectIp(LINKTYPE.LINUX_SLL2, linuxSll2Frame(ip), ip));
  test('Linux cooked v2 with a VLAN tag', () => {
    const tagged = new Uint8Array(4 + ip.length);
    tagged.set([0, 9, ip[0] >> 4 === 6 ? 0x86 : 0x08, ip[0] >> 4 === 6 ? 0xdd : 0x00]);
    tagged.set(ip, 4);
    expectIp(LINKTYPE.LINUX_SLL2, linuxSll2Frame(tagged, 0x8100), ip, 9);
  });
  test('NULL, little-endian family', () => expectIp(LINKTYPE.NULL, loopbackFrame(ip, { littleEndian: true }), ip));
  test('NULL, big-endian family', () => expectIp(LINKTYPE.NULL, loopbackFrame(ip, { littleEndian: false }), ip));
  test('LOOP', () => expectIp(LINKTYPE.LOOP, loopbackFrame(ip, { littleEndian: false }), ip));
  test('NFLOG, little-endian TLVs', () => expectIp(LINKTYPE.NFLOG, nflogFrame(ip, { littleEndian: true }), ip));
  test('NFLOG, big-endian TLVs', () => expectIp(LINKTYPE.NFLOG, nflogFrame(ip, { littleEndian: false }), ip));
  test('PPP', () => expectIp(LINKTYPE.PPP, Uint8Array.of(0xff, 0x03, 0x00, ip[0] >> 4 === 6 ? 0x57 : 0x21, ...ip), ip));
});

describe('IPv6 over BSD loopback', () => {
  test.each([24, 28, 30])('address family %d', (af) => {
    expectIp(LINKTYPE.NULL, loopbackFrame(v6, { af }), v6);
    expectIp(LINKTYPE.LOOP, loopbackFrame(v6, { af, littleEndian: false }), v6);
  });
});

describe('frames that are not IP', () => {
  test.each([
    ['arp', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x0806, payload: new Uint8Array(28) }), 'arp'],
    ['lldp', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x88cc, payload: new Uint8Array(20) }), 'ethertype 0x88cc'],
    ['arp in a vlan', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x0806, vlans: [5], payload: new Uint8Array(28) }), 'arp'],
    ['802.3 llc (stp)', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 38, payload: Uint8Array.of(0x42, 0x42, 3, ...new Uint8Array(35)) }), '802.3 llc frame'],
    ['unsupported link type', 147, v4, 'unsupported link type 147'],
    ['loopback family 7', LINKTYPE.NULL, loopbackFrame(v4, { af: 7 }), 'address family 7'],
    ['pppoe lcp', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8864, payload: Uint8Array.of(0x11, 0, 0, 1, 0, 2, 0xc0, 0x21) }), 'pppoe protocol 0xc021'],
    ['sll netlink', LINKTYPE.LINUX_SLL, (() => { const f = linuxSllFrame(v4); f[2] = 0x03; f[3] = 0x38; return f; })(), 'netlink'],
  ])('%s', (_name, linkType, frame, reason) => {
    expect(roundTrip(linkType, frame)).toEqual({ kind: 'not-ip', reason });
  });

  test('NFLOG record without a payload TLV', () => {
    const f = nflogFrame(v4);
    // Cut off the payload TLV: header 4 + packet-header TLV 8 + prefix TLV 12.
    expect(findIpHeader(LINKTYPE.NFLOG, f.subarray(0, 24))).toEqual({ kind: 'not-ip', reason: 'nflog record without payload' });
  });
});

describe('malformed framing', () => {
  test.each([
    ['short ethernet', LINKTYPE.ETHERNET, new Uint8Array(10), 'truncated ethernet header: 10 of 14 bytes'],
    ['vlan tag cut', LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8100, payload: Uint8Array.of(0, 1) }), 'truncated vlan tag: 2 of 4 bytes'],
    ['short sll', LINKTYPE.LINUX_SLL, new Uint8Array(15), 'truncated linux sll header: 15 of 16 bytes'],
    ['short sll2', LINKTYPE.LINUX_SLL2, new Uint8Array(3), 'truncated linux sll2 header: 3 of 20 bytes'],
    ['nflog tlv length 0', LINKTYPE.NFLOG, Uint8Array.of(2, 0, 0, 1, 0, 0, 1, 0), 'bad nflog tlv length 0'],
    ['undeclared pcapng interface', LINKTYPE.UNDECLARED, v4, 'packet block names an undeclared pcapng interface'],
  ])('%s', (_name, linkType, frame, reason) => {
    expect(findIpHeader(linkType, frame)).toEqual({ kind: 'malformed', reason });
  });

  test('an IPv6 header in an IPv4-typed frame', () => {
    expect(roundTrip(LINKTYPE.IPV4, v6)).toEqual({ kind: 'malformed', reason: 'ip version 6 in an ipv4 frame' });
    expect(roundTrip(LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x0800, payload: v6 }))).toEqual({
      kind: 'malformed',
      reason: 'ip version 6 in an ipv4 frame',
    });
  });
});
