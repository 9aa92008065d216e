/**
 * Packets pushed into a ConntrackPipeline whose verdict has not come out yet, for callers that need
 * the packet back when its verdict arrives. Almost every verdict comes out inside the push() of its
 * own packet, so that packet is kept in a field; only one held past its push (a fragment waiting
 * for the rest of its datagram, as nf_defrag holds it, or a packet queued behind one) goes into
 * `held`, in index order.
 */
export class AwaitingVerdict<P> {
  /** Packets whose verdict was held back past their push, by index. */
  readonly held = new Map<number, P>();
  private current: P | null = null;
  private currentIndex = -1;

  /** Call just before pushing packet number `index`. */
  pushing(index: number, p: P): void {
    this.current = p;
    this.currentIndex = index;
  }

  /** Call just after the push: a packet whose verdict did not come out is held. */
  pushed(): void {
    if (this.current !== null) this.held.set(this.currentIndex, this.current);
    this.current = null;
  }

  /** The packet a verdict with this index is about, no longer awaited (undefined if unknown). */
  take(index: number): P | undefined {
    if (index === this.currentIndex && this.current !== null) {
      const p = this.current;
      this.current = null;
      return p;
    }
    const p = this.held.get(index);
    if (p !== undefined) this.held.delete(index);
    return p;
  }
}
