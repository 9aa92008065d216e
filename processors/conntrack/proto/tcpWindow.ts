/**
 * TCP window tracking (the kernel's tcp_in_window and helpers), after Guido van Rooij's
 * "Real Stateful TCP Packet Filtering in IP Filter". Per direction the tracker keeps
 *   td_end    = highest seq + len sent,
 *   td_maxend = highest ack + window advertised by the other side,
 *   td_maxwin = largest window (plus SACK slack) seen from the sender,
 * and checks I. seq <= td_maxend, II. seq + len >= td_end - receiver.td_maxwin,
 * III. ack <= receiver.td_end, IV. ack >= receiver.td_end - MAXACKWINDOW.
 * Failing I or III is INVALID; failing II or IV is ignored (accepted without state change).
 * The per-direction state (struct ip_ct_tcp_state) is read and written where it lives, in the
 * entry's record in the shard's ConnStore: no view objects, nothing allocated unless a check fails.
 */
import type { TcpHeader } from '../../packet';
import type { ConnStore } from '../store';
import * as record from '../store';
import * as states from './tcpStates';

// The record layout as this module's own constants: every use of an imported binding would be a
// property load on the store module's exports object.
const LASTACK32 = record.LASTACK32, LASTDIR8 = record.LASTDIR8, LASTEND32 = record.LASTEND32,
  LASTSEQ32 = record.LASTSEQ32, LASTWIN16 = record.LASTWIN16, RECORD_BYTES = record.RECORD_BYTES,
  RECORD_HALFWORDS = record.RECORD_HALFWORDS, RECORD_WORDS = record.RECORD_WORDS, RETRANS8 = record.RETRANS8,
  TCPSTATE8 = record.TCPSTATE8, TDEND32 = record.TDEND32, TDFLAGS8 = record.TDFLAGS8,
  TDMAXACK32 = record.TDMAXACK32, TDMAXEND32 = record.TDMAXEND32, TDMAXWIN32 = record.TDMAXWIN32,
  TDSCALE8 = record.TDSCALE8;
const ACK_SET = states.ACK_SET, SR = states.SR, SS = states.SS;

const TCP_FLAG_WINDOW_SCALE = 0x01;
const TCP_FLAG_SACK_PERM = 0x02;
const TCP_FLAG_CLOSE_INIT = 0x04;
const TCP_FLAG_BE_LIBERAL = 0x08;
const TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
const TCP_FLAG_MAXACK_SET = 0x20;
const EXP_CHALLENGE_ACK = 0x40;
const SIMULTANEOUS_OPEN = 0x80;
// (Exported by name, as the record offsets: this module's own uses stay constants.)
export {
  TCP_FLAG_WINDOW_SCALE, TCP_FLAG_SACK_PERM, TCP_FLAG_CLOSE_INIT, TCP_FLAG_BE_LIBERAL, TCP_FLAG_DATA_UNACKNOWLEDGED,
  TCP_FLAG_MAXACK_SET, EXP_CHALLENGE_ACK, SIMULTANEOUS_OPEN,
};

const MAXACKWINCONST = 66000;
const TCP_MAX_WSCALE = 14;

/** Sequence-space comparisons (the kernel's before/after on u32). */
export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}
const u32 = (x: number): number => x >>> 0;

/** 2 ** s for every byte s: a window scaled by a table load instead of a call to pow(). */
const POW2 = Float64Array.from({ length: 256 }, (_, s) => 2 ** s);

/** seq + payload length + one each for SYN and FIN (segment_seq_plus_len). */
export function segmentEnd(tcp: TcpHeader): number {
  return u32(tcp.seq + tcp.dataLength + (tcp.flags & 0x02 ? 1 : 0) + (tcp.flags & 0x01 ? 1 : 0));
}


/** tcp_options: window scale (clamped to 14) and SACK-permitted for direction `d`; keeps only BE_LIBERAL. */
export function applyOptions(tcp: TcpHeader, store: ConnStore, slot: number, d: number): void {
  let flags = store.tdFlags(slot, d) & TCP_FLAG_BE_LIBERAL;
  let scale = 0;
  if (tcp.options.sackPermitted) flags |= TCP_FLAG_SACK_PERM;
  if (tcp.options.wscale !== undefined) {
    scale = Math.min(tcp.options.wscale, TCP_MAX_WSCALE);
    flags |= TCP_FLAG_WINDOW_SCALE;
  }
  store.setTdScale(slot, d, scale);
  store.setTdFlags(slot, d, flags);
}

/** The highest SACK right edge beyond `ack`, as tcp_sack does. */
function highestSack(tcp: TcpHeader, ack: number): number {
  const blocks = tcp.options.sack;
  let sack = ack;
  if (blocks === undefined) return sack;
  for (let k = 0; k < blocks.length; k++) {
    const right = blocks[k][1] >>> 0;
    if (after(right, sack)) sack = right;
  }
  return sack;
}

