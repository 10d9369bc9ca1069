/**
 * The one way to wait for or react to an AbortSignal, so no component
 * forgets the already-aborted case or leaks a listener.
 */

/**
 * Runs `fn` once when `signal` aborts (at once if it already has). Returns
 * a function that removes the listener, for callers that finish first.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}

/** Resolves when `signal` aborts: the "wait for shutdown" of every long-lived component. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => void onAbort(signal, resolve));
}
