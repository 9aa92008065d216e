/**
 * Traffic for the Kafka benchmark: many short flows running side by side, as a gateway sees them,
 * written as real Ethernet + IPv4 bytes. makeSampleCapture() plays its sessions one after another
 * between 40 clients and 7 servers; a throughput and latency benchmark wants the opposite: a few
 * hundred sessions open at any moment, spread over hundreds of thousands of address pairs so the
 * flow-keyed partitioning spreads them evenly, with closes, expiries and DESTROY events in the mix.
 *
 * Mix per 10 sessions: 6 TCP web sessions (handshake with MSS/window-scale/SACK options, a
 * request, a 200-6,000 byte answer in 1,448-byte segments with ACKs, orderly FIN close), 3 DNS
 * query/answer pairs over UDP, and 1 that alternates between a refused connection (SYN, RST) and
 * a ping with its reply. Mean frame size is about 300 bytes (an IMIX-like mix of small control
 * packets and full segments). Sequence numbers and ACKs are consistent, so TCP window tracking
 * accepts every segment: the engine does its full work instead of short-cutting INVALIDs.
 *
 * IPv4 header checksums are filled in (cheap, 20 bytes); TCP/UDP checksums stay zero as in
 * bench/traffic.ts: nf_conntrack_checksum is off by default and the decoder does not verify them,
 * and summing every payload would make the live producer's per-packet cost needlessly high.
 */
import { flowKeyHash } from '../ingest/kafka/partitionKey';
import { decodeFrame } from '../ingest/decode/index';
import { openCapture } from '../ingest/capture/reader';
import { encodeFrameBatch, encodeSingleFrame } from '../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../ingest/kafka/capturedTraffic';
import type { OutputMessage, OutputProducer } from '../kafka/client';
import { writePcap } from '../ingest/capture/pcapWriter';
import type { PcapRecord } from '../ingest/capture/pcapWriter';
import { prng } from '../scripts/sampleTraffic'; // seeded, so every run of the bench sees the same bytes

export const LINKTYPE_ETHERNET = 1;
const SYN = 0x02;
const FIN = 0x01;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const MSS = 1448;

