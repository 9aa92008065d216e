/**
 * Connection-tracking helpers (the kernel's nf_conntrack_helper.c and the helpers' own files),
 * as current kernels run them: a helper applies only where a rule assigns it (nft's
 * `ct helper set`), never by port alone. What a shard asks of them:
 * - attach(): when a new entry is created, the expectation it fulfils (nf_ct_find_expectation in
 *   init_conntrack: the entry becomes EXPECTED and its packets RELATED until a reply) and else the
 *   helper the first matching rule assigns (IPS_HELPER);
 * - help(): after the tracker accepted a packet of an entry with a helper, the helper's reading of
 *   it (in the kernel at confirmation, nf_confirm);
 * - destroyed(): the entry is gone: its expectations go with it, its master loses a reference.
 * With NAT (the connection has SRC_NAT or DST_NAT), the kernel's NAT helpers take over the
 * expectation (nf_nat_ftp, nf_nat_tftp): see natFtp() and tftp().
 * One instance per engine, shared by its shards, with the engine-wide expectation table.
 */
import type { FlowRecord, Tuple } from '../../flow';
import { STATUS } from '../../flow';
import type { IpPacket } from '../../packet';
import { IPPROTO } from '../../packet';
import type { PacketMatch } from '../rules/match';
import { ipv6Groups, matchesPacket } from '../rules/match';
import { ExpectationTable } from './expectations';
import type { AddPolicy, AddResult, ExpectEvent, ExpectationSpec, NatFollow } from './expectations';
import { FtpState, ftpSegment } from './ftp';
import type { FtpAddress, FtpVerdict } from './ftp';
import { natFtpText } from './natFtp';
import { SeqAdjust } from './seqadj';
import { ipv4Value } from '../store';
import { isTftpRequest } from './tftp';

export type HelperName = 'ftp' | 'tftp';

/** A `ct helper set` rule: new connections matching `match` get `helper`. */
export interface HelperRule {
  helper: HelperName;
  match: PacketMatch;
  /** How the rule was given (`--helper ftp:tcp/21`, `engine.rules.helpers[0]`), for messages. */
  name: string;
}

export interface HelperDef {
  name: HelperName;
  /** The only protocol the kernel registers it for (nf_ct_helper_init). */
  proto: number;
  /** Its expect policy (struct nf_conntrack_expect_policy). */
  policy: AddPolicy;
}

/** Both kernel helpers: max_expected 1, timeout 5 min (ftp_exp_policy, tftp_exp_policy). */
export const HELPERS: Readonly<Record<HelperName, HelperDef>> = {
  ftp: { name: 'ftp', proto: IPPROTO.TCP, policy: { maxExpected: 1, timeoutSec: 300 } },
  tftp: { name: 'tftp', proto: IPPROTO.UDP, policy: { maxExpected: 1, timeoutSec: 300 } },
};

/** A shard's per-entry helper data (the kernel's nf_conn_help, and ct->master). */
export interface ConnHelp {
  helper?: HelperDef;
  ftp?: FtpState;
  /** For an expected connection: its master's id and help data (which it keeps referenced). */
  masterId?: number;
  master?: ConnHelp;
  /** Live expected connections that name this one as master (each holds a reference). */
  children: number;
  /** An expected connection's NAT binding, from its master's NAT helper (nf_nat_follow_master). */
  follow?: NatFollow;
  /** Per direction, the sequence adjustment after the NAT helper resized a command (nf_conn_seqadj). */
  seqadj?: [SeqAdjust, SeqAdjust];
}

/** The entry a helper reads (a Conn view fits): its identity and tuples, read only when it announces a connection. */
export interface HelpedConn {
  id: number;
  zone: number;
  family: 4 | 6;
  /** Its status bits: SRC_NAT or DST_NAT hand an announcement to the NAT helper. */
  status: number;
  orig: Tuple;
  reply: Tuple;
}

const NAT_MASK = STATUS.SRC_NAT | STATUS.DST_NAT;

export class Helpers {
  readonly expectations: ExpectationTable;

  constructor(
    private readonly rules: readonly HelperRule[],
    expectMax: () => number,
    emit: (e: ExpectEvent) => void,
  ) {
    this.expectations = new ExpectationTable(expectMax, emit);
  }

  /** Whether anything can happen at all: rules to assign, or expectations waiting. */
  get active(): boolean {
    return this.rules.length > 0 || this.expectations.count > 0;
  }

