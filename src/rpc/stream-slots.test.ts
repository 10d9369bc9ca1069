import { expect, test } from "bun:test";
import { clientKey, StreamSlots } from "./stream-slots.ts";

test("a client gets at most its share, all clients at most the total; a release frees the slot once", () => {
  const slots = new StreamSlots({ max: 5, maxPerClient: 3 });
  const a = [slots.take("10.0.0.1"), slots.take("10.0.0.1"), slots.take("10.0.0.1")];
  expect(a.every((r) => typeof r === "function")).toBe(true);
  expect(slots.take("10.0.0.1")).toBe("per_client");
  const b = [slots.take("10.0.0.2"), slots.take("10.0.0.2")];
  expect(slots.take("10.0.0.3")).toBe("total");
  (a[0] as () => void)();
  (a[0] as () => void)();
  expect([slots.open, slots.heldBy("10.0.0.1")]).toEqual([4, 2]);
  expect(typeof slots.take("10.0.0.3")).toBe("function");
  expect(b.length).toBe(2);
});

test("IPv6 clients are counted per /64; mapped IPv4 as IPv4; unknown peers share one key", () => {
  expect(clientKey("2001:db8:1:2:aaaa::1")).toBe(clientKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"));
  expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
  expect(clientKey("[2001:0db8:0001:0002::1]")).toBe("2001:db8:1:2::/64");
  expect(clientKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
  expect(clientKey("::1")).toBe("0:0:0:0::/64");
  expect(clientKey(undefined)).toBe("");
});
