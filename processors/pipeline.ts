/**
 * ConntrackPipeline: captured packets in, verdicts (one per packet, in capture order) and events
 * out. It puts fragment reassembly in front of the engine, holds back verdicts until the
 * datagram a fragment belongs to is complete, and picks each packet's zone. Whole packets with
 * nothing held before them (almost all) take a direct path: no verdict slot, no copy.
 */
import type { CapturedPacket, IpPacket } from './packet';
import type { FlowEvent, Verdict } from './flow';
import { makeVerdict } from './flow';
import { ConntrackEngine } from './conntrack/engine';
import { Defragmenter } from './conntrack/defrag';
import type { Pending } from './conntrack/defrag';
import type { Sysctl } from './conntrack/sysctl';
import type { ConntrackRules } from './conntrack/rules';
import { makeSysctl } from './conntrack/sysctl';
import type { ExpectEvent } from './conntrack/helpers/expectations';

/** The default zone choice: one function for every pipeline, so the JIT sees one call target. */
const zoneZero = (): number => 0;

/** The verdict slot of a packet another pipeline judges (see tick()): skipped, never emitted. */
const FOREIGN = { index: -1, frame: -1, tsUs: 0, ctstate: 'UNTRACKED', dir: null } as PacketVerdict;

/** Packets read ahead by pushAll() (and cli/runCapture.ts) and prefetched together: enough for their cache misses to overlap. */
export const PREFETCH_GROUP = 16;

export interface PacketVerdict extends Verdict {
  frame: number;
  tsUs: number;
}

/**
 * The pipeline's own verdict for a packet: a copy of the engine's (which the engine reuses for the
 * next packet), with the packet's frame and time. Every field present and in one order, so all
 * the verdicts a sink receives share one object shape.
 */
function packetVerdict(v: Verdict, index: number, frame: number, tsUs: number): PacketVerdict {
  return { index, ctstate: v.ctstate, dir: v.dir, state: v.state, reason: v.reason, note: v.note, detail: v.detail, flowId: v.flowId, frame, tsUs };
}

export interface PipelineOptions {
  sysctl?: Sysctl;
  shards?: number;
  /** The packet's conntrack zone; 0 unless configured, as in the kernel (a VLAN tag alone is no zone). Never reads `index` (pushNumbered passes a packet without it). */
  zoneOf?: (p: CapturedPacket) => number;
  /** NOTRACK, NAT and helper assignment rules (see ConntrackEngine). */
  rules?: ConntrackRules;
}

/** What a pipeline holds between two packets besides its engine (for the state changelog). */
export interface PipelineState {
  /** The index of the next verdict to emit (-1 before the first packet). */
  nextOut: number;
  /** Verdict slots: null while the packet is a held fragment, else its verdict waiting for those before it. */
  slots: Array<[number, PacketVerdict | null]>;
  /** The held fragments, by index. */
  held: Array<[number, CapturedPacket]>;
  /** The datagrams being reassembled (their head fragment is one of `held`). */
  pending: Array<[string, Pending]>;
}

export interface PipelineSink {
  verdict(v: PacketVerdict): void;
  event(e: FlowEvent): void;
  /** Expectations created and destroyed (conntrack -E expect); only with helpers assigned. */
  expectEvent?(e: ExpectEvent): void;
}

export class ConntrackPipeline {
  readonly engine: ConntrackEngine;
  private readonly defrag: Defragmenter;
  private readonly zoneOf: (p: CapturedPacket) => number;
  /** Verdict slots in capture order; a held fragment leaves its slot empty until resolved. */
  private readonly slots = new Map<number, PacketVerdict | null>();
  private readonly held = new Map<number, CapturedPacket>();
  private nextOut = -1;
  private readonly events: FlowEvent[] = [];
  /** pushAll()'s group of packets read ahead, and their IP packets for the engine's prefetch. */
  private readonly group: CapturedPacket[] = [];
  private readonly groupIps: IpPacket[] = [];

  constructor(private readonly sink: PipelineSink, opts: PipelineOptions = {}) {
    const sysctl = opts.sysctl ?? makeSysctl();
    this.engine = new ConntrackEngine({
      sysctl,
      shards: opts.shards ?? 1,
      rules: opts.rules,
      onExpectEvent: sink.expectEvent ? (e) => sink.expectEvent!(e) : undefined,
    });
    this.defrag = new Defragmenter({ v4: sysctl.ipfrag_time * 1e6, v6: sysctl.nf_conntrack_frag6_timeout * 1e6 });
    this.zoneOf = opts.zoneOf ?? zoneZero;
  }

  push(p: CapturedPacket): void {
    if (!this.direct(p, p.index)) this.queued(p);
  }

  /**
   * push() of a packet given its index apart: the common whole packet is judged as it is, and only
   * a packet the pipeline has to keep (a fragment, or one whose verdict waits for an earlier
   * packet's) is copied into a CapturedPacket. Saves the per-packet copy a caller numbering
   * packets itself would otherwise make (the Kafka partition processor).
   */
  pushNumbered(p: Omit<CapturedPacket, 'index'>, index: number): void {
    if (!this.direct(p, index)) this.queued({ ...p, index });
  }

