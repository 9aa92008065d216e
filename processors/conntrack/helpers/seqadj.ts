/**
 * Sequence number adjustment after a NAT helper resized a segment (the kernel's
 * nf_conntrack_seqadj.c, struct nf_ct_seqadj): per direction, the position of the last resize
 * and the offsets in force before and after it.
 *
 * Kernel behaviour mirrored:
 * - nf_ct_seqadj_set: a resize of `off` bytes in the segment starting at `seq` moves the
 *   correction point there, unless the direction already has an offset and the new segment does
 *   not start after the current correction point (a retransmission of the resized segment changes
 *   nothing); a resize by 0 changes nothing at all.
 * - nf_ct_seq_offset: a sequence number after the correction point takes the offset after it,
 *   any other (the correction point included) the offset before it.
 * conntrack's TCP window check (tcp_in_window) subtracts the receiver direction's offset for
 * `ack - 1` from a packet's ACK and SACK: the other side acknowledges the resized stream, while
 * the sender's own numbers, as the router receives them, are never resized.
 */

/** One direction's adjustment (struct nf_ct_seqadj). */
export class SeqAdjust {
  correctionPos = 0;
  offsetBefore = 0;
  offsetAfter = 0;

  /** nf_ct_seqadj_set for the segment starting at `seq` that grew by `off` bytes (negative: shrank). */
  set(seq: number, off: number): void {
    if (off === 0) return;
    if (this.offsetBefore === this.offsetAfter || before(this.correctionPos, seq >>> 0)) {
      this.correctionPos = seq >>> 0;
      this.offsetBefore = this.offsetAfter;
      this.offsetAfter += off;
    }
  }

  /** nf_ct_seq_offset: the offset for sequence number `seq` of this direction. */
  offset(seq: number): number {
    return after(seq >>> 0, this.correctionPos) ? this.offsetAfter : this.offsetBefore;
  }
}

/** TCP sequence comparisons modulo 2^32 (the kernel's before() and after()). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}
