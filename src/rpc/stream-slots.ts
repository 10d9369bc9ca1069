/**
 * Caps on open log streams, whatever carries them: LOG_STREAMS_MAX in all
 * and LOG_STREAMS_PER_CLIENT_MAX per client address. A stream takes its
 * slot once its caller is admitted and before its request body is read,
 * and gives it back when it ends, however it ends. Pure.
 *
 * The address is the TCP peer (never a forwarded header, which any client
 * can write). IPv6 clients are counted per /64, the block one host or
 * subscriber usually gets, so one machine cannot take a slot per address
 * of its block; IPv4-mapped IPv6 addresses count as their IPv4 address.
 */

export type SlotRefusal = "total" | "per_client";

export interface StreamSlotsOptions {
  /** LOG_STREAMS_MAX. */
  max: number;
  /** LOG_STREAMS_PER_CLIENT_MAX. */
  maxPerClient: number;
}

export class StreamSlots {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(private readonly options: StreamSlotsOptions) {}

  /** Streams holding a slot now. */
  get open(): number {
    return this.total;
  }

  /** Slots held by one client address. */
  heldBy(peer: string | undefined): number {
    return this.perClient.get(clientKey(peer)) ?? 0;
  }

  /** A release function (idempotent), or why the slot is refused. */
  take(peer: string | undefined): (() => void) | SlotRefusal {
    const key = clientKey(peer);
    const held = this.perClient.get(key) ?? 0;
    if (this.total >= this.options.max) return "total";
    if (held >= this.options.maxPerClient) return "per_client";
    this.total++;
    this.perClient.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perClient.get(key) ?? 1) - 1;
      if (n > 0) this.perClient.set(key, n);
      else this.perClient.delete(key);
    };
  }
}

/** The key a peer address is counted under: IPv4 as is, IPv6 by its /64; unknown ones share "". */
export function clientKey(peer: string | undefined): string {
  if (!peer) return "";
  const a = peer.toLowerCase().replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (!a.includes(":")) return a;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1];
  const [head, tail] = a.split("::");
  const left = head ? head.split(":") : [];
  const right = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/64";
}