  /** The start of push(): the clock, expired fragments, and the direct path; false when the packet must go through the slots. */
  private direct(p: Omit<CapturedPacket, 'index'>, index: number): boolean {
    if (this.nextOut < 0) this.nextOut = index;
    if (this.defrag.holding) for (const gone of this.defrag.expire(p.tsUs)) this.giveUp(gone.members, 'ip_fragment_timeout');
    if (p.ip.fragment || index !== this.nextOut || this.slots.size !== 0) return false;
    // The common case: a whole datagram with no verdict waiting before it goes straight out.
    const v = this.engine.process(p.ip, p.tsUs, index, this.events, this.zoneOf(p as CapturedPacket));
    const out = packetVerdict(v, index, p.frame, p.tsUs);
    this.emitEvents();
    this.nextOut++;
    this.sink.verdict(out);
    return true;
  }

  /** The rest of push(): fragments to reassembly, verdicts into their slots in capture order. */
  private queued(p: CapturedPacket): void {
    // A fragment moves the engine's clock too, as any packet does (so expiries fall at the same
    // place in the event stream whichever packets a pipeline judges itself: see tick()).
    this.engine.advance(p.tsUs, this.events);
    this.emitEvents();
    this.slots.set(p.index, null);
    const r = this.defrag.push(p.ip, p.index, p.tsUs);
    if (r.kind === 'held') {
      this.held.set(p.index, p);
      this.flush();
      return;
    }
    const v = this.engine.process(r.packet, p.tsUs, p.index, this.events, this.zoneOf(p));
    this.emitEvents();
    for (const member of r.members) {
      const src = member === p.index ? p : this.held.get(member);
      this.held.delete(member);
      if (!src) continue;
      this.slots.set(member, packetVerdict(v, member, src.frame, src.tsUs));
    }
    this.flush();
  }

  /**
   * Packet `index` at `tsUs` was judged elsewhere (another worker's pipeline owns its flow): time
   * moves on here as if it had been pushed (fragments time out, entries expire, their DESTROY
   * events come out now) and its verdict slot is skipped. With every packet of a capture either
   * pushed or ticked, each worker's pipeline sees the same clock as a single pipeline would.
   */
  tick(index: number, tsUs: number): void {
    if (this.nextOut < 0) this.nextOut = index;
    if (this.defrag.holding) for (const gone of this.defrag.expire(tsUs)) this.giveUp(gone.members, 'ip_fragment_timeout');
    this.engine.advance(tsUs, this.events);
    this.emitEvents();
    if (index === this.nextOut && this.slots.size === 0) {
      this.nextOut++;
      return;
    }
    this.slots.set(index, FOREIGN);
    this.flush();
  }

  /**
   * push() on each packet in order (the same verdicts and events), reading the iterable a group of
   * PREFETCH_GROUP packets ahead so the engine can prefetch each group's table lookups first (see
   * ConntrackEngine.prefetch; the hint assumes zone 0). Does not end the input.
   */
  pushAll(packets: Iterable<CapturedPacket>): void {
    const group = this.group;
    const ips = this.groupIps;
    let n = 0;
    for (const p of packets) {
      group[n] = p;
      ips[n++] = p.ip;
      if (n === PREFETCH_GROUP) {
        this.pushGroup(n);
        n = 0;
      }
    }
    this.pushGroup(n);
  }

  private pushGroup(n: number): void {
    this.engine.prefetch(this.groupIps, 0, n);
    for (let k = 0; k < n; k++) this.push(this.group[k]);
  }

  /** Everything it holds between packets besides the engine: see PipelineState. */
  saved(): PipelineState {
    return { nextOut: this.nextOut, slots: [...this.slots], held: [...this.held], pending: this.defrag.saved() };
  }

  /** Puts back a saved() state into a pipeline that has seen no packet. */
  restore(s: PipelineState): void {
    this.nextOut = s.nextOut;
    for (const [index, v] of s.slots) this.slots.set(index, v);
    for (const [index, p] of s.held) this.held.set(index, p);
    this.defrag.restore(s.pending);
  }

  /** End of input: fragments that never completed are reported, never silently dropped. */
  end(): void {
    for (const gone of this.defrag.drain()) this.giveUp(gone.members, 'ip_fragment_incomplete');
    this.flush();
  }

  private giveUp(members: number[], reason: string): void {
    for (const m of members) {
      const src = this.held.get(m);
      this.held.delete(m);
      if (src) this.slots.set(m, packetVerdict(makeVerdict(m, 'INVALID', null, undefined, reason), m, src.frame, src.tsUs));
    }
  }

  private emitEvents(): void {
    if (this.events.length === 0) return; // (truncating an array costs a runtime call: only when needed)
    for (const e of this.events) this.sink.event(e);
    this.events.length = 0;
  }

  private flush(): void {
    for (;;) {
      const v = this.slots.get(this.nextOut);
      if (!v) return;
      this.slots.delete(this.nextOut);
      if (v !== FOREIGN) this.sink.verdict(v);
      this.nextOut++;
    }
  }
}