  /**
   * A new entry's helper data, or undefined when it is neither expected nor assigned a helper.
   * `sport`/`dport` are the packet's (the entry's original tuple).
   */
  attach(ip: IpPacket, zone: number, sport: number, dport: number, nowUs: number): ConnHelp | undefined {
    let help: ConnHelp | undefined;
    if (this.expectations.count > 0) {
      const exp = this.expectations.take(zone, ip.proto, ip.src, ip.dst, sport, dport, nowUs);
      if (exp) {
        const master = exp.masterHelp as ConnHelp | undefined;
        help = { masterId: exp.masterId, master, children: 0, follow: exp.follow };
        if (master) master.children++;
      }
    }
    const helper = this.assign(ip, zone);
    if (helper) {
      help ??= { children: 0 };
      help.helper = helper;
      if (helper.name === 'ftp') help.ftp = new FtpState();
    }
    return help;
  }

  /** nft `ct helper set`: the first rule that matches the connection's first packet, for the helper's protocol only. */
  private assign(ip: IpPacket, zone: number): HelperDef | undefined {
    for (const r of this.rules) {
      const def = HELPERS[r.helper];
      if (def.proto === ip.proto && matchesPacket(r.match, ip, zone)) return def;
    }
    return undefined;
  }

  /**
   * The helper's reading of a packet the tracker accepted. `established` is the kernel's ctinfo
   * ESTABLISHED/ESTABLISHED_REPLY (the packet's verdict was ESTABLISHED). Returns why the
   * kernel's helper would drop the packet (half a command; an expectation it cannot add:
   * `..._expectation_clash`, `_max_expected`, `_table_full`), or undefined when it lets it pass.
   */
  help(help: ConnHelp, conn: HelpedConn, dir: 0 | 1, ip: IpPacket, established: boolean, nowUs: number): string | undefined {
    const helper = help.helper;
    if (!helper) return undefined;
    if (helper.name === 'tftp') return this.tftp(help, conn, ip, nowUs);
    if (!established || !help.ftp || ip.l4?.kind !== 'tcp') return undefined;
    const tcp = ip.l4;
    const payload = tcpPayload(tcp.payload, tcp.dataLength);
    if (!payload) return undefined;
    const v = ftpSegment(help.ftp, dir, conn.family, tcp.seq, payload);
    if (v.kind === 'drop') return 'ftp_partial_command';
    if (v.kind !== 'expect') return undefined;
    // The reverse direction's tuple: the connection comes from the other side (nf_conntrack_ftp's "!dir").
    const other = dir === 0 ? conn.reply : conn.orig;
    const sender = dir === 0 ? conn.orig.src : conn.reply.src;
    if (v.address && !sameAddress(v.address, sender, conn.family)) return undefined; // loose=0: not trusted, not expected
    if (conn.status & NAT_MASK) return this.natFtp(help, helper, conn, dir, tcp.seq, v, nowUs);
    return this.expect(help, helper, conn, IPPROTO.TCP, other.src, other.dst, v.port, nowUs);
  }

  /**
   * nf_nat_ftp for a NAT'd control connection: the data connection is expected at the address the
   * other side knows this one by (the other direction's destination), at the announced port or,
   * when that clashes, another (nf_nat_exp_find_port); the command's text is rewritten to that
   * address and port, and when that resizes the segment the direction's later sequence numbers
   * shift (nf_nat_mangle_tcp_packet, nf_ct_seqadj_set). The connection, when it comes, is bound
   * back to the announcer (exp->dir = the other direction, nf_nat_follow_master).
   */
  private natFtp(help: ConnHelp, helper: HelperDef, conn: HelpedConn, dir: 0 | 1, seq: number, v: Extract<FtpVerdict, { kind: 'expect' }>, nowUs: number): string | undefined {
    const here = dir === 0 ? conn.orig : conn.reply;
    const other = dir === 0 ? conn.reply : conn.orig;
    const follow: NatFollow = { srcAddr: here.dst, dstAddr: here.src, dport: v.port };
    const port = this.findPort(help, helper, conn, other.src, other.dst, v.port, nowUs, follow);
    if (port !== 0) {
      const replaced = natFtpText(v.command, conn.family, other.dst, port);
      const resized = replaced.length - (v.span.end - v.span.start);
      if (resized !== 0) {
        help.seqadj ??= [new SeqAdjust(), new SeqAdjust()];
        help.seqadj[dir].set(seq, resized);
      }
      return undefined;
    }
    return `${helper.name}_nat_all_ports_in_use`;
  }

