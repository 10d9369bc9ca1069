/**
 * Per-entity ordering: tasks with the same key run one after another in the
 * order they were added; tasks with different keys run concurrently. The
 * consumer keys event messages by server or session, so two messages for
 * session 7 never race while session 8's go ahead.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private running = 0;
  private readonly idleWaiters: (() => void)[] = [];

  /** Tasks added and not yet settled. */
  get pending(): number {
    return this.running;
  }

  /** Keys with work queued or running (bounded by the consumer's prefetch). */
  get keys(): number {
    return this.tails.size;
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    this.running++;
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
      this.running--;
      if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
    return result;
  }

  /** Settles when every task added so far has settled. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
