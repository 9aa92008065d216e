/**
 * NatBinder: what nf_nat does to a new entry before it is confirmed (nf_nat_inet_fn at the nat
 * hooks, nf_nat_setup_info, get_unique_tuple), so the entry's reply tuple is the one the kernel
 * would give it:
 *
 *  - DNAT at prerouting (first matching rule), then SNAT/MASQUERADE at postrouting, matched
 *    against the packet as DNAT left it. A manip that changes the tuple rewrites the reply tuple
 *    to the inverse of the new one and sets IPS_DST_NAT / IPS_SRC_NAT.
 *  - With no matching rule, the kernel still binds the entry to its own addresses (the "null
 *    binding"), and that binding, like any source manip, moves the source port when the natural
 *    reply tuple is already some other entry's: a host talking directly to a DNAT'd server from
 *    the port a DNAT'd connection already uses gets a new source port. So every new entry of a
 *    family with NAT rules (the ip or ip6 nat table exists) goes through both manips.
 *  - Source manips first try the original port when the source is already in the range, then an
 *    existing mapping of the same source address and port (find_appropriate_src: the same inside
 *    socket keeps the same outside port), then the range's address with the original port, and
 *    only if that tuple is taken another port (nf_nat_l4proto_unique_tuple): without a port
 *    range, in the class of the original port (1-511, 600-1023, 1024-65535), ICMP ids in
 *    0-65535; a DNAT without a port range never changes the port. The kernel starts the search at
 *    a random offset; ctflow starts just above the original port and goes upward, wrapping in
 *    the range, so the choice is deterministic. The kernel gives up after 128 (then 64, 32, 16)
 *    tries; ctflow searches the whole range.
 *  - A tuple is taken when some confirmed entry holds its inverse in either direction
 *    (nf_nat_used_tuple). If no free tuple exists the entry keeps a taken one, and confirmation
 *    fails (insert_failed), as in __nf_conntrack_confirm.
 *
 * Not mirrored: address ranges (a rule names one address), port offsets and random-fully, GRE
 * key translation (PPTP), the *_NAT_DONE status bits. Pure: reads and writes the shard's store.
 */
import type { IpPacket } from '../packet';
import { IPPROTO } from '../packet';
import { STATUS } from '../flow';
import type { NatRule } from './rules/nat';
import { isSourceNat } from './rules/nat';
import { matchesPacket } from './rules/match';
import type { ConnStore } from './store';
import { LIFE_CONFIRMED, familyOfKind, ipv4Value, protoOfKind, zoneOfKind } from './store';
import type { FlowTable } from './table';
import { invertPorts } from './tuple';

/** One direction's tuple while NAT works on it; `sport` is the ICMP id, `dport` type<<8|code, as the store packs them. */
interface NatTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

interface NatRange {
  addr: string;
  ports?: { min: number; max: number };
}

const enum Manip {
  SRC,
  DST,
}

const PORT_PROTOCOLS = new Set<number>([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE, IPPROTO.SCTP, IPPROTO.DCCP]);
const isIcmp = (proto: number): boolean => proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6;

export class NatBinder {
  private readonly dnat: NatRule[];
  private readonly snat: NatRule[];
  /** Families with a nat table (rules of that family): only their entries are bound. */
  private readonly families = new Set<4 | 6>();
  /** nf_nat_bysource: entries by original source (zone, protocol, address, port), newest last, as [slot, id] pairs. */
  private readonly bySource = new Map<string, number[]>();
  private readonly inverted = { sport: 0, dport: 0 };

  constructor(
    rules: readonly NatRule[],
    private readonly store: ConnStore,
    private readonly table: FlowTable,
  ) {
    this.dnat = rules.filter((r) => !isSourceNat(r));
    this.snat = rules.filter(isSourceNat);
    for (const r of rules) this.families.add(r.family);
  }

  /**
   * Binds a new, unconfirmed entry (its reply tuple still the plain inverse) for its first packet.
   * Returns false when the resulting reply tuple is already in the table: confirmation must fail.
   */
  bind(slot: number, ip: IpPacket): boolean {
    if (!this.families.has(ip.family)) return true;
    const s = this.store;
    const kind = s.kind(slot);
    const zone = zoneOfKind(kind), proto = protoOfKind(kind);
    const orig = this.tupleOf(slot, 0);

    const dnat = this.dnat.find((r) => r.family === ip.family && matchesPacket(r.match, ip, zone));
    let current = orig;
    const afterDnat = this.manip(slot, kind, current, dnat ? { addr: dnat.toAddr, ports: dnat.toPorts } : { addr: orig.dst }, Manip.DST);
    if (afterDnat !== current) {
      current = afterDnat;
      s.setStatus(slot, s.status(slot) | STATUS.DST_NAT);
    }
    const seen = current === orig ? ip : translatedPacket(ip, current);
    const snat = this.snat.find((r) => r.family === ip.family && matchesPacket(r.match, seen, zone));
    const afterSnat = this.manip(slot, kind, current, snat ? { addr: snat.toAddr, ports: snat.toPorts } : { addr: current.src }, Manip.SRC);
    if (afterSnat !== current) s.setStatus(slot, s.status(slot) | STATUS.SRC_NAT);
    if (afterSnat !== orig) this.writeReply(slot, ip.family, proto, afterSnat);
    this.indexSource(slot, zone, proto, orig);
    return !this.taken(kind, afterSnat);
  }

