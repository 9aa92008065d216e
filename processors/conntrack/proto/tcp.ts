/**
 * TcpTracker: the kernel's nf_conntrack_tcp_packet in stages: header sanity (tcp_error), the
 * first packet's admission (tcp_new), the state table, the special cases the table cannot
 * express (reopen, ignored packets, RST validation, simultaneous open), window tracking, and
 * finally the timeout choice and the events.
 */
import type { IpPacket, TcpHeader } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn, TcpView } from '../conn';
import type { Sysctl } from '../sysctl';
import { ACCEPT, DIR_REPLY, IPCT, invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';
import {
  ACK_SET, CL, CW, ES, FIN_SET, FW, IG, IV, LA, NO, PACKET_CLASS_NAMES, RST_SET, S2, SR, SS, SYN_SET, SYNACK_SET,
  TCP_STATE_NAMES, TCP_TIMEOUT_SYSCTL, TCP_TRANSITIONS, TW, packetClass, validFlags,
} from './tcpStates';
import {
  EXP_CHALLENGE_ACK, SIMULTANEOUS_OPEN, TCP_FLAG_BE_LIBERAL, TCP_FLAG_CLOSE_INIT, TCP_FLAG_DATA_UNACKNOWLEDGED,
  TCP_FLAG_MAXACK_SET, TCP_FLAG_SACK_PERM, TCP_FLAG_WINDOW_SCALE, applyOptions, before, inWindow,
  segmentEnd,
} from './tcpWindow';
import type { TcpDirState } from './tcpWindow';

/** The TCP part of an entry, as the tracker sees it (columns of the shard's store). */
export type TcpState = TcpView;

function resetDirState(s: TcpDirState): void {
  s.td_end = s.td_maxend = s.td_maxwin = s.td_maxack = s.td_scale = 0;
  s.flags &= TCP_FLAG_BE_LIBERAL;
}

const timeoutOf = (sysctl: Sysctl, state: number): number => sysctl[TCP_TIMEOUT_SYSCTL[state]];

/** tcp_can_early_drop: closing states may be evicted even when assured. */
function closing(state: number): boolean {
  return state === FW || state === LA || state === TW || state === CL || state === CW;
}

/** tcp_new: may this packet create an entry? Initialises the original direction if so; returns why not otherwise. */
function admit(st: TcpState, tcp: TcpHeader, sysctl: Sysctl): string | null {
  const index = packetClass(tcp.flags);
  const next = TCP_TRANSITIONS[0][index][NO];
  if (next >= IV) return index === SYNACK_SET ? 'tcp_synack_without_syn' : `tcp_cannot_start_with_${PACKET_CLASS_NAMES[index]}`;
  if (next !== SS && sysctl.nf_conntrack_tcp_loose === 0) return 'tcp_midstream_pickup_disabled';
  const orig = st.seen[0];
  orig.td_end = segmentEnd(tcp);
  orig.td_maxwin = tcp.window === 0 ? 1 : tcp.window;
  if (next === SS) {
    orig.td_maxend = orig.td_end;
    applyOptions(tcp, orig);
  } else {
    // Mid-stream pickup: the handshake's options are lost, so assume SACK and a liberal window.
    orig.td_maxend = (orig.td_end + orig.td_maxwin) >>> 0;
    orig.flags = st.seen[1].flags = TCP_FLAG_SACK_PERM | TCP_FLAG_BE_LIBERAL;
  }
  return null;
}

/** The ignored-packet bookkeeping (TCP_CONNTRACK_IGNORE in the kernel). */
function noteIgnored(st: TcpState, dir: Dir, index: number, oldState: number, tcp: TcpHeader): void {
  st.last_index = index;
  st.last_dir = dir;
  st.last_seq = tcp.seq >>> 0;
  st.last_end = segmentEnd(tcp);
  st.last_win = tcp.window;
  if (index === SYN_SET && dir === 0) {
    // A SYN we are out of sync with: remember its options in case the SYN/ACK confirms it.
    st.last_flags = 0;
    st.last_wscale = 0;
    if (tcp.options.wscale !== undefined) {
      st.last_flags |= TCP_FLAG_WINDOW_SCALE;
      st.last_wscale = Math.min(tcp.options.wscale, 14);
    }
    if (tcp.options.sackPermitted) st.last_flags |= TCP_FLAG_SACK_PERM;
    if (oldState === LA) st.last_flags |= EXP_CHALLENGE_ACK; // RFC 5961 challenge ACK may follow
  }
  if (oldState === SS && index === ACK_SET && dir === DIR_REPLY) st.last_ack = tcp.ack >>> 0;
}

function established(st: TcpState): boolean {
  return st.state === ES;
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
    const st = conn.tcp;
    if (!conn.confirmed) {
      const refused = admit(st, tcp, sysctl);
      if (refused !== null) return invalid(refused);
    }
    let oldState = st.state;
    const index = packetClass(tcp.flags);
    let newState = TCP_TRANSITIONS[dir][index][oldState];
    let skipWindow = false;
    let note: string | undefined;

    if (newState === SS && oldState >= TW) {
      // Reopen from TIME_WAIT/CLOSE (RFC 1122), or the client aborted and starts again.
      if ((st.seen[dir].flags | st.seen[1 - dir].flags) & TCP_FLAG_CLOSE_INIT || (st.last_dir === dir && st.last_index === RST_SET)) {
        ctx.kill(conn, 'reopen');
        return { verdict: 'repeat', reason: 'tcp_reopen' };
      }
      newState = IG; // otherwise the kernel treats it as an ignored packet
    }

    switch (newState) {
      case IG:
        if (index === SYNACK_SET && st.last_index === SYN_SET && st.last_dir !== dir && tcp.ack >>> 0 === st.last_end) {
          // The SYN/ACK answers a SYN we ignored: client and server are in sync, we were not.
          oldState = SS;
          newState = SR;
          const s = st.seen[st.last_dir];
          s.td_end = s.td_maxend = st.last_end;
          s.td_maxwin = st.last_win === 0 ? 1 : st.last_win;
          s.td_scale = st.last_wscale;
          st.last_flags &= ~EXP_CHALLENGE_ACK;
          s.flags = st.last_flags;
          resetDirState(st.seen[dir]);
          break;
        }
        noteIgnored(st, dir, index, oldState, tcp);
        return { verdict: 'accept', note: `tcp_ignored_${PACKET_CLASS_NAMES[index]}_in_${TCP_STATE_NAMES[oldState].toLowerCase()}` };
      case IV:
        return invalid('tcp_invalid_state_transition', { packetClass: index, state: oldState, dir });
      case TW:
        // RFC 5961: a challenge ACK answering a spurious SYN does not ack our last FIN.
        if (oldState === LA && index === ACK_SET && st.last_dir !== dir && st.last_index === SYN_SET && st.last_flags & EXP_CHALLENGE_ACK) {
          st.last_flags &= ~EXP_CHALLENGE_ACK;
          return { verdict: 'accept', note: 'tcp_challenge_ack_ignored' };
        }
        break;
      case S2:
        st.last_flags |= SIMULTANEOUS_OPEN; // the table alone cannot express simultaneous open
        break;
      case SR:
        if (dir === DIR_REPLY && index === ACK_SET && st.last_flags & SIMULTANEOUS_OPEN) newState = ES;
        break;
      case CL: {
        if (index !== RST_SET) break;
        if (closing(oldState)) {
          skipWindow = true; // the tuple may already be reused: no validation
          break;
        }
        const peer = st.seen[1 - dir];
        const seq = tcp.seq >>> 0;
        if (peer.flags & TCP_FLAG_MAXACK_SET && st.last_index !== SYN_SET) {
          if (seq === 0 && !established(st)) break;
          if (before(seq, peer.td_maxack) && !sysctl.nf_conntrack_tcp_ignore_invalid_rst) {
            return invalid('tcp_invalid_rst', { seq, td_maxack: peer.td_maxack });
          }
          if (!established(st) || seq === peer.td_maxack) break;
          // An RST right after our own data (part of a train) is fine.
          if (st.last_index === ACK_SET && st.last_dir === dir && seq === st.last_end) break;
          // Sequence not exact: keep the state, a challenge ACK may follow.
          newState = oldState;
          note = 'tcp_rst_seq_inexact';
        }
        const ackSeq = tcp.ack >>> 0;
        if (
          ((conn.has(STATUS.SEEN_REPLY) && st.last_index === SYN_SET) || (!conn.assured && st.last_index === ACK_SET)) &&
          ackSeq === st.last_end
        ) {
          skipWindow = true; // RST to a SYN or ACK we let through as ignored
          break;
        }
        if (oldState === SS && st.last_index === ACK_SET && st.last_dir === DIR_REPLY && seq === st.last_ack) {
          skipWindow = true; // reset answering a challenge ACK
        }
        break;
      }
      default:
        break;
    }

    if (!skipWindow) {
      const beLiberal = sysctl.nf_conntrack_tcp_be_liberal !== 0;
      const res = inWindow(st, dir, index, tcp, beLiberal);
      if (res.action === 'ignore') return { verdict: 'accept', note: res.reason, detail: res.detail };
      if (res.action === 'invalid') {
        shortenOnInvalid(conn, st, dir, index, ctx);
        return invalid(res.reason, res.detail);
      }
    }

    st.last_index = index;
    st.last_dir = dir;
    st.state = newState;
    if (oldState !== newState && newState === FW) st.seen[dir].flags |= TCP_FLAG_CLOSE_INIT;

    let timeout: number;
    const stateTimeout = timeoutOf(sysctl, newState);
    const retransTimeout = sysctl.nf_conntrack_tcp_timeout_max_retrans;
    const unackTimeout = sysctl.nf_conntrack_tcp_timeout_unacknowledged;
    if (st.retrans >= sysctl.nf_conntrack_tcp_max_retrans && stateTimeout > retransTimeout) timeout = retransTimeout;
    else if (index === RST_SET) timeout = sysctl.nf_conntrack_tcp_timeout_close;
    else if ((st.seen[0].flags | st.seen[1].flags) & TCP_FLAG_DATA_UNACKNOWLEDGED && stateTimeout > unackTimeout) timeout = unackTimeout;
    else if (st.last_win === 0 && stateTimeout > retransTimeout) timeout = retransTimeout;
    else timeout = stateTimeout;

    if (newState !== oldState) ctx.event(conn, IPCT.PROTOINFO);

    if (!conn.has(STATUS.SEEN_REPLY)) {
      // An RST as the only answer: nothing was established, drop the entry at once.
      if (tcp.flags & 0x04) {
        ctx.kill(conn, 'rst', { dir, ip });
        return ACCEPT;
      }
      // A retransmitted SYN does not renew the timeout, or port reuse could keep it alive forever.
      if (index === SYN_SET && oldState === SS) return note ? { verdict: 'accept', note } : ACCEPT;
      // Picked up mid-stream and unanswered: no long ESTABLISHED timeout yet.
      if (newState === ES && timeout > unackTimeout) timeout = unackTimeout;
    } else if (!conn.assured && (oldState === SR || oldState === ES) && newState === ES) {
      conn.status |= STATUS.ASSURED;
      ctx.event(conn, IPCT.ASSURED);
    }
    ctx.refresh(conn, dir, ip, timeout);
    return note ? { verdict: 'accept', note } : ACCEPT;
  },
};

/** nf_tcp_handle_invalid: an out-of-window FIN/RST answering the peer's FIN/RST shortens an assured entry's life. */
function shortenOnInvalid(conn: Conn, st: TcpState, dir: Dir, index: number, ctx: TrackerContext): void {
  if (!conn.assured || (index !== RST_SET && index !== FIN_SET)) return;
  if (st.last_dir !== dir && (st.last_index === FIN_SET || st.last_index === RST_SET)) {
    const left = conn.expiresUs - ctx.nowUs;
    if (left < 120e6) return;
    const unack = ctx.sysctl.nf_conntrack_tcp_timeout_unacknowledged;
    if (left > unack * 1e6) conn.expiresUs = ctx.nowUs + unack * 1e6;
  } else {
    st.last_index = index;
    st.last_dir = dir;
  }
}

