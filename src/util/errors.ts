/** The one error-to-text helper: what a log line or an RPC status says about `err`. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
