// A count that others can watch: the HTTP backend counts in one its requests waiting out a retry backoff, and
// the generate stage wakes on each change to send other documents' requests in their place.

export class Gauge {
  private count = 0;
  private readonly listeners = new Set<() => void>();

  get value(): number {
    return this.count;
  }

  /** One member's share: `counted(true)` counts it (once), `counted(false)` no longer; repeats do nothing. */
  member(): (counted: boolean) => void {
    let counted = false;
    return (now) => {
      if (now === counted) return;
      counted = now;
      this.add(now ? 1 : -1);
    };
  }

  /** Calls `listener` after each change, until the returned function is called. */
  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private add(delta: number): void {
    this.count += delta;
    for (const listener of this.listeners) listener();
  }
}