/** tcp_init_sender: a SYN (or SYN/ACK) in direction `dir` fixes the sender's window parameters. */
export function initSender(store: ConnStore, slot: number, dir: number, tcp: TcpHeader, end: number): void {
  store.setTdEnd(slot, dir, end);
  store.setTdMaxend(slot, dir, end);
  store.setTdMaxwin(slot, dir, tcp.window === 0 ? 1 : tcp.window);
  applyOptions(tcp, store, slot, dir);
  // RFC 1323: scaling is on only when both sides offered it.
  if (dir === 1 && !(store.tdFlags(slot, 1) & TCP_FLAG_WINDOW_SCALE && store.tdFlags(slot, 0) & TCP_FLAG_WINDOW_SCALE)) {
    store.setTdScale(slot, 1, 0);
    store.setTdScale(slot, 0, 0);
  }
}

export type WindowResult =
  | { action: 'accept' }
  | { action: 'ignore' | 'invalid'; reason: string; detail: Record<string, number> };

const ACCEPTED: WindowResult = { action: 'accept' };

/**
 * A failed check: accepted anyway when the window is liberal (nf_tcp_log_invalid), otherwise the
 * action with the values behind it (the state as it is now). Only failures allocate.
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
  store: ConnStore,
  slot: number,
  dir: number,
): WindowResult {
  if (liberal) return ACCEPTED;
  const peer = 1 - dir;
  const detail = {
    seq,
    ack,
    sack,
    end,
    win,
    td_end: store.tdEnd(slot, dir),
    td_maxend: store.tdMaxend(slot, dir),
    td_maxwin: store.tdMaxwin(slot, dir),
    td_scale: store.tdScale(slot, dir),
    receiver_td_end: store.tdEnd(slot, peer),
    receiver_td_maxend: store.tdMaxend(slot, peer),
    receiver_td_maxwin: store.tdMaxwin(slot, peer),
  };
  return { action, reason, detail };
}

/**
 * tcp_in_window for a packet in direction `dir` of the entry in `slot`, whose TCP state (struct
 * ip_ct_tcp) is read and written in place in the store's record arrays. `beLiberal` is the
 * sysctl; a picked-up connection's BE_LIBERAL flag also counts. `receiverOffset` is the other
 * direction's sequence adjustment for `ack - 1` (0 unless a NAT helper resized that direction's
 * stream).
 */
