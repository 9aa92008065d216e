/**
 * A SYN flood of random tuples at far more than nf_conntrack_max, with established connections
 * in the same stream: `syns` SYNs from random addresses and ports at 1 000 000 a second of packet
 * time against a table of `max` entries, after `legit` TCP connections were set up; each of them
 * exchanges a data segment and its ACK every 100 000 SYNs. Reports the rate, the peak resident
 * set size (sampled every 100 000 packets), early drops and drops, and how the established
 * connections fared. Used by `npm run bench:flood` and, scaled down, by the engine's tests.
 */
import type { IpPacket, TcpHeader } from '../processors/packet';
import type { FlowEvent } from '../processors/flow';
import { ConntrackEngine } from '../processors/conntrack/engine';
import { makeSysctl } from '../processors/conntrack/sysctl';

const ROUND = 100_000;
const SYN = 0x02, ACK = 0x10, PSH_ACK = 0x18, SYN_ACK = 0x12;
const SERVER = '192.0.2.80';

export interface FloodResult {
  syns: number;
  nf_conntrack_max: number;
  packets: number;
  seconds: number;
  packetsPerSecond: number;
  peakRssMiB: number;
  entries: number;
  early_drop: number;
  drop: number;
  legitConnections: number;
  /** Established connections still in the table, ESTABLISHED, at the end. */
  legitStillEstablished: number;
  legitPackets: number;
  /** Packets of established connections judged anything but ESTABLISHED (should be none). */
  legitPacketsNotEstablished: number;
}

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack: number, dataLength = 0): IpPacket {
  const l4: TcpHeader = { kind: 'tcp', sport, dport, seq, ack, flags, window: 64240, headerLength: 20, dataLength, options: flags & SYN ? { mss: 1460 } : {} };
  return { family: 4, src, dst, proto: 6, length: 40 + dataLength, ttl: 64, l4 };
}

const client = (i: number): string => `10.1.${(i >> 8) & 255}.${i & 255}`;

export function synFlood(syns: number, max: number, legit: number): FloodResult {
  const engine = new ConntrackEngine({ sysctl: makeSysctl({ nf_conntrack_max: max }) });
  const events: FlowEvent[] = [];
  let t = 1_700_000_000_000_000;
  let index = 0;
  let peakRss = 0;
  let legitNotEstablished = 0;
  let legitPackets = 0;
  const seqs = new Uint32Array(legit);
  let state = 0x9e3779b9; // xorshift32: the same flood every run
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const judge = (ip: IpPacket): string => {
    const v = engine.process(ip, t, index++, events);
    events.length = 0;
    if (index % ROUND === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    return v.ctstate;
  };
  const legitRound = (): void => {
    for (let i = 0; i < legit; i++) {
      const seq = seqs[i];
      if (judge(tcp(client(i), SERVER, 40000, 443, PSH_ACK, seq, 5001, 100)) !== 'ESTABLISHED') legitNotEstablished++;
      if (judge(tcp(SERVER, client(i), 443, 40000, ACK, 5001, seq + 100)) !== 'ESTABLISHED') legitNotEstablished++;
      seqs[i] = seq + 100;
      legitPackets += 2;
    }
  };

  const started = process.hrtime.bigint();
  for (let i = 0; i < legit; i++) {
    judge(tcp(client(i), SERVER, 40000, 443, SYN, 1000, 0));
    judge(tcp(SERVER, client(i), 443, 40000, SYN_ACK, 5000, 1001));
    judge(tcp(client(i), SERVER, 40000, 443, ACK, 1001, 5001));
    seqs[i] = 1001;
  }
  legitRound(); // data both ways: ASSURED
  for (let n = 0; n < syns; n++) {
    t += 1; // a million SYNs a second of packet time
    const r = random();
    const src = `${11 + (r >>> 28)}.${(r >>> 20) & 255}.${(r >>> 12) & 255}.${(r >>> 4) & 255}`;
    judge(tcp(src, SERVER, 1024 + (random() % 64000), 443, SYN, random(), 0));
    if ((n + 1) % ROUND === 0) legitRound();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  let legitStillEstablished = 0;
  for (const f of engine.list()) if (f.orig.dst === SERVER && f.orig.src.startsWith('10.1.') && f.state === 'ESTABLISHED') legitStillEstablished++;
  const stats = engine.stats();
  return {
    syns,
    nf_conntrack_max: max,
    packets: index,
    seconds: Number(seconds.toFixed(1)),
    packetsPerSecond: Math.round(index / seconds),
    peakRssMiB: Math.round(peakRss / 2 ** 20),
    entries: engine.count,
    early_drop: stats.early_drop,
    drop: stats.drop,
    legitConnections: legit,
    legitStillEstablished,
    legitPackets,
    legitPacketsNotEstablished: legitNotEstablished,
  };
}