  /**
   * nf_nat_follow_master for a new expected connection whose master's NAT helper made the
   * expectation: the NAT rules are not consulted (the binding marks both manips done); the source
   * is mapped to `follow.srcAddr`, then the destination to `follow.dstAddr` port `follow.dport`.
   * Returns false when the resulting reply tuple is taken, as bind() does.
   */
  bindFollow(slot: number, follow: { srcAddr: string; dstAddr: string; dport: number }): boolean {
    const s = this.store;
    const kind = s.kind(slot);
    const zone = zoneOfKind(kind), proto = protoOfKind(kind);
    const orig = this.tupleOf(slot, 0);
    const afterSrc = this.manip(slot, kind, orig, { addr: follow.srcAddr }, Manip.SRC);
    if (afterSrc !== orig) s.setStatus(slot, s.status(slot) | STATUS.SRC_NAT);
    const ports = { min: follow.dport, max: follow.dport };
    const afterDst = this.manip(slot, kind, afterSrc, { addr: follow.dstAddr, ports }, Manip.DST);
    if (afterDst !== afterSrc) s.setStatus(slot, s.status(slot) | STATUS.DST_NAT);
    if (afterDst !== orig) this.writeReply(slot, familyOfKind(kind), proto, afterDst);
    this.indexSource(slot, zone, proto, orig);
    return !this.taken(kind, afterDst);
  }

  private indexSource(slot: number, zone: number, proto: number, orig: NatTuple): void {
    const key = sourceKey(zone, proto, orig.src, orig.sport);
    const list = this.bySource.get(key);
    if (list) list.push(slot, this.store.id(slot));
    else this.bySource.set(key, [slot, this.store.id(slot)]);
  }

  /** Whether the by-source index holds this entry (for the state changelog). */
  indexed(slot: number): boolean {
    const list = this.bySource.get(this.sourceKeyOf(slot));
    const id = this.store.id(slot);
    if (list) for (let i = 0; i < list.length; i += 2) if (list[i] === slot && list[i + 1] === id) return true;
    return false;
  }

  /** Indexes a restored entry again (entries are restored oldest first, so each list keeps its order). */
  reindex(slot: number): void {
    const key = this.sourceKeyOf(slot);
    const list = this.bySource.get(key);
    if (list) list.push(slot, this.store.id(slot));
    else this.bySource.set(key, [slot, this.store.id(slot)]);
  }

  private sourceKeyOf(slot: number): string {
    const s = this.store;
    const kind = s.kind(slot);
    return sourceKey(zoneOfKind(kind), protoOfKind(kind), s.srcText(slot, 0), s.ports(slot, 0) >>> 16);
  }

