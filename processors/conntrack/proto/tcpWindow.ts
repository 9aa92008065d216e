/**
 * TCP window tracking (the kernel's tcp_in_window and helpers), after Guido van Rooij's
 * "Real Stateful TCP Packet Filtering in IP Filter". Per direction the tracker keeps
 *   td_end    = highest seq + len sent,
 *   td_maxend = highest ack + window advertised by the other side,
 *   td_maxwin = largest window (plus SACK slack) seen from the sender,
 * and checks I. seq <= td_maxend, II. seq + len >= td_end - receiver.td_maxwin,
 * III. ack <= receiver.td_end, IV. ack >= receiver.td_end - MAXACKWINDOW.
 * Failing I or III is INVALID; failing II or IV is ignored (accepted without state change).
 */
import type { TcpHeader } from '../../packet';
import { ACK_SET } from './tcpStates';

export const TCP_FLAG_WINDOW_SCALE = 0x01;
export const TCP_FLAG_SACK_PERM = 0x02;
export const TCP_FLAG_CLOSE_INIT = 0x04;
export const TCP_FLAG_BE_LIBERAL = 0x08;
export const TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
export const TCP_FLAG_MAXACK_SET = 0x20;
export const EXP_CHALLENGE_ACK = 0x40;
export const SIMULTANEOUS_OPEN = 0x80;

const MAXACKWINCONST = 66000;
const TCP_MAX_WSCALE = 14;

export interface TcpDirState {
  td_end: number;
  td_maxend: number;
  td_maxwin: number;
  td_maxack: number;
  td_scale: number;
  flags: number;
}

/** Sequence-space comparisons (the kernel's before/after on u32). */
export const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;
const u32 = (x: number): number => x >>> 0;

/** seq + payload length + one each for SYN and FIN (segment_seq_plus_len). */
export function segmentEnd(tcp: TcpHeader): number {
  return u32(tcp.seq + tcp.dataLength + (tcp.flags & 0x02 ? 1 : 0) + (tcp.flags & 0x01 ? 1 : 0));
}

/** tcp_options: window scale (clamped to 14) and SACK-permitted; keeps only BE_LIBERAL. */
export function applyOptions(tcp: TcpHeader, state: TcpDirState): void {
  state.td_scale = 0;
  state.flags &= TCP_FLAG_BE_LIBERAL;
  if (tcp.options.sackPermitted) state.flags |= TCP_FLAG_SACK_PERM;
  if (tcp.options.wscale !== undefined) {
    state.td_scale = Math.min(tcp.options.wscale, TCP_MAX_WSCALE);
    state.flags |= TCP_FLAG_WINDOW_SCALE;
  }
}

/** The highest SACK right edge beyond `ack`, as tcp_sack does. */
function highestSack(tcp: TcpHeader, ack: number): number {
  let sack = ack;
  for (const [, right] of tcp.options.sack ?? []) if (after(right >>> 0, sack)) sack = right >>> 0;
  return sack;
}

export interface WindowTrackerState {
  seen: [TcpDirState, TcpDirState];
  state: number;
  last_dir: number;
  last_seq: number;
  last_ack: number;
  last_end: number;
  last_win: number;
  retrans: number;
}

/** tcp_init_sender: a SYN (or SYN/ACK) fixes the sender's window parameters. */
export function initSender(sender: TcpDirState, receiver: TcpDirState, tcp: TcpHeader, end: number, dir: number): void {
  sender.td_end = sender.td_maxend = end;
  sender.td_maxwin = tcp.window === 0 ? 1 : tcp.window;
  applyOptions(tcp, sender);
  // RFC 1323: scaling is on only when both sides offered it.
  if (dir === 1 && !(sender.flags & TCP_FLAG_WINDOW_SCALE && receiver.flags & TCP_FLAG_WINDOW_SCALE)) {
    sender.td_scale = 0;
    receiver.td_scale = 0;
  }
}

export type WindowResult =
  | { action: 'accept' }
  | { action: 'ignore' | 'invalid'; reason: string; detail: Record<string, number> };

const ACCEPTED: WindowResult = { action: 'accept' };

/**
 * A failed check: accepted anyway when the window is liberal (nf_tcp_log_invalid), otherwise the
 * action with the values behind it. A plain function, so the accepting path allocates nothing.
 */
function failure(
  liberal: boolean,
  action: 'ignore' | 'invalid',
  reason: string,
  seq: number,
  ack: number,
  sack: number,
  end: number,
  win: number,
  sender: TcpDirState,
  receiver: TcpDirState,
): WindowResult {
  if (liberal) return ACCEPTED;
  const detail = {
    seq,
    ack,
    sack,
    end,
    win,
    td_end: sender.td_end,
    td_maxend: sender.td_maxend,
    td_maxwin: sender.td_maxwin,
    td_scale: sender.td_scale,
    receiver_td_end: receiver.td_end,
    receiver_td_maxend: receiver.td_maxend,
    receiver_td_maxwin: receiver.td_maxwin,
  };
  return { action, reason, detail };
}

