import { decodePacketEvent } from '../../../ingest/kafka/packetEvents';
import { flowKey } from '../../../ingest/kafka/partitionKey';

describe('packet events (JSON)', () => {
  test('a TCP SYN with options becomes the packet the decoder would have made', () => {
    const e = decodePacketEvent(
      JSON.stringify({ ts: 1700000000.5, src: '10.0.0.1', dst: '10.0.0.2', proto: 'tcp', length: 60, sport: 40000, dport: 80, tcp: { flags: 'S', seq: 1000, window: 64240, options: { mss: 1460, wscale: 7, sackPermitted: true } } }),
      0,
    );
    expect(e.tsUs).toBe(1_700_000_000_500_000);
    expect(e.ip).toMatchObject({ family: 4, src: '10.0.0.1', dst: '10.0.0.2', src4: 0x0a000001, proto: 6, length: 60 });
    expect(e.ip.l4).toMatchObject({ kind: 'tcp', sport: 40000, dport: 80, flags: 0x02, seq: 1000, ack: 0, options: { mss: 1460, wscale: 7 } });
  });

  test('IPv6 addresses are rewritten to their canonical form, so both sources key a flow alike', () => {
    const e = decodePacketEvent(JSON.stringify({ tsUs: 5, src: '2001:DB8:0:0:0:0:0:1', dst: '2001:db8::2', proto: 17, length: 48, sport: 1, dport: 2 }), 0);
    expect(e.ip.src).toBe('2001:db8::1');
    expect(e.ip.l4).toMatchObject({ kind: 'udp', length: 8 });
  });

  test('an ICMP error is keyed by the flow it quotes', () => {
    const flow = decodePacketEvent(JSON.stringify({ tsUs: 1, src: '10.0.0.1', dst: '10.0.0.2', proto: 'udp', length: 40, sport: 5000, dport: 53 }), 0);
    const reply = decodePacketEvent(JSON.stringify({ tsUs: 2, src: '10.0.0.2', dst: '10.0.0.1', proto: 'udp', length: 40, sport: 53, dport: 5000 }), 0);
    const err = decodePacketEvent(
      JSON.stringify({ tsUs: 3, src: '192.0.2.9', dst: '10.0.0.1', proto: 1, length: 56, icmp: { type: 3, code: 3, inner: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, length: 40, sport: 5000, dport: 53 } } }),
      0,
    );
    expect(flowKey(reply.ip)).toBe(flowKey(flow.ip));
    expect(flowKey(err.ip)).toBe(flowKey(flow.ip));
    expect(flowKey(flow.ip, 1)).not.toBe(flowKey(flow.ip, 0));
  });

  test('bad events name the field at fault', () => {
    expect(() => decodePacketEvent('{', 0)).toThrow(/not JSON/);
    expect(() => decodePacketEvent(JSON.stringify({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, length: 40, sport: 1, dport: 2 }), 0)).toThrow(/needs its tcp object/);
    expect(() => decodePacketEvent(JSON.stringify({ src: '10.0.0.300', dst: '10.0.0.2', proto: 17, length: 40, sport: 1, dport: 2 }), 0)).toThrow(/src: '10.0.0.300' is not an IPv4 or IPv6 address/);
    expect(() => decodePacketEvent(JSON.stringify({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, length: 40, sport: 1, dport: 2, colour: 'red' }), 0)).toThrow(/colour/);
    expect(() => decodePacketEvent(JSON.stringify({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, length: 70000 }), 0)).toThrow(/length/);
  });
});
