/**
 * Captures that carry one TCP handshake (10.0.0.1:40000 -> 10.0.0.2:80) twice, on two interfaces
 * or two VLANs, packet for packet: the same 5-tuple, so only a zone tells the copies apart.
 */
import { ethernetFrame, ipv4Packet, tcpSegment } from '../../ingest/capture/frameBuilders';
import { LINKTYPE } from '../../ingest/capture/types';
import { IPPROTO, TCP_FLAG } from '../../processors/packet';
import { writePcapng } from '../ingest/helpers';
import type { NgBlock } from '../ingest/helpers';

export const CLIENT = { addr: '10.0.0.1', port: 40000 };
export const SERVER = { addr: '10.0.0.2', port: 80 };
const T0_US = 1_700_000_000_000_000n;

/** SYN, SYN-ACK, ACK as IPv4 packets. */
export function handshake(): Uint8Array[] {
  const c2s = (flags: number, seq: number, ack: number) =>
    ipv4Packet({ src: CLIENT.addr, dst: SERVER.addr, proto: IPPROTO.TCP, payload: tcpSegment({ sport: CLIENT.port, dport: SERVER.port, seq, ack, flags }) });
  const s2c = (flags: number, seq: number, ack: number) =>
    ipv4Packet({ src: SERVER.addr, dst: CLIENT.addr, proto: IPPROTO.TCP, payload: tcpSegment({ sport: SERVER.port, dport: CLIENT.port, seq, ack, flags }) });
  return [c2s(TCP_FLAG.SYN, 100, 0), s2c(TCP_FLAG.SYN | TCP_FLAG.ACK, 500, 101), c2s(TCP_FLAG.ACK, 101, 501)];
}

/** The handshake on interface 0 (eth1) and, 1 µs behind each packet, again on interface 1 (eth2). */
export function twoInterfaceCapture(names: [string, string] = ['eth1', 'eth2']): Uint8Array {
  const blocks: NgBlock[] = [
    { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: names[0] } },
    { kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: names[1] } },
  ];
  handshake().forEach((ip, k) => {
    const ts = T0_US + BigInt(k) * 1000n;
    blocks.push({ kind: 'epb', interfaceId: 0, ts, data: ethernetFrame({ payload: ip }) });
    blocks.push({ kind: 'epb', interfaceId: 1, ts: ts + 1n, data: ethernetFrame({ payload: ip }) });
  });
  return writePcapng([{ blocks }]);
}

/** The handshake on one interface, tagged with each VLAN in turn, plus once untagged. */
export function vlanCapture(vlans: number[]): Uint8Array {
  const blocks: NgBlock[] = [{ kind: 'idb', iface: { linkType: LINKTYPE.ETHERNET, name: 'trunk0' } }];
  handshake().forEach((ip, k) => {
    const ts = T0_US + BigInt(k) * 1000n;
    [...vlans, undefined].forEach((vlan, j) => {
      blocks.push({ kind: 'epb', interfaceId: 0, ts: ts + BigInt(j), data: ethernetFrame({ payload: ip, vlans: vlan === undefined ? [] : [vlan] }) });
    });
  });
  return writePcapng([{ blocks }]);
}
