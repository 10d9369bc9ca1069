/**
 * Which database errors are the message's fault (permanent: retrying cannot
 * help) and which are the moment's (transient: retry). Pure.
 */
export function isPermanentDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || code.length !== 5) return false;
  // Class 22 (data exception: out of range, invalid text) and 23 (integrity
  // constraint) come from the values in the message; class 40 (serialization
  // failure, deadlock) and 57/08/53 (cancel, connection, resources) pass.
  return code.startsWith("22") || code.startsWith("23");
}
