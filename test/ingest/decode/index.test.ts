/**
 * decodeFrame and openCapture against hostile bytes: random frames and random mutations of
 * valid ones must come back as a result (or, for openCapture, its documented format error).
 */
import fc from 'fast-check';
import {
  ethernetFrame,
  icmpMessage,
  ipv4Packet,
  ipv6Packet,
  linuxSll2Frame,
  linuxSllFrame,
  loopbackFrame,
  mplsPayload,
  nflogFrame,
  pppoePayload,
  tcpSegment,
  udpDatagram,
} from '../../../ingest/capture/frameBuilders';
import { writePcap } from '../../../ingest/capture/pcapWriter';
import { CaptureFormatError, LINKTYPE } from '../../../ingest/capture/types';
import { decodeFrame, INTERNAL_ERROR_PREFIX, type DecodeResult } from '../../../ingest/decode/index';
import { readPackets } from '../../../ingest/packetSource';
import { mutatedFrames } from './mutatedFrames';
import { IPPROTO, TCP_FLAG } from '../../../processors/packet';
import { writePcapng } from '../helpers';

const LINK_TYPES = Object.values(LINKTYPE);

const tcp = ipv4Packet({
  src: '10.0.0.1',
  dst: '10.0.0.2',
  proto: IPPROTO.TCP,
  options: Uint8Array.of(1, 1, 1, 0),
  payload: tcpSegment({ sport: 1, dport: 2, seq: 3, flags: TCP_FLAG.SYN, options: { mss: 1, wscale: 2, sackPermitted: true, sack: [[1, 2]], timestamp: { value: 1, echo: 2 } }, payload: new Uint8Array(9) }),
});
const icmpError = ipv4Packet({ src: '10.0.0.9', dst: '10.0.0.1', proto: IPPROTO.ICMP, payload: icmpMessage({ type: 3, code: 3, payload: tcp }) });
const v6 = ipv6Packet({
  src: '2001:db8::1',
  dst: '2001:db8::2',
  nextHeader: IPPROTO.ICMPV6,
  extensions: [{ type: 0 }, { type: 43 }, { type: 44, offset: 0, mf: true, id: 5 }, { type: 51 }],
  payload: icmpMessage({ type: 1, payload: ipv6Packet({ src: '2001:db8::2', dst: '2001:db8::3', nextHeader: IPPROTO.UDP, payload: udpDatagram({ sport: 1, dport: 2 }) }) }),
});
const sctp = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.SCTP, payload: Uint8Array.of(0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 20, 1, 2, 3, 4, ...new Uint8Array(12)) });
const gre = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.GRE, payload: Uint8Array.of(0xb0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2) });
const dccp = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.DCCP, payload: Uint8Array.of(0, 1, 0, 2, 4, 0, 0, 0, 1, ...new Uint8Array(7)) });

/** Valid frames of every link type the decoder reads, as [linkType, bytes]. */
const VALID: Array<[number, Uint8Array]> = [
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: tcp, vlans: [1, 2] })],
  [LINKTYPE.ETHERNET, ethernetFrame({ payload: icmpError })],
  [LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8864, payload: pppoePayload(v6) })],
  [LINKTYPE.ETHERNET, ethernetFrame({ etherType: 0x8847, payload: mplsPayload([1, 2], sctp) })],
  [LINKTYPE.RAW, gre],
  [LINKTYPE.IPV4, dccp],
  [LINKTYPE.IPV6, v6],
  [LINKTYPE.LINUX_SLL, linuxSllFrame(icmpError)],
  [LINKTYPE.LINUX_SLL2, linuxSll2Frame(v6)],
  [LINKTYPE.NULL, loopbackFrame(tcp)],
  [LINKTYPE.LOOP, loopbackFrame(v6, { littleEndian: false })],
  [LINKTYPE.NFLOG, nflogFrame(icmpError)],
  [LINKTYPE.PPP, Uint8Array.of(0xff, 0x03, 0x00, 0x21, ...tcp)],
];