/** Ethernet + IPv4 + L4 header + `payload` zero bytes, with the IPv4 header checksum. */
function frame(src: number, dst: number, proto: number, l4Header: Uint8Array, payload: number, id: number): Uint8Array {
  const ipLen = 20 + l4Header.length + payload;
  const d = new Uint8Array(14 + ipLen);
  d[0] = 0x02; d[5] = 0x02; // dst MAC 02:00:00:00:00:02
  d[6] = 0x02; d[11] = 0x01; // src MAC 02:00:00:00:00:01
  d[12] = 0x08; // EtherType IPv4
  const o = 14;
  d[o] = 0x45;
  d[o + 2] = ipLen >>> 8; d[o + 3] = ipLen & 255;
  d[o + 4] = (id >>> 8) & 255; d[o + 5] = id & 255;
  d[o + 6] = 0x40; // DF, as TCP stacks send
  d[o + 8] = 64;
  d[o + 9] = proto;
  d[o + 12] = src >>> 24; d[o + 13] = (src >>> 16) & 255; d[o + 14] = (src >>> 8) & 255; d[o + 15] = src & 255;
  d[o + 16] = dst >>> 24; d[o + 17] = (dst >>> 16) & 255; d[o + 18] = (dst >>> 8) & 255; d[o + 19] = dst & 255;
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (d[o + i] << 8) | d[o + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const ck = ~sum & 0xffff;
  d[o + 10] = ck >>> 8; d[o + 11] = ck & 255;
  d.set(l4Header, o + 20);
  return d;
}

function tcpHeader(sport: number, dport: number, seq: number, ack: number, flags: number, window: number): Uint8Array {
  // A SYN carries MSS 1448, SACK permitted and window scale 7 (12 option bytes), as Linux sends them.
  const syn = (flags & SYN) !== 0;
  const h = new Uint8Array(syn ? 32 : 20);
  h[0] = sport >>> 8; h[1] = sport & 255;
  h[2] = dport >>> 8; h[3] = dport & 255;
  h[4] = seq >>> 24; h[5] = (seq >>> 16) & 255; h[6] = (seq >>> 8) & 255; h[7] = seq & 255;
  h[8] = ack >>> 24; h[9] = (ack >>> 16) & 255; h[10] = (ack >>> 8) & 255; h[11] = ack & 255;
  h[12] = (h.length / 4) << 4;
  h[13] = flags;
  h[14] = window >>> 8; h[15] = window & 255;
  if (syn) h.set([2, 4, MSS >>> 8, MSS & 255, 4, 2, 1, 3, 3, 7, 1, 1], 20);
  return h;
}

function udpHeader(sport: number, dport: number, payload: number): Uint8Array {
  const len = 8 + payload;
  return Uint8Array.of(sport >>> 8, sport & 255, dport >>> 8, dport & 255, len >>> 8, len & 255, 0, 0);
}

function icmpEcho(type: number, id: number, seq: number): Uint8Array {
  return Uint8Array.of(type, 0, 0, 0, id >>> 8, id & 255, seq >>> 8, seq & 255);
}

/**
 * The first `count` frames of a mix, made in advance and kept back to back in one buffer (outside
 * the JS heap, so the collector has nothing to walk). The latency bench's producer stands for
 * agents on other hosts: making their packets while the clock runs would take one of the 2 cores'
 * time from the pipeline under test.
 */
export class FramePool {
  private bytes: Uint8Array;
  private readonly starts: Float64Array;
  readonly keys: Uint32Array;

  constructor(mix: FlowMix, readonly count: number) {
    this.bytes = new Uint8Array(Math.max(1 << 16, count * 400));
    this.starts = new Float64Array(count + 1);
    this.keys = new Uint32Array(count);
    let used = 0;
    for (let k = 0; k < count; k++) {
      const f = mix.next();
      if (used + f.data.length > this.bytes.length) {
        const grown = new Uint8Array(this.bytes.length * 2);
        grown.set(this.bytes.subarray(0, used));
        this.bytes = grown;
      }
      this.bytes.set(f.data, used);
      used += f.data.length;
      this.starts[k + 1] = used;
      this.keys[k] = f.key;
    }
  }

  /** Bytes of frames [0, k). */
  bytesUpTo(k: number): number {
    return this.starts[k];
  }

  /** Frame k's bytes (a view). */
  data(k: number): Uint8Array {
    return this.bytes.subarray(this.starts[k], this.starts[k + 1]);
  }
}

/** One frame of the mix and its flow's partition key hash (what `ctflow produce` computes per frame). */
export interface MixFrame {
  data: Uint8Array;
  key: number;
}

interface Session {
  frames: Uint8Array[];
  next: number;
  key: number;
}

export class FlowMix {
  private readonly rnd: () => number;
  private readonly active: Session[] = [];
  private sessions = 0;
  private ipId = 0;
  /** Frames and bytes handed out so far. */
  frames = 0;
  bytes = 0;

  /** `concurrency`: sessions open at once; their packets interleave at random, each session's in order. */
  constructor(seed = 20260101, private readonly concurrency = 256) {
    this.rnd = prng(seed);
    for (let i = 0; i < concurrency; i++) this.active.push(this.newSession());
  }

  next(): MixFrame {
    const slot = Math.floor(this.rnd() * this.concurrency);
    let s = this.active[slot];
    if (s.next >= s.frames.length) s = this.active[slot] = this.newSession();
    const data = s.frames[s.next++];
    this.frames++;
    this.bytes += data.length;
    return { data, key: s.key };
  }

  private newSession(): Session {
    const n = this.sessions++;
    const rnd = this.rnd;
    // Clients walk 10.0.0.0/12 (a million hosts), servers are 2,048 hosts of 198.18.0.0/15 and
    // DNS goes to 4 resolvers: every session has its own address pair until a million have passed.
    const client = ((10 << 24) | (n % 1_000_000)) >>> 0;
    const server = ((198 << 24) | (18 << 16) | Math.floor(rnd() * 2048)) >>> 0;
    const resolver = ((192 << 24) | (0 << 16) | (2 << 8) | (53 + (n & 3))) >>> 0;
    const sport = 1024 + ((n * 7919) % 64000);
    const out: Uint8Array[] = [];
    const id = () => (this.ipId = (this.ipId + 1) & 0xffff);
    const kind = n % 10;
    if (kind < 6) {
      const dport = n % 3 === 0 ? 80 : 443;
      let cs = Math.floor(rnd() * 2 ** 32) >>> 0;
      let ss = Math.floor(rnd() * 2 ** 32) >>> 0;
      const c = (flags: number, payload = 0) => {
        out.push(frame(client, server, 6, tcpHeader(sport, dport, cs, flags & ACK ? ss : 0, flags, 502), payload, id()));
        cs = (cs + payload + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
      };
      const s = (flags: number, payload = 0) => {
        out.push(frame(server, client, 6, tcpHeader(dport, sport, ss, cs, flags, 509), payload, id()));
        ss = (ss + payload + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
      };
      c(SYN);
      s(SYN | ACK);
      c(ACK);
      c(PSH | ACK, 80 + Math.floor(rnd() * 620));
      s(ACK);
      let left = 200 + Math.floor(rnd() * 5800);
      for (let seg = 1; left > 0; seg++) {
        const len = Math.min(MSS, left);
        left -= len;
        s(ACK | (left === 0 ? PSH : 0), len);
        if (seg % 2 === 0 || left === 0) c(ACK); // delayed ACK: every second segment
      }
      c(FIN | ACK);
      s(FIN | ACK);
      c(ACK);
    } else if (kind < 9) {
      const q = 28 + Math.floor(rnd() * 40);
      out.push(frame(client, resolver, 17, udpHeader(sport, 53, q), q, id()));
      const a = 60 + Math.floor(rnd() * 240);
      out.push(frame(resolver, client, 17, udpHeader(53, sport, a), a, id()));
    } else if (n % 20 === 9) {
      out.push(frame(client, server, 6, tcpHeader(sport, 8080, 1000, 0, SYN, 502), 0, id()));
      out.push(frame(server, client, 6, tcpHeader(8080, sport, 0, 1001, RST | ACK, 0), 0, id()));
    } else {
      out.push(frame(client, server, 1, icmpEcho(8, n & 0xffff, 1), 56, id()));
      out.push(frame(server, client, 1, icmpEcho(0, n & 0xffff, 1), 56, id()));
    }
    // The partition key exactly as `ctflow produce` derives it, from the decoded first frame.
    const d = decodeFrame({ frame: 0, tsUs: 0, linkType: LINKTYPE_ETHERNET, interfaceId: 0, data: out[0] });
    if (d.kind !== 'ip') throw new Error(`bench traffic: a generated frame does not decode: ${d.reason}`);
    return { frames: out, next: 0, key: flowKeyHash(d.packet.ip) };
  }
}

export interface BenchCapture {
  pcap: Uint8Array;
  packets: number;
  bytes: number;
  firstUs: number;
  lastUs: number;
}

/**
 * `packets` frames of the mix as a pcap (Ethernet). Packet times are `gapUs` apart on average
 * (exponential gaps), so the capture spans packets x gapUs of packet time: with the default
 * 400 µs (2,500 packets/s, a busy small gateway) half a million packets cover more than three
 * minutes, long enough for UDP (30 s) and TIME_WAIT (120 s) timeouts to fire and flows to be
 * destroyed and accounted, as in a real capture.
 */
export function benchCapture(packets: number, gapUs = 400, seed = 20260101): BenchCapture {
  const mix = new FlowMix(seed);
  const rnd = prng(seed ^ 0x5bd1e995);
  const records: PcapRecord[] = new Array(packets);
  const firstUs = Date.UTC(2026, 0, 1, 12, 0, 0) * 1000;
  let t = firstUs;
  for (let i = 0; i < packets; i++) {
    records[i] = { tsUs: t, data: mix.next().data };
    t += Math.max(1, Math.round(-Math.log(1 - rnd()) * gapUs));
  }
  return { pcap: writePcap(records, LINKTYPE_ETHERNET), packets, bytes: mix.bytes, firstUs, lastUs: records[packets - 1].tsUs };
}

/** One captured-traffic message, before it is given a topic (to produce) or an offset (to decode in process). */
export interface TopicMessage {
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  timestampMs: number;
}

/** Same limits as cli/kafkaCommands.ts: at most 1,024 frames or 900 KiB per batch message. */
const BATCH_FRAMES = 1024;
const MAX_BATCH_BYTES = 900 * 1024;

/**
 * Cuts frames into captured-traffic messages per partition exactly as `ctflow produce` does: each
 * frame to partition hash % partitions (hash: flowKeyHash of the frame's flow), then CTFB batches
 * of up to 1,024 frames (900 KiB), or one frame per message with the link-type/timestamp headers
 * and the hash as key.
 */
export class TopicCutter {
  private out: TopicMessage[][];
  private pending: TopicFrame[][];
  private readonly bytes: number[];

  constructor(private readonly partitions: number, private readonly singleFrames: boolean) {
    this.out = Array.from({ length: partitions }, () => []);
    this.pending = Array.from({ length: partitions }, () => []);
    this.bytes = new Array<number>(partitions).fill(12);
  }

  add(frame: TopicFrame, hash: number): void {
    const p = hash % this.partitions;
    if (this.singleFrames) {
      const m = encodeSingleFrame(frame);
      this.out[p].push({ key: hash.toString(16).padStart(8, '0'), value: m.value, headers: m.headers, timestampMs: Math.floor(frame.tsUs / 1000) });
      return;
    }
    if (this.bytes[p] + 20 + frame.data.length > MAX_BATCH_BYTES) this.flush(p);
    this.pending[p].push(frame);
    this.bytes[p] += 20 + frame.data.length;
    if (this.pending[p].length >= BATCH_FRAMES) this.flush(p);
  }

  /** Everything so far, the partial batches included, per partition; the cutter starts empty again. */
  take(): TopicMessage[][] {
    for (let p = 0; p < this.partitions; p++) this.flush(p);
    const out = this.out;
    this.out = Array.from({ length: this.partitions }, () => []);
    return out;
  }

  private flush(p: number): void {
    const frames = this.pending[p];
    if (frames.length) this.out[p].push({ key: null, value: encodeFrameBatch(frames), headers: {}, timestampMs: Math.floor(frames[0].tsUs / 1000) });
    this.pending[p] = [];
    this.bytes[p] = 12;
  }
}

/** A whole capture cut as `ctflow produce` cuts it. */
export function topicMessages(pcap: Uint8Array, partitions: number, singleFrames: boolean): TopicMessage[][] {
  const cutter = new TopicCutter(partitions, singleFrames);
  for (const f of openCapture(pcap)) {
    const d = decodeFrame(f);
    cutter.add({ tsUs: f.tsUs, linkType: f.linkType, interfaceId: f.interfaceId, data: f.data, origLength: f.origLength }, d.kind === 'ip' ? flowKeyHash(d.packet.ip) : 0);
  }
  return cutter.take();
}

/**
 * Sends messages per partition with at most ~900 KiB of each partition in one request. kafkajs
 * puts all of a partition's messages of one send into one record batch, and the broker refuses a
 * batch over max.message.bytes (1 MiB by default); this is also why the bench does not call
 * `ctflow produce` itself (it queues 64 messages per send: see produceTopic in kafka.bench.ts).
 * Returns the number of requests.
 */
export async function sendInRounds(producer: OutputProducer, topic: string, parts: TopicMessage[][]): Promise<number> {
  const at = parts.map(() => 0);
  let requests = 0;
  for (let left = true; left; ) {
    left = false;
    const send: OutputMessage[] = [];
    parts.forEach((list, partition) => {
      for (let bytes = 0; at[partition] < list.length && (bytes === 0 || bytes + list[at[partition]].value.length <= MAX_BATCH_BYTES); ) {
        const m = list[at[partition]++];
        bytes += m.value.length + 64; // + the record's own overhead, roughly
        send.push({ topic, partition, key: m.key, value: m.value, headers: m.headers, timestampMs: m.timestampMs });
      }
      if (at[partition] < list.length) left = true;
    });
    if (send.length) {
      await producer.send(send);
      requests++;
    }
  }
  return requests;
}
