/**
 * TcpTracker: the kernel's nf_conntrack_tcp_packet in stages: header sanity (tcp_error), the
 * first packet's admission (tcp_new), the state table, the special cases the table cannot
 * express (reopen, ignored packets, RST validation, simultaneous open), window tracking, and
 * finally the timeout choice and the events.
 */
import type { IpPacket, TcpHeader } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn } from '../conn';
import type { ConnStore } from '../store';
import * as record from '../store';
import type { Sysctl } from '../sysctl';
import * as tracker from './tracker';
import { invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';
import * as states from './tcpStates';
import { PACKET_CLASS_NAMES, TCP_TIMEOUT_SYSCTL } from './tcpStates';
import * as window from './tcpWindow';

// The record layout, the state machine's numbers, the flag bits and the functions every packet
// calls as this module's own constants: every use of an imported binding is a property load on
// the exporting module's object (in a switch, one per case tried), which V8 does not fold away.
const LASTDIR8 = record.LASTDIR8, LASTINDEX8 = record.LASTINDEX8, LASTWIN16 = record.LASTWIN16,
  LIFE8 = record.LIFE8, RECORD_BYTES = record.RECORD_BYTES, RECORD_HALFWORDS = record.RECORD_HALFWORDS,
  RETRANS8 = record.RETRANS8, STATUS16 = record.STATUS16, TCPSTATE8 = record.TCPSTATE8,
  TDFLAGS8 = record.TDFLAGS8, LIFE_CONFIRMED = record.LIFE_CONFIRMED;
const { ACK_SET, CL, CW, ES, FIN_SET, FW, IG, IV, LA, NO, RST_SET, S2, SR, SS, SYN_SET, SYNACK_SET, TW, TCP_STATE_NAMES, nextState, packetClass, validFlags } = states;
const {
  EXP_CHALLENGE_ACK, SIMULTANEOUS_OPEN, TCP_FLAG_BE_LIBERAL, TCP_FLAG_CLOSE_INIT, TCP_FLAG_DATA_UNACKNOWLEDGED,
  TCP_FLAG_MAXACK_SET, TCP_FLAG_SACK_PERM, TCP_FLAG_WINDOW_SCALE, applyOptions, before, inWindow, segmentEnd,
} = window;
const SEEN_REPLY = STATUS.SEEN_REPLY, ASSURED = STATUS.ASSURED, SEQ_ADJUST = STATUS.SEQ_ADJUST;
const ACCEPT = tracker.ACCEPT, IPCT_PROTOINFO = tracker.IPCT.PROTOINFO, IPCT_ASSURED = tracker.IPCT.ASSURED;
const DIR_REPLY = tracker.DIR_REPLY;

/** A direction's window state back to nothing seen (keeps BE_LIBERAL). */
function resetDir(store: ConnStore, slot: number, d: number): void {
  store.setTdEnd(slot, d, 0);
  store.setTdMaxend(slot, d, 0);
  store.setTdMaxwin(slot, d, 0);
  store.setTdMaxack(slot, d, 0);
  store.setTdScale(slot, d, 0);
  store.setTdFlags(slot, d, store.tdFlags(slot, d) & TCP_FLAG_BE_LIBERAL);
}

/** Each state's timeout for the last sysctl set seen (a one-entry cache: sysctl sets are frozen). */
let timeoutsOf: Sysctl | undefined;
let timeouts: number[] = [];
function stateTimeout(sysctl: Sysctl, state: number): number {
  if (sysctl !== timeoutsOf) {
    timeouts = TCP_TIMEOUT_SYSCTL.map((name) => sysctl[name]);
    timeoutsOf = sysctl;
  }
  return timeouts[state];
}

/** tcp_can_early_drop: closing states may be evicted even when assured. */
function closing(state: number): boolean {
  return state === FW || state === LA || state === TW || state === CL || state === CW;
}

/** tcp_new: may this packet create an entry? Initialises the original direction if so; returns why not otherwise. */
function admit(store: ConnStore, slot: number, tcp: TcpHeader, sysctl: Sysctl): string | null {
  const index = packetClass(tcp.flags);
  const next = nextState(0, index, NO);
  if (next >= IV) return index === SYNACK_SET ? 'tcp_synack_without_syn' : `tcp_cannot_start_with_${PACKET_CLASS_NAMES[index]}`;
  if (next !== SS && sysctl.nf_conntrack_tcp_loose === 0) return 'tcp_midstream_pickup_disabled';
  const end = segmentEnd(tcp);
  const maxwin = tcp.window === 0 ? 1 : tcp.window;
  store.setTdEnd(slot, 0, end);
  store.setTdMaxwin(slot, 0, maxwin);
  if (next === SS) {
    store.setTdMaxend(slot, 0, end);
    applyOptions(tcp, store, slot, 0);
  } else {
    // Mid-stream pickup: the handshake's options are lost, so assume SACK and a liberal window.
    store.setTdMaxend(slot, 0, (store.tdEnd(slot, 0) + store.tdMaxwin(slot, 0)) >>> 0);
    store.setTdFlags(slot, 0, TCP_FLAG_SACK_PERM | TCP_FLAG_BE_LIBERAL);
    store.setTdFlags(slot, 1, TCP_FLAG_SACK_PERM | TCP_FLAG_BE_LIBERAL);
  }
  return null;
}

/** The ignored-packet bookkeeping (TCP_CONNTRACK_IGNORE in the kernel). */
function noteIgnored(store: ConnStore, slot: number, dir: Dir, index: number, oldState: number, tcp: TcpHeader): void {
  store.setLastIndex(slot, index);
  store.setLastDir(slot, dir);
  store.setLastSeq(slot, tcp.seq >>> 0);
  store.setLastEnd(slot, segmentEnd(tcp));
  store.setLastWin(slot, tcp.window);
  if (index === SYN_SET && dir === 0) {
    // A SYN we are out of sync with: remember its options in case the SYN/ACK confirms it.
    let flags = 0;
    let wscale = 0;
    if (tcp.options.wscale !== undefined) {
      flags |= TCP_FLAG_WINDOW_SCALE;
      wscale = Math.min(tcp.options.wscale, 14);
    }
    if (tcp.options.sackPermitted) flags |= TCP_FLAG_SACK_PERM;
    if (oldState === LA) flags |= EXP_CHALLENGE_ACK; // RFC 5961 challenge ACK may follow
    store.setLastFlags(slot, flags);
    store.setLastWscale(slot, wscale);
  }
  if (oldState === SS && index === ACK_SET && dir === DIR_REPLY) store.setLastAck(slot, tcp.ack >>> 0);
}

export const TcpTracker: ProtoTracker = {
  name: 'tcp',

  stateName(conn: Conn): string {
    return TCP_STATE_NAMES[conn.store.tcpState(conn.slot)];
  },

  canEarlyDrop(conn: Conn): boolean {
    return closing(conn.store.tcpState(conn.slot));
  },

  packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
    const tcp = ip.l4 as TcpHeader;
    const sysctl = ctx.sysctl;
    if (tcp.headerLength < 20) return invalid('tcp_truncated');
    if (!validFlags(tcp.flags)) return invalid('tcp_invalid_flags', { flags: tcp.flags });
    // struct ip_ct_tcp lives in the entry's record: read and written in place, the fields every
    // packet touches through the record arrays (o: the record's first byte, h: its first u16).
    const store = conn.store;
    const slot = conn.slot;
    const octets = store.octets(), halfwords = store.halfwords();
    const o = slot * RECORD_BYTES, h = slot * RECORD_HALFWORDS;
    if (!(octets[o + LIFE8] & LIFE_CONFIRMED)) {
      const refused = admit(store, slot, tcp, sysctl);
      if (refused !== null) return invalid(refused);
    }
    let oldState = octets[o + TCPSTATE8];
    const index = packetClass(tcp.flags);
    let newState = nextState(dir, index, oldState);
    let skipWindow = false;
    let note: string | undefined;

    if (newState === SS && oldState >= TW) {
      // Reopen from TIME_WAIT/CLOSE (RFC 1122), or the client aborted and starts again.
      if ((store.tdFlags(slot, dir) | store.tdFlags(slot, 1 - dir)) & TCP_FLAG_CLOSE_INIT || (store.lastDir(slot) === dir && store.lastIndex(slot) === RST_SET)) {
        ctx.kill(conn, 'reopen');
        return { verdict: 'repeat', reason: 'tcp_reopen' };
      }
      newState = IG; // otherwise the kernel treats it as an ignored packet
    }

    switch (newState) {
      case IG: {
        const lastDir = store.lastDir(slot);
        if (index === SYNACK_SET && store.lastIndex(slot) === SYN_SET && lastDir !== dir && tcp.ack >>> 0 === store.lastEnd(slot)) {
          // The SYN/ACK answers a SYN we ignored: client and server are in sync, we were not.
          oldState = SS;
          newState = SR;
          const lastWin = store.lastWin(slot);
          store.setTdEnd(slot, lastDir, store.lastEnd(slot));
          store.setTdMaxend(slot, lastDir, store.lastEnd(slot));
          store.setTdMaxwin(slot, lastDir, lastWin === 0 ? 1 : lastWin);
          store.setTdScale(slot, lastDir, store.lastWscale(slot));
          store.setLastFlags(slot, store.lastFlags(slot) & ~EXP_CHALLENGE_ACK);
          store.setTdFlags(slot, lastDir, store.lastFlags(slot));
          resetDir(store, slot, dir);
          break;
        }
        noteIgnored(store, slot, dir, index, oldState, tcp);
        return { verdict: 'accept', note: `tcp_ignored_${PACKET_CLASS_NAMES[index]}_in_${TCP_STATE_NAMES[oldState].toLowerCase()}` };
      }
      case IV:
        return invalid('tcp_invalid_state_transition', { packetClass: index, state: oldState, dir });
      case TW:
        // RFC 5961: a challenge ACK answering a spurious SYN does not ack our last FIN.
        if (
          oldState === LA && index === ACK_SET && store.lastDir(slot) !== dir && store.lastIndex(slot) === SYN_SET &&
          store.lastFlags(slot) & EXP_CHALLENGE_ACK
        ) {
          store.setLastFlags(slot, store.lastFlags(slot) & ~EXP_CHALLENGE_ACK);
          return { verdict: 'accept', note: 'tcp_challenge_ack_ignored' };
        }
        break;
      case S2:
        store.setLastFlags(slot, store.lastFlags(slot) | SIMULTANEOUS_OPEN); // the table alone cannot express simultaneous open
        break;
      case SR:
        if (dir === DIR_REPLY && index === ACK_SET && store.lastFlags(slot) & SIMULTANEOUS_OPEN) newState = ES;
        break;
      case CL: {
        if (index !== RST_SET) break;
        if (closing(oldState)) {
          skipWindow = true; // the tuple may already be reused: no validation
          break;
        }
        const peer = 1 - dir;
        const seq = tcp.seq >>> 0;
        const lastIndex = store.lastIndex(slot);
        const established = oldState === ES;
        if (store.tdFlags(slot, peer) & TCP_FLAG_MAXACK_SET && lastIndex !== SYN_SET) {
          const peerMaxack = store.tdMaxack(slot, peer);
          if (seq === 0 && !established) break;
          if (before(seq, peerMaxack) && !sysctl.nf_conntrack_tcp_ignore_invalid_rst) {
            return invalid('tcp_invalid_rst', { seq, td_maxack: peerMaxack });
          }
          if (!established || seq === peerMaxack) break;
          // An RST right after our own data (part of a train) is fine.
          if (lastIndex === ACK_SET && store.lastDir(slot) === dir && seq === store.lastEnd(slot)) break;
          // Sequence not exact: keep the state, a challenge ACK may follow.
          newState = oldState;
          note = 'tcp_rst_seq_inexact';
        }
        const ackSeq = tcp.ack >>> 0;
        if (
          ((conn.has(SEEN_REPLY) && lastIndex === SYN_SET) || (!conn.assured && lastIndex === ACK_SET)) &&
          ackSeq === store.lastEnd(slot)
        ) {
          skipWindow = true; // RST to a SYN or ACK we let through as ignored
          break;
        }
        if (oldState === SS && lastIndex === ACK_SET && store.lastDir(slot) === DIR_REPLY && seq === store.lastAck(slot)) {
          skipWindow = true; // reset answering a challenge ACK
        }
        break;
      }
      default:
        break;
    }

    if (!skipWindow) {
      // A NAT helper's rewrites shift what the other side acknowledges (tcp_in_window's receiver_offset).
      const receiverOffset = halfwords[h + STATUS16] & SEQ_ADJUST ? ctx.seqOffset(conn, (1 - dir) as Dir, (tcp.ack - 1) >>> 0) : 0;
      const res = inWindow(store, slot, dir, index, tcp, sysctl.nf_conntrack_tcp_be_liberal !== 0, receiverOffset);
      if (res.action === 'ignore') return { verdict: 'accept', note: res.reason, detail: res.detail };
      if (res.action === 'invalid') {
        shortenOnInvalid(conn, dir, index, ctx);
        return invalid(res.reason, res.detail);
      }
    }

    octets[o + LASTINDEX8] = index;
    octets[o + LASTDIR8] = dir;
    octets[o + TCPSTATE8] = newState;
    if (oldState !== newState && newState === FW) octets[o + TDFLAGS8 + dir] |= TCP_FLAG_CLOSE_INIT;

    let timeout: number;
    const stateTimeoutSec = stateTimeout(sysctl, newState);
    const retransTimeout = sysctl.nf_conntrack_tcp_timeout_max_retrans;
    const unackTimeout = sysctl.nf_conntrack_tcp_timeout_unacknowledged;
    if (octets[o + RETRANS8] >= sysctl.nf_conntrack_tcp_max_retrans && stateTimeoutSec > retransTimeout) timeout = retransTimeout;
    else if (index === RST_SET) timeout = sysctl.nf_conntrack_tcp_timeout_close;
    else if ((octets[o + TDFLAGS8] | octets[o + TDFLAGS8 + 1]) & TCP_FLAG_DATA_UNACKNOWLEDGED && stateTimeoutSec > unackTimeout) timeout = unackTimeout;
    else if (halfwords[h + LASTWIN16] === 0 && stateTimeoutSec > retransTimeout) timeout = retransTimeout;
    else timeout = stateTimeoutSec;

    if (newState !== oldState) ctx.event(conn, IPCT_PROTOINFO);

    const status = halfwords[h + STATUS16];
    if (!(status & SEEN_REPLY)) {
      // An RST as the only answer: nothing was established, drop the entry at once.
      if (tcp.flags & 0x04) {
        ctx.kill(conn, 'rst', { dir, ip });
        return ACCEPT;
      }
      // A retransmitted SYN does not renew the timeout, or port reuse could keep it alive forever.
      if (index === SYN_SET && oldState === SS) return note ? { verdict: 'accept', note } : ACCEPT;
      // Picked up mid-stream and unanswered: no long ESTABLISHED timeout yet.
      if (newState === ES && timeout > unackTimeout) timeout = unackTimeout;
    } else if (!(status & ASSURED) && (oldState === SR || oldState === ES) && newState === ES) {
      halfwords[h + STATUS16] = status | ASSURED;
      ctx.event(conn, IPCT_ASSURED);
    }
    ctx.refresh(conn, dir, ip, timeout);
    return note ? { verdict: 'accept', note } : ACCEPT;
  },
};

/** nf_tcp_handle_invalid: an out-of-window FIN/RST answering the peer's FIN/RST shortens an assured entry's life. */
function shortenOnInvalid(conn: Conn, dir: Dir, index: number, ctx: TrackerContext): void {
  if (!conn.assured || (index !== RST_SET && index !== FIN_SET)) return;
  const store = conn.store, slot = conn.slot;
  const lastIndex = store.lastIndex(slot);
  if (store.lastDir(slot) !== dir && (lastIndex === FIN_SET || lastIndex === RST_SET)) {
    const left = conn.expiresUs - ctx.nowUs;
    if (left < 120e6) return;
    const unack = ctx.sysctl.nf_conntrack_tcp_timeout_unacknowledged;
    if (left > unack * 1e6) conn.expiresUs = ctx.nowUs + unack * 1e6;
  } else {
    store.setLastIndex(slot, index);
    store.setLastDir(slot, dir);
  }
}
