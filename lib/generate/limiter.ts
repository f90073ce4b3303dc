// A first-come first-served counting semaphore: at most `limit` holders at once, the rest wait in order.
// It bounds the requests in flight across all endpoints (`--concurrency`).

export class Limiter {
  private holders = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Waits for a free slot; the returned function gives it back (call it exactly once). */
  async acquire(): Promise<() => void> {
    if (this.holders < this.limit && this.waiting.length === 0) {
      this.holders += 1;
    } else {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.holders -= 1;
    };
  }
}