  /** Drops a destroyed entry from the by-source index (call before its slot is released). */
  forget(slot: number): void {
    const s = this.store;
    const key = this.sourceKeyOf(slot);
    const list = this.bySource.get(key);
    if (!list) return;
    const id = s.id(slot);
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === slot && list[i + 1] === id) {
        list.splice(i, 2);
        break;
      }
    }
    if (list.length === 0) this.bySource.delete(key);
  }

  /** get_unique_tuple for one manip: the tuple itself when nothing changes. */
  private manip(slot: number, kind: number, t: NatTuple, range: NatRange, manip: Manip): NatTuple {
    const proto = protoOfKind(kind);
    if (manip === Manip.SRC) {
      if (this.inRange(proto, t, range)) {
        if (!this.taken(kind, t)) return t;
      } else {
        const mapped = this.appropriateSource(slot, kind, t, range);
        if (mapped && !this.taken(kind, mapped)) return same(t, mapped);
      }
    }
    const moved: NatTuple = manip === Manip.SRC ? { ...t, src: range.addr } : { ...t, dst: range.addr };
    const key = keyOf(proto, moved, manip);
    if (range.ports) {
      if (key !== undefined && key >= range.ports.min && key <= range.ports.max && (range.ports.min === range.ports.max || !this.taken(kind, moved))) return same(t, moved);
    } else if (!this.taken(kind, moved)) {
      return same(t, moved);
    }
    return same(t, this.uniquePort(kind, moved, range, manip));
  }

  /** in_range() for a source manip: the source address is the range's, and its port in the range's ports if any. */
  private inRange(proto: number, t: NatTuple, range: NatRange): boolean {
    if (t.src !== range.addr) return false;
    if (!range.ports) return true;
    const key = keyOf(proto, t, Manip.SRC);
    return key === undefined || (key >= range.ports.min && key <= range.ports.max);
  }

  /** find_appropriate_src: the newest entry from the same source address and port, its mapping reused when in range. */
  private appropriateSource(self: number, kind: number, t: NatTuple, range: NatRange): NatTuple | undefined {
    const list = this.bySource.get(sourceKey(zoneOfKind(kind), protoOfKind(kind), t.src, t.sport));
    if (!list) return undefined;
    const s = this.store;
    for (let i = list.length - 2; i >= 0; i -= 2) {
      const slot = list[i];
      // (a released slot keeps its id until reused: only confirmed entries count)
      if (slot === self || s.id(slot) !== list[i + 1] || !(s.life(slot) & LIFE_CONFIRMED) || s.kind(slot) !== kind) continue;
      const reply = this.tupleOf(slot, 1);
      // The other entry's reply, inverted, gives its translated source; the destination stays ours.
      const candidate: NatTuple = { src: reply.dst, dst: t.dst, sport: isIcmp(protoOfKind(kind)) ? reply.sport : reply.dport, dport: t.dport };
      if (this.inRange(protoOfKind(kind), candidate, range)) return candidate;
    }
    return undefined;
  }

  /** nf_nat_l4proto_unique_tuple, searching upward from just above the original port instead of at random. */
  private uniquePort(kind: number, t: NatTuple, range: NatRange, manip: Manip): NatTuple {
    const proto = protoOfKind(kind);
    const key = keyOf(proto, t, manip);
    if (key === undefined) return t; // no port to move (GRE without PPTP, generic protocols)
    let min: number, size: number;
    if (range.ports) {
      min = Math.min(range.ports.min, range.ports.max);
      size = Math.abs(range.ports.max - range.ports.min) + 1;
    } else if (isIcmp(proto)) {
      [min, size] = [0, 65536];
    } else if (manip === Manip.DST) {
      return t; // without a port range a destination port is never changed
    } else if (key < 512) {
      [min, size] = [1, 511];
    } else if (key < 1024) {
      [min, size] = [600, 424];
    } else {
      [min, size] = [1024, 64512];
    }
    let candidate = t;
    const start = key - min + 1;
    for (let i = 0; i < size; i++) {
      const port = min + ((((start + i) % size) + size) % size);
      candidate = withKey(proto, t, manip, port);
      if (!this.taken(kind, candidate)) return candidate;
    }
    return candidate;
  }

  /** nf_nat_used_tuple: whether a confirmed entry already holds this tuple's inverse (in either direction). */
  private taken(kind: number, t: NatTuple): boolean {
    const inv = this.inverted;
    if (!invertPorts(protoOfKind(kind), t.sport, t.dport, inv)) return false;
    const ports = ((inv.sport << 16) | inv.dport) >>> 0;
    return familyOfKind(kind) === 4
      ? this.table.find(kind, ports, ipv4Value(t.dst), ipv4Value(t.src), '', '') >= 0
      : this.table.find(kind, ports, 0, 0, t.dst, t.src) >= 0;
  }

  /** One direction of a slot's tuple. */
  private tupleOf(slot: number, dir: 0 | 1): NatTuple {
    const s = this.store;
    const ports = s.ports(slot, dir);
    return { src: s.srcText(slot, dir), dst: s.dstText(slot, dir), sport: ports >>> 16, dport: ports & 0xffff };
  }

  /** The reply tuple for a translated original tuple: its inverse. */
  private writeReply(slot: number, family: 4 | 6, proto: number, t: NatTuple): void {
    const inv = this.inverted;
    invertPorts(proto, t.sport, t.dport, inv);
    const ports = ((inv.sport << 16) | inv.dport) >>> 0;
    if (family === 4) this.store.setTuple(slot, 1, 4, t.dst, t.src, ports, ipv4Value(t.dst), ipv4Value(t.src));
    else this.store.setTuple(slot, 1, 6, t.dst, t.src, ports);
  }
}

/** The port a manip may move: the source port (SRC) or destination port (DST); the id for ICMP either way. */
function keyOf(proto: number, t: NatTuple, manip: Manip): number | undefined {
  if (isIcmp(proto)) return t.sport;
  if (!PORT_PROTOCOLS.has(proto)) return undefined;
  return manip === Manip.SRC ? t.sport : t.dport;
}

function withKey(proto: number, t: NatTuple, manip: Manip, port: number): NatTuple {
  return isIcmp(proto) || manip === Manip.SRC ? { ...t, sport: port } : { ...t, dport: port };
}

/** `b`, or `a` itself when they are the same tuple (so callers can tell "unchanged" by identity). */
function same(a: NatTuple, b: NatTuple): NatTuple {
  return a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport ? a : b;
}

function sourceKey(zone: number, proto: number, src: string, sport: number): string {
  return `${zone}/${proto}/${src}/${sport}`;
}

/** The packet as the postrouting rules see it after DNAT: a copy with the new destination (new entries only). */
function translatedPacket(ip: IpPacket, t: NatTuple): IpPacket {
  const l4 = ip.l4 && 'dport' in ip.l4 ? { ...ip.l4, dport: t.dport } : ip.l4;
  return { ...ip, dst: t.dst, dst4: ip.family === 4 ? ipv4Value(t.dst) : undefined, l4 } as IpPacket;
}