  /**
   * nf_nat_exp_find_port: the announced port, else on each clash (-EBUSY) another in
   * [port, 65535), at most min(65535 - port, 128) more tries; 0 when none is free or the table
   * refuses for another reason. The kernel picks the other ports at random (an oracle run moved
   * a second client's 50300 to 52797); ctflow takes them upward from the announced one, so its
   * output is reproducible. At 65534 and 65535 there is nothing to pick: both give up the same way.
   */
  private findPort(help: ConnHelp, helper: HelperDef, conn: HelpedConn, src: string, dst: string, announced: number, nowUs: number, follow: NatFollow): number {
    const range = 0xffff - announced;
    let attemptsLeft = Math.min(range, 128);
    for (let step = 0; ; step++) {
      const port = range > 0 ? announced + (step % range) : announced;
      const result = this.add(help, helper, conn, IPPROTO.TCP, src, dst, port, nowUs, follow);
      if (result === 'added') return port;
      if (result !== 'clash' || --attemptsLeft < 0) return 0;
    }
  }

  /** TFTP expects the server's answer on the reply tuple; with NAT, nf_nat_tftp binds it back to the client's own address and port. */
  private tftp(help: ConnHelp, conn: HelpedConn, ip: IpPacket, nowUs: number): string | undefined {
    const l4 = ip.l4;
    if (l4?.kind !== 'udp' || !l4.payload || !isTftpRequest(l4.payload)) return undefined;
    const orig = conn.orig, reply = conn.reply;
    const follow = conn.status & NAT_MASK ? { srcAddr: orig.dst, dstAddr: orig.src, dport: orig.sport } : undefined;
    return this.expect(help, help.helper!, conn, IPPROTO.UDP, reply.src, reply.dst, reply.dport, nowUs, follow);
  }

  /** nf_ct_expect_related; a refusal ("cannot add expectation") is the reason the packet is dropped. */
  private expect(help: ConnHelp, helper: HelperDef, conn: HelpedConn, proto: number, src: string, dst: string, dport: number, nowUs: number, follow?: NatFollow): string | undefined {
    const result = this.add(help, helper, conn, proto, src, dst, dport, nowUs, follow);
    return result === 'added' ? undefined : `${helper.name}_expectation_${result}`;
  }

  private add(help: ConnHelp, helper: HelperDef, conn: HelpedConn, proto: number, src: string, dst: string, dport: number, nowUs: number, follow?: NatFollow): AddResult {
    const spec: ExpectationSpec = {
      zone: conn.zone,
      family: conn.family,
      proto,
      src,
      dst,
      sport: 0,
      sportExact: false,
      dport,
      flags: 0,
      helper: helper.name,
      masterId: conn.id,
      master: conn.orig,
      masterHelp: help,
    };
    if (follow) spec.follow = follow;
    return this.expectations.add(spec, helper.policy, nowUs);
  }

  /** The entry is destroyed: its expectations vanish (nf_ct_remove_expectations), its master loses the reference. */
  destroyed(help: ConnHelp, id: number, nowUs: number): void {
    if (help.helper) this.expectations.removeMaster(id, nowUs);
    if (help.master) help.master.children--;
  }

  /** Adds what conntrack prints of helpers to a snapshot: helper=, the master, and the use count. */
  decorate(rec: FlowRecord, help: ConnHelp): FlowRecord {
    if (help.helper) rec.helper = help.helper.name;
    if (help.masterId !== undefined) rec.masterId = help.masterId;
    if (help.children) rec.use = 1 + help.children;
    return rec;
  }
}

/** The TCP payload the helper reads: what was captured, zero-padded to the length the IP header claims (as the oracle replays a cut capture). */
function tcpPayload(captured: Uint8Array | undefined, dataLength: number): Uint8Array | undefined {
  if (!captured || dataLength === 0) return undefined;
  if (captured.length >= dataLength) return captured.length === dataLength ? captured : captured.subarray(0, dataLength);
  const padded = new Uint8Array(dataLength);
  padded.set(captured);
  return padded;
}

/**
 * Whether the address a command names is the sender's own. For an IPv6 connection a PORT or 227
 * only overwrites the address's first 32 bits (the kernel's cmd.u3.ip), so it matches only when
 * those bits already were the sender's.
 */
function sameAddress(a: FtpAddress, sender: string, family: 4 | 6): boolean {
  if (family === 4) return a.family === 4 && a.value === ipv4Value(sender);
  const groups = ipv6Groups(sender);
  if (a.family === 6) return a.groups.every((g, i) => g === groups[i]);
  return groups[0] === a.value >>> 16 && groups[1] === (a.value & 0xffff);
}