function expectWellFormed(r: DecodeResult, data: Uint8Array): void {
  expect(['ip', 'not-ip', 'malformed']).toContain(r.kind);
  if (r.kind !== 'ip') {
    expect(r.reason.startsWith(INTERNAL_ERROR_PREFIX)).toBe(false);
    return;
  }
  const ip = r.packet.ip;
  expect(ip.family === 4 || ip.family === 6).toBe(true);
  expect(ip.bytes!.length).toBeLessThanOrEqual(data.length);
  expect(ip.bytes!.length).toBeLessThanOrEqual(ip.length);
}

/** A valid frame with some bytes overwritten and possibly cut short. */
const mutatedFrame = mutatedFrames(VALID);

describe('decodeFrame never throws', () => {
  test('the valid frames decode as IP', () => {
    for (const [linkType, data] of VALID) {
      const r = decodeFrame({ frame: 0, tsUs: 0, linkType, interfaceId: 0, data });
      expect(r.kind).toBe('ip');
    }
  });

  test('arbitrary bytes under every link type', () => {
    fc.assert(
      fc.property(fc.constantFrom(...LINK_TYPES, 147, 65535), fc.uint8Array({ maxLength: 200 }), (linkType, data) => {
        expectWellFormed(decodeFrame({ frame: 0, tsUs: 0, linkType, interfaceId: 0, data }), data);
      }),
      { numRuns: 3000 },
    );
  });

  test('arbitrary bytes after a valid link header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (ip, v6) => {
        const data = ethernetFrame({ etherType: v6 ? 0x86dd : 0x0800, payload: ip });
        expectWellFormed(decodeFrame({ frame: 0, tsUs: 0, linkType: LINKTYPE.ETHERNET, interfaceId: 0, data }), data);
      }),
      { numRuns: 3000 },
    );
  });

  test('mutations of valid frames', () => {
    fc.assert(
      fc.property(mutatedFrame, ({ linkType, data }) => {
        expectWellFormed(decodeFrame({ frame: 0, tsUs: 0, linkType, interfaceId: 0, data }), data);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('openCapture only throws its format error', () => {
  function readAll(bytes: Uint8Array): void {
    let stream;
    try {
      stream = readPackets(bytes);
    } catch (err) {
      expect(err).toBeInstanceOf(CaptureFormatError);
      return;
    }
    for (const p of stream) expect(p.index).toBeGreaterThanOrEqual(0);
    const s = stream.summary;
    expect(s.frames).toBe(s.ipPackets + s.nonIp + s.malformed.length);
  }

  const pcap = writePcap(VALID.filter(([lt]) => lt === LINKTYPE.ETHERNET).map(([, data], i) => ({ tsUs: i, data })), LINKTYPE.ETHERNET);
  const pcapng = writePcapng([
    {
      blocks: [
        { kind: 'idb', iface: { linkType: LINKTYPE.RAW, tsresol: 9 } },
        { kind: 'idb', iface: { linkType: LINKTYPE.NFLOG } },
        { kind: 'epb', interfaceId: 0, ts: 5n, data: gre },
        { kind: 'epb', interfaceId: 1, ts: 6n, data: nflogFrame(tcp) },
        { kind: 'spb', data: v6 },
      ],
    },
    { bigEndian: true, blocks: [{ kind: 'idb', iface: { linkType: LINKTYPE.IPV6 } }, { kind: 'pb', interfaceId: 0, ts: 7n, data: v6 }] },
  ]);

  test('arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), readAll), { numRuns: 2000 });
  });

  test('arbitrary bytes behind each magic', () => {
    const magics = [pcap.subarray(0, 4), pcapng.subarray(0, 12), Uint8Array.of(0xa1, 0xb2, 0x3c, 0x4d), Uint8Array.of(0x4d, 0x3c, 0xb2, 0xa1)];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 300 }), (magic, rest) => {
        const bytes = new Uint8Array(magic.length + rest.length);
        bytes.set(magic);
        bytes.set(rest, magic.length);
        readAll(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  test('mutations of valid pcap and pcapng files', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(pcap, pcapng),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.option(fc.nat(), { nil: undefined }),
        (file, edits, cut) => {
          const bytes = Uint8Array.from(file);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          readAll(cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1)));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
