/**
 * Which input offset is safe to commit for a partition whose engine state lives only in memory.
 * A flow that is still open depends on every packet since its first one: if the process stopped
 * and restarted from a later offset, the flow's earlier packets (and its accounting) would be
 * gone. So the committed offset is that of the message holding the first packet of the oldest
 * open flow, or the next offset when no flow is open. A restart replays from there: at-least-once,
 * and no flow record is lost. (A changelog of the table removes the replay; see issue 6.)
 */
export class CommitPoint {
  /** Message start positions: the first packet index of each message and its offset, in order. */
  private firstIndex: number[] = [];
  private offsets: string[] = [];
  private head = 0;

  /** Records that the message at `offset` starts with packet number `firstPacketIndex`. */
  addMessage(firstPacketIndex: number, offset: string): void {
    this.firstIndex.push(firstPacketIndex);
    this.offsets.push(offset);
  }

  /**
   * The offset to commit: the message containing packet `oldestOpenPacket`, or `nextOffset` when
   * that packet has not been read yet (`packetsRead` packets were; no flow is open). Entries
   * before it are forgotten.
   */
  safeOffset(oldestOpenPacket: number, packetsRead: number, nextOffset: string): string {
    if (oldestOpenPacket >= packetsRead) {
      this.head = this.firstIndex.length;
      this.compact();
      return nextOffset;
    }
    // The last message that starts at or before the packet holds it (empty messages before it share its start).
    let lo = this.head;
    let hi = this.firstIndex.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.firstIndex[mid] <= oldestOpenPacket) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return this.offsets[this.head] ?? nextOffset; // older than anything kept: stay put
    this.head = found;
    const offset = this.offsets[found];
    this.compact();
    return offset;
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.firstIndex.length) {
      this.firstIndex = this.firstIndex.slice(this.head);
      this.offsets = this.offsets.slice(this.head);
      this.head = 0;
    }
  }
}
