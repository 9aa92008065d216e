/**
 * `npm run bench`: engine throughput (packets/s on one core) on decoded packets with 100k and
 * 1M tracked flows, end-to-end throughput from raw capture bytes (decode + engine), and the
 * memory each tracked flow costs (JS heap plus the typed arrays of the table). Medians of several runs; the machine is shared, so compare ratios.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPackets } from '../ingest/packetSource';
import type { IpPacket } from '../processors/packet';
import type { FlowEvent } from '../processors/flow';
import { ConntrackEngine } from '../processors/conntrack/engine';
import { ConntrackPipeline } from '../processors/pipeline';
import { makeSysctl } from '../processors/conntrack/sysctl';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function addr(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** Flow i's query (client i -> server) or its answer, as a decoder would hand them over (fresh strings). */
function udpPacket(i: number, reply: boolean): IpPacket {
  const c = addr(i), s = '192.0.2.1', sport = 1024 + (i % 60000);
  const c4 = (10 << 24) | (i & 0xffffff), s4 = 0xc0000201;
  return reply
    ? { family: 4, src: s, dst: c, src4: s4, dst4: c4, proto: 17, length: 60, ttl: 64, l4: { kind: 'udp', sport: 53, dport: sport, length: 40 } }
    : { family: 4, src: c, dst: s, src4: c4, dst4: s4, proto: 17, length: 60, ttl: 64, l4: { kind: 'udp', sport, dport: 53, length: 40 } };
}

/** Established TCP flows (handshake done), then data segments and their ACKs: the window-tracking path. */
function tcpThroughput(flows: number): number {
  const rates: number[] = [];
  const events: FlowEvent[] = [];
  const seg = (i: number, reply: boolean, flags: number, seq: number, ack: number, len: number): IpPacket => {
    const c = addr(i), s = '192.0.2.1', sport = 1024 + (i % 60000);
    const c4 = (10 << 24) | (i & 0xffffff), s4 = 0xc0000201;
    const l4 = { kind: 'tcp' as const, seq, ack, flags, window: 65535, headerLength: 20, dataLength: len, options: {} };
    return reply
      ? { family: 4, src: s, dst: c, src4: s4, dst4: c4, proto: 6, length: 40 + len, ttl: 64, l4: { ...l4, sport: 443, dport: sport } }
      : { family: 4, src: c, dst: s, src4: c4, dst4: s4, proto: 6, length: 40 + len, ttl: 64, l4: { ...l4, sport, dport: 443 } };
  };
  for (let r = 0; r < RUNS; r++) {
    gc();
    const engine = new ConntrackEngine({ sysctl: makeSysctl({ nf_conntrack_max: 2 * flows, nf_conntrack_events: 0 }) });
    let t = 1_700_000_000_000_000;
    for (let i = 0; i < flows; i++) {
      engine.process(seg(i, false, 0x02, 1000, 0, 0), (t += 1), 0, events);
      engine.process(seg(i, true, 0x12, 5000, 1001, 0), (t += 1), 0, events);
      engine.process(seg(i, false, 0x10, 1001, 5001, 0), (t += 1), 0, events);
    }
    const packets: IpPacket[] = [];
    for (let i = 0; i < flows; i++) packets.push(seg(i, false, 0x18, 1001, 5001, 100), seg(i, true, 0x10, 5001, 1101, 0));
    const start = process.hrtime.bigint();
    for (let i = 0; i < packets.length; i++) engine.process(packets[i], (t += 1), i, events);
    rates.push(packets.length / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return median(rates);
}

/** Memory per flow, each case in a fresh process so nothing of an earlier case is counted. */
function bytesPerFlow(kind: 'udp' | 'tcp', flows: number): number {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', join(__dirname, 'memory.js'), kind, String(flows)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`memory bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout).bytesPerFlow;
}

function engineThroughput(flows: number): number {
  const rates: number[] = [];
  const events: FlowEvent[] = [];
  for (let r = 0; r < RUNS; r++) {
    gc();
    const engine = new ConntrackEngine({ sysctl: makeSysctl({ nf_conntrack_max: 2 * flows, nf_conntrack_events: 0 }) });
    let t = 1_700_000_000_000_000;
    for (let i = 0; i < flows; i++) engine.process(udpPacket(i, false), (t += 1), 2 * i, events);
    // Steady state: queries and answers of tracked flows, every lookup a hit.
    const packets: IpPacket[] = [];
    for (let i = 0; i < flows; i++) packets.push(udpPacket(i, false), udpPacket(i, true));
    const start = process.hrtime.bigint();
    for (let i = 0; i < packets.length; i++) engine.process(packets[i], (t += 1), i, events);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(packets.length / secs);
    events.length = 0;
  }
  return median(rates);
}

function captureThroughput(): { pps: number; mbps: number; packets: number } {
  const buf = readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'sample.pcap'));
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const rates: number[] = [];
  const mb: number[] = [];
  let packets = 0;
  for (let r = 0; r < RUNS; r++) {
    const start = process.hrtime.bigint();
    packets = 0;
    for (let k = 0; k < 10; k++) {
      const pipeline = new ConntrackPipeline({ verdict: () => undefined, event: () => undefined });
      for (const p of readPackets(bytes)) {
        pipeline.push(p);
        packets++;
      }
      pipeline.end();
    }
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(packets / secs);
    mb.push((10 * bytes.length) / 1e6 / secs);
  }
  return { pps: median(rates), mbps: median(mb), packets };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(`ctflow bench (node ${process.version}, median of ${RUNS} runs)`);
for (const flows of [100_000, 1_000_000]) {
  console.log(`engine, decoded UDP packets, ${fmt(flows)} tracked flows: ${fmt(engineThroughput(flows))} packets/s per core`);
  console.log(`engine, decoded TCP data + ACK (window tracking), ${fmt(flows)} tracked flows: ${fmt(tcpThroughput(flows))} packets/s per core`);
}
for (const flows of [100_000, 1_000_000]) {
  for (const kind of ['udp', 'tcp'] as const) {
    console.log(`memory, ${fmt(flows)} ${kind.toUpperCase()} flows: ${fmt(bytesPerFlow(kind, flows))} bytes per tracked flow (JS heap + typed arrays)`);
  }
}
const c = captureThroughput();
console.log(`raw capture bytes (sample.pcap x10: decode + defrag + engine + events): ${fmt(c.pps)} packets/s, ${c.mbps.toFixed(1)} MB/s`);
