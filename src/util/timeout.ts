/**
 * A deadline on a promise. The promise itself is not cancelled (most of
 * what we wait on can't be); the caller stops waiting and gets a clear error.
 */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** Settles as `promise` does, or rejects with a TimeoutError(`what`) after `ms`; the timer never outlives the race. */
export async function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `promise` settles within `ms` (however it settles), false when the time runs out first. */
export async function settlesWithin(promise: PromiseLike<unknown>, ms: number): Promise<boolean> {
  return withTimeout(Promise.resolve(promise).then(() => true, () => true), ms, "").catch(() => false);
}
