/**
 * Memory per tracked flow, measured in a fresh process per case (`node --expose-gc
 * dist/bench/memory.js udp 1000000`): JS heap plus typed arrays after filling the table from
 * packets made one at a time, so only what the engine keeps is counted.
 */
import type { IpPacket } from '../processors/packet';
import type { FlowEvent } from '../processors/flow';
import { ConntrackEngine } from '../processors/conntrack/engine';
import { makeSysctl } from '../processors/conntrack/sysctl';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const kind = process.argv[2] === 'tcp' ? 'tcp' : 'udp';
const flows = Number(process.argv[3] ?? 100000);

function packet(i: number): IpPacket {
  const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const sport = 1024 + (i % 60000);
  return kind === 'udp'
    ? { family: 4, src, dst: '192.0.2.1', proto: 17, length: 60, ttl: 64, l4: { kind: 'udp', sport, dport: 53, length: 40 } }
    : { family: 4, src, dst: '192.0.2.1', proto: 6, length: 60, ttl: 64, l4: { kind: 'tcp', sport, dport: 443, seq: i, ack: 0, flags: 0x02, window: 64240, headerLength: 20, dataLength: 0, options: { mss: 1460, wscale: 7, sackPermitted: true } } };
}

const inUse = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
gc();
gc();
const before = inUse();
const engine = new ConntrackEngine({ sysctl: makeSysctl({ nf_conntrack_max: 2 * flows, nf_conntrack_events: 0 }) });
const events: FlowEvent[] = [];
let t = 1_700_000_000_000_000;
for (let i = 0; i < flows; i++) engine.process(packet(i), (t += 1), i, events);
gc();
gc();
console.log(JSON.stringify({ kind, flows: engine.count, bytesPerFlow: (inUse() - before) / engine.count }));