/** tcp_in_window. `beLiberal` is the sysctl; a picked-up connection's BE_LIBERAL flag also counts. */
export function inWindow(
  st: WindowTrackerState,
  dir: 0 | 1,
  index: number,
  tcp: TcpHeader,
  beLiberal: boolean,
): WindowResult {
  const sender = st.seen[dir];
  const receiver = st.seen[1 - dir];
  let seq = tcp.seq >>> 0;
  let ack = tcp.ack >>> 0;
  let sack = ack;
  const winRaw = tcp.window;
  let win = winRaw;
  let end = segmentEnd(tcp);
  const syn = (tcp.flags & 0x02) !== 0;
  const hasAck = (tcp.flags & 0x10) !== 0;
  const rst = (tcp.flags & 0x04) !== 0;

  if (receiver.flags & TCP_FLAG_SACK_PERM) sack = highestSack(tcp, sack);

  if (sender.td_maxwin === 0) {
    if (syn) {
      initSender(sender, receiver, tcp, end, dir);
      if (!hasAck) return ACCEPTED; // simultaneous open
    } else {
      // Mid-connection: the history is lost, take what the packet says.
      sender.td_end = end;
      const swin = u32(win * 2 ** sender.td_scale);
      sender.td_maxwin = swin === 0 ? 1 : swin;
      sender.td_maxend = u32(end + sender.td_maxwin);
      if (receiver.td_maxwin === 0) {
        receiver.td_end = receiver.td_maxend = sack;
      } else if (sack === u32(receiver.td_end + 1)) {
        receiver.td_end = u32(receiver.td_end + 1); // likely a reply to a keepalive
      }
    }
  } else if (syn && after(end, sender.td_end) && (st.state === 1 || st.state === 2)) {
    // RFC 793: a reinitialised TCP may reuse the tuple with a larger ISN; start over.
    initSender(sender, receiver, tcp, end, dir);
    if (dir === 1 && !hasAck) return ACCEPTED;
  }

  if (!hasAck) {
    ack = sack = receiver.td_end;
  } else if ((tcp.flags & 0x14) === 0x14 && ack === 0) {
    ack = sack = receiver.td_end; // broken stacks: RST|ACK with a zero ack
  }

  if (rst && seq === 0 && st.state === 1) {
    seq = end = sender.td_end; // RST answering a SYN
  }

  const liberal = beLiberal || (sender.flags & TCP_FLAG_BE_LIBERAL) !== 0;
  const maxAckWindow = sender.td_maxwin > MAXACKWINCONST ? sender.td_maxwin : MAXACKWINCONST;
  if (!before(seq, u32(sender.td_maxend + 1))) {
    const overshoot = u32(end - sender.td_maxend + 1);
    const ackOk = after(sack, u32(receiver.td_end - maxAckWindow - 1));
    const inRecvWin = receiver.td_maxwin !== 0 && after(end, u32(sender.td_end - receiver.td_maxwin - 1));
    if (inRecvWin && ackOk && overshoot <= receiver.td_maxwin && before(sack, u32(receiver.td_end + 1))) {
      // A sender overrunning the window by a little: remember its data so the ACK for it passes.
      sender.td_end = end;
      sender.flags |= TCP_FLAG_DATA_UNACKNOWLEDGED;
      return failure(liberal, 'ignore', 'tcp_window_overshoot', seq, ack, sack, end, winRaw, sender, receiver);
    }
    return failure(liberal, 'invalid', 'tcp_out_of_window', seq, ack, sack, end, winRaw, sender, receiver);
  }
  if (!before(sack, u32(receiver.td_end + 1))) return failure(liberal, 'invalid', 'tcp_ack_over_upper_bound', seq, ack, sack, end, winRaw, sender, receiver);

  const inRecvWin = receiver.td_maxwin === 0 || after(end, u32(sender.td_end - receiver.td_maxwin - 1));
  if (!inRecvWin) return failure(liberal, 'ignore', 'tcp_seq_under_lower_bound', seq, ack, sack, end, winRaw, sender, receiver);
  if (!after(sack, u32(receiver.td_end - maxAckWindow - 1))) return failure(liberal, 'ignore', 'tcp_ack_under_lower_bound', seq, ack, sack, end, winRaw, sender, receiver);

  if (!syn) win = u32(win * 2 ** sender.td_scale);

  const swin = u32(win + (sack - ack));
  if (sender.td_maxwin < swin) sender.td_maxwin = swin;
  if (after(end, sender.td_end)) {
    sender.td_end = end;
    sender.flags |= TCP_FLAG_DATA_UNACKNOWLEDGED;
  }
  if (hasAck) {
    if (!(sender.flags & TCP_FLAG_MAXACK_SET)) {
      sender.td_maxack = ack;
      sender.flags |= TCP_FLAG_MAXACK_SET;
    } else if (after(ack, sender.td_maxack)) {
      sender.td_maxack = ack;
    }
  }

  if (receiver.td_maxwin !== 0 && after(end, sender.td_maxend)) {
    receiver.td_maxwin = u32(receiver.td_maxwin + (end - sender.td_maxend));
  }
  if (after(u32(sack + win), u32(receiver.td_maxend - 1))) {
    receiver.td_maxend = u32(sack + win);
    if (win === 0) receiver.td_maxend = u32(receiver.td_maxend + 1);
  }
  if (ack === receiver.td_end) receiver.flags &= ~TCP_FLAG_DATA_UNACKNOWLEDGED;

  if (index === ACK_SET) {
    if (st.last_dir === dir && st.last_seq === seq && st.last_ack === ack && st.last_end === end && st.last_win === winRaw) {
      st.retrans++;
    } else {
      st.last_dir = dir;
      st.last_seq = seq;
      st.last_ack = ack;
      st.last_end = end;
      st.last_win = winRaw;
      st.retrans = 0;
    }
  }
  return ACCEPTED;
}