export function inWindow(store: ConnStore, slot: number, dir: 0 | 1, index: number, tcp: TcpHeader, beLiberal: boolean, receiverOffset = 0): WindowResult {
  const peer = 1 - dir;
  const flags = tcp.flags;
  let seq = tcp.seq >>> 0;
  let ack = tcp.ack >>> 0;
  let sack = ack;
  const winRaw = tcp.window;
  let win = winRaw;
  let end = segmentEnd(tcp);
  const syn = (flags & 0x02) !== 0;
  const hasAck = (flags & 0x10) !== 0;
  // This direction's and the peer's fields: word, and byte, indices of the pairs' elements.
  const words = store.words(), octets = store.octets();
  const w = slot * RECORD_WORDS, wd = w + dir, wp = w + peer;
  const o = slot * RECORD_BYTES;
  const state = octets[o + TCPSTATE8];

  if (octets[o + TDFLAGS8 + peer] & TCP_FLAG_SACK_PERM) sack = highestSack(tcp, sack);
  // The receiver's stream as this side saw it was resized by a NAT helper (nf_ct_seq_offset):
  // bring the ACK and SACK back to the numbers the receiver itself sent.
  if (receiverOffset !== 0) {
    ack = u32(ack - receiverOffset);
    sack = u32(sack - receiverOffset);
  }

  if (words[wd + TDMAXWIN32] === 0) {
    if (syn) {
      initSender(store, slot, dir, tcp, end);
      if (!hasAck) return ACCEPTED; // simultaneous open
    } else {
      // Mid-connection: the history is lost, take what the packet says.
      words[wd + TDEND32] = end;
      const swin = u32(win * POW2[octets[o + TDSCALE8 + dir]]);
      words[wd + TDMAXWIN32] = swin === 0 ? 1 : swin;
      words[wd + TDMAXEND32] = u32(end + words[wd + TDMAXWIN32]);
      if (words[wp + TDMAXWIN32] === 0) {
        words[wp + TDEND32] = sack;
        words[wp + TDMAXEND32] = sack;
      } else if (sack === u32(words[wp + TDEND32] + 1)) {
        words[wp + TDEND32] = sack; // likely a reply to a keepalive
      }
    }
  } else if (syn && after(end, words[wd + TDEND32]) && (state === SS || state === SR)) {
    // RFC 793: a reinitialised TCP may reuse the tuple with a larger ISN; start over.
    initSender(store, slot, dir, tcp, end);
    if (dir === 1 && !hasAck) return ACCEPTED;
  }

  // From here on the checks read the state as it now stands; the updates follow them.
  const sndEnd = words[wd + TDEND32], sndMaxend = words[wd + TDMAXEND32], sndMaxwin = words[wd + TDMAXWIN32];
  const rcvEnd = words[wp + TDEND32], rcvMaxend = words[wp + TDMAXEND32], rcvMaxwin = words[wp + TDMAXWIN32];
  let sndFlags = octets[o + TDFLAGS8 + dir];

  if (!hasAck) {
    ack = sack = rcvEnd;
  } else if ((flags & 0x14) === 0x14 && ack === 0) {
    ack = sack = rcvEnd; // broken stacks: RST|ACK with a zero ack
  }

  if (flags & 0x04 && seq === 0 && state === SS) {
    seq = end = sndEnd; // RST answering a SYN
  }

  const liberal = beLiberal || (sndFlags & TCP_FLAG_BE_LIBERAL) !== 0;
  const maxAckWindow = sndMaxwin > MAXACKWINCONST ? sndMaxwin : MAXACKWINCONST;
  if (!before(seq, u32(sndMaxend + 1))) {
    const overshoot = u32(end - sndMaxend + 1);
    const ackOk = after(sack, u32(rcvEnd - maxAckWindow - 1));
    const inRecvWin = rcvMaxwin !== 0 && after(end, u32(sndEnd - rcvMaxwin - 1));
    if (inRecvWin && ackOk && overshoot <= rcvMaxwin && before(sack, u32(rcvEnd + 1))) {
      // A sender overrunning the window by a little: remember its data so the ACK for it passes.
      words[wd + TDEND32] = end;
      octets[o + TDFLAGS8 + dir] = sndFlags | TCP_FLAG_DATA_UNACKNOWLEDGED;
      return failure(liberal, 'ignore', 'tcp_window_overshoot', seq, ack, sack, end, winRaw, store, slot, dir);
    }
    return failure(liberal, 'invalid', 'tcp_out_of_window', seq, ack, sack, end, winRaw, store, slot, dir);
  }
  if (!before(sack, u32(rcvEnd + 1))) {
    return failure(liberal, 'invalid', 'tcp_ack_over_upper_bound', seq, ack, sack, end, winRaw, store, slot, dir);
  }
  if (rcvMaxwin !== 0 && !after(end, u32(sndEnd - rcvMaxwin - 1))) {
    return failure(liberal, 'ignore', 'tcp_seq_under_lower_bound', seq, ack, sack, end, winRaw, store, slot, dir);
  }
  if (!after(sack, u32(rcvEnd - maxAckWindow - 1))) {
    return failure(liberal, 'ignore', 'tcp_ack_under_lower_bound', seq, ack, sack, end, winRaw, store, slot, dir);
  }

  if (!syn) win = u32(win * POW2[octets[o + TDSCALE8 + dir]]);

  const swin = u32(win + (sack - ack));
  if (sndMaxwin < swin) words[wd + TDMAXWIN32] = swin;
  if (after(end, sndEnd)) {
    words[wd + TDEND32] = end;
    sndFlags |= TCP_FLAG_DATA_UNACKNOWLEDGED;
  }
  if (hasAck) {
    if (!(sndFlags & TCP_FLAG_MAXACK_SET)) {
      words[wd + TDMAXACK32] = ack;
      sndFlags |= TCP_FLAG_MAXACK_SET;
    } else if (after(ack, words[wd + TDMAXACK32])) {
      words[wd + TDMAXACK32] = ack;
    }
  }
  octets[o + TDFLAGS8 + dir] = sndFlags;

  if (rcvMaxwin !== 0 && after(end, sndMaxend)) words[wp + TDMAXWIN32] = u32(rcvMaxwin + (end - sndMaxend));
  if (after(u32(sack + win), u32(rcvMaxend - 1))) words[wp + TDMAXEND32] = win === 0 ? u32(sack + win + 1) : u32(sack + win);
  if (ack === rcvEnd) octets[o + TDFLAGS8 + peer] &= ~TCP_FLAG_DATA_UNACKNOWLEDGED;

  if (index === ACK_SET) noteRetransmission(store, slot, dir, seq, ack, end, winRaw);
  return ACCEPTED;
}

/** The same ACK segment again in the same direction counts as a retransmission (max_retrans timeout). */
function noteRetransmission(store: ConnStore, slot: number, dir: number, seq: number, ack: number, end: number, win: number): void {
  const words = store.words(), octets = store.octets(), halfwords = store.halfwords();
  const w = slot * RECORD_WORDS, o = slot * RECORD_BYTES, h = slot * RECORD_HALFWORDS;
  if (
    octets[o + LASTDIR8] === dir && words[w + LASTSEQ32] === seq && words[w + LASTACK32] === ack &&
    words[w + LASTEND32] === end && halfwords[h + LASTWIN16] === win
  ) {
    octets[o + RETRANS8]++; // a u8, as the kernel's ip_ct_tcp.retrans
    return;
  }
  octets[o + LASTDIR8] = dir;
  words[w + LASTSEQ32] = seq;
  words[w + LASTACK32] = ack;
  words[w + LASTEND32] = end;
  halfwords[h + LASTWIN16] = win;
  octets[o + RETRANS8] = 0;
}
