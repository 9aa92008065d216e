/**
 * Fragment reassembly in front of the engine, as nf_defrag_ipv4/ipv6 do: conntrack sees a
 * datagram once, whole, when its last missing fragment arrives, and every fragment of it shares
 * that verdict. Incomplete datagrams are given up after net.ipv4.ipfrag_time (IPv4) or
 * nf_conntrack_frag6_timeout (IPv6) of packet time.
 */
import type { IpPacket } from '../packet';

export interface Pending {
  firstUs: number;
  family: 4 | 6;
  /** Fragment data ranges [start, end) received, and the total length once the last is seen. */
  ranges: Array<[number, number]>;
  total: number;
  head?: IpPacket;
  members: number[];
}

export type DefragResult =
  | { kind: 'whole'; packet: IpPacket; members: number[] }
  | { kind: 'held' };

export interface Expired {
  members: number[];
}

function dataOffset(ip: IpPacket): number {
  return ip.fragment?.dataOffset ?? ip.l4Offset ?? (ip.family === 4 ? 20 : 48);
}

export class Defragmenter {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly timeoutUs: { v4: number; v6: number },
  ) {}

  /** Feeds one packet (by its caller-side index); returns the whole datagram when it completes. */
  push(ip: IpPacket, index: number, nowUs: number): DefragResult {
    const frag = ip.fragment;
    if (!frag) return { kind: 'whole', packet: ip, members: [index] };
    const key = `${ip.family}|${ip.src}|${ip.dst}|${ip.proto}|${frag.id}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { firstUs: nowUs, family: ip.family, ranges: [], total: -1, members: [] };
      this.pending.set(key, p);
    }
    p.members.push(index);
    const len = Math.max(0, ip.length - dataOffset(ip));
    p.ranges.push([frag.offset, frag.offset + len]);
    if (frag.offset === 0) p.head = ip;
    if (!frag.moreFragments) p.total = frag.offset + len;
    if (!p.head || p.total < 0 || !covers(p.ranges, p.total)) return { kind: 'held' };
    this.pending.delete(key);
    return { kind: 'whole', packet: reassemble(p.head, p.total), members: p.members };
  }

  /** Whether any datagram is incomplete (otherwise there is nothing to expire). */
  get holding(): boolean {
    return this.pending.size > 0;
  }

  /** Gives up datagrams older than the reassembly timeout; returns their fragments' indexes. */
  expire(nowUs: number): Expired[] {
    const out: Expired[] = [];
    for (const [key, p] of this.pending) {
      const limit = p.family === 4 ? this.timeoutUs.v4 : this.timeoutUs.v6;
      if (nowUs - p.firstUs > limit) {
        this.pending.delete(key);
        out.push({ members: p.members });
      }
    }
    return out;
  }

  /** The datagrams being reassembled, oldest first, by key (for the state changelog). */
  saved(): Array<[string, Pending]> {
    return [...this.pending];
  }

  /** Puts back what saved() gave, in its order (expire() walks them in it). */
  restore(pending: Iterable<[string, Pending]>): void {
    for (const [key, p] of pending) this.pending.set(key, p);
  }

  /** Everything still incomplete (at the end of a capture). */
  drain(): Expired[] {
    const out = [...this.pending.values()].map((p) => ({ members: p.members }));
    this.pending.clear();
    return out;
  }
}

function covers(ranges: Array<[number, number]>, total: number): boolean {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  let reach = 0;
  for (const [s, e] of sorted) {
    if (s > reach) return false;
    if (e > reach) reach = e;
  }
  return reach >= total;
}

/** The whole datagram: the head's headers with the lengths of the full payload. */
function reassemble(head: IpPacket, total: number): IpPacket {
  const headerLen = dataOffset(head) - (head.family === 6 ? 8 : 0); // the IPv6 fragment header goes away
  const whole: IpPacket = { ...head, length: headerLen + total };
  delete whole.fragment;
  const l4 = head.l4;
  if (l4 && l4.kind === 'tcp') {
    const l4Start = (head.l4Offset ?? dataOffset(head)) - dataOffset(head);
    whole.l4 = { ...l4, dataLength: Math.max(0, total - l4Start - l4.headerLength) };
  }
  return whole;
}
