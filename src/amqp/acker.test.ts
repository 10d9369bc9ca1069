import { expect, test } from "bun:test";
import { Acker, type AckChannel } from "./acker.ts";

function fakeChannel() {
  const sent: string[] = [];
  const ch: AckChannel & { sent: string[]; closed: boolean } = {
    sent,
    closed: false,
    basicAck: async (tag, multiple) => void sent.push(multiple ? `ack<=${tag}` : `ack ${tag}`),
    basicReject: async (tag) => void sent.push(`reject ${tag}`),
    basicNack: async (tag) => void sent.push(`requeue ${tag}`),
  };
  return ch;
}

test("a contiguous run is acked with one multiple-ack", () => {
  let now = 0;
  const acker = new Acker({ now: () => now, batch: 1000 });
  const ch = fakeChannel();
  for (const tag of [3, 1, 2, 4]) acker.ack({ deliveryTag: tag, channel: ch });
  acker.flush();
  expect(ch.sent).toEqual(["ack<=4"]);
});

test("rejects and requeues inside the run go first, in order", () => {
  const acker = new Acker({ now: () => 0, batch: 1000 });
  const ch = fakeChannel();
  acker.ack({ deliveryTag: 1, channel: ch });
  acker.reject({ deliveryTag: 2, channel: ch });
  acker.ack({ deliveryTag: 3, channel: ch });
  acker.requeue({ deliveryTag: 4, channel: ch });
  acker.ack({ deliveryTag: 5, channel: ch });
  acker.flush();
  expect(ch.sent).toEqual(["ack<=1", "reject 2", "ack<=3", "requeue 4", "ack<=5"]);
});

test("a slow message does not hold back what finished after it", () => {
  let now = 0;
  const acker = new Acker({ now: () => now, batch: 1000 });
  const ch = fakeChannel();
  acker.ack({ deliveryTag: 1, channel: ch });
  // tag 2 is still being worked on
  acker.ack({ deliveryTag: 3, channel: ch });
  acker.ack({ deliveryTag: 4, channel: ch });
  acker.flush();
  expect(ch.sent).toEqual(["ack<=1"]);
  now = 100; // past the linger time: sent singly
  acker.flush();
  expect(ch.sent).toEqual(["ack<=1", "ack 3", "ack 4"]);
  // when tag 2 finally finishes, the prefix walks over 3 and 4 without resending them
  acker.ack({ deliveryTag: 2, channel: ch });
  acker.ack({ deliveryTag: 5, channel: ch });
  acker.flush();
  expect(ch.sent).toEqual(["ack<=1", "ack 3", "ack 4", "ack<=5"]);
});

test("tags of a closed channel are dropped (the broker redelivers them)", () => {
  const acker = new Acker({ now: () => 0, batch: 1000 });
  const ch = fakeChannel();
  acker.ack({ deliveryTag: 1, channel: ch });
  ch.closed = true;
  acker.flush();
  expect(ch.sent).toEqual([]);
  expect(acker.waiting).toBe(0);
});

test("channels are tracked separately (a reconnect starts tags at 1 again)", () => {
  const acker = new Acker({ now: () => 0, batch: 1000 });
  const a = fakeChannel();
  const b = fakeChannel();
  acker.ack({ deliveryTag: 1, channel: a });
  acker.ack({ deliveryTag: 1, channel: b });
  acker.ack({ deliveryTag: 2, channel: b });
  acker.flush();
  expect(a.sent).toEqual(["ack<=1"]);
  expect(b.sent).toEqual(["ack<=2"]);
});

test("a full batch is flushed at once, without waiting for the timer", () => {
  const acker = new Acker({ now: () => 0, batch: 2 });
  const ch = fakeChannel();
  acker.ack({ deliveryTag: 1, channel: ch });
  expect(ch.sent).toEqual([]);
  acker.ack({ deliveryTag: 2, channel: ch });
  expect(ch.sent).toEqual(["ack<=2"]);
});

test("what is acked singly goes out in ascending tag order, whatever order it finished in", () => {
  let now = 0;
  const acker = new Acker({ now: () => now, batch: 1000 });
  const ch = fakeChannel();
  for (const tag of [9, 4, 7, 3, 8]) acker.ack({ deliveryTag: tag, channel: ch }); // 1, 2, 5, 6 still out
  now = 100;
  acker.flush();
  expect(ch.sent).toEqual(["ack 3", "ack 4", "ack 7", "ack 8", "ack 9"]);
});

test("a longer linger waits for the gap to close and then covers everything with one multiple-ack", () => {
  let now = 0;
  const acker = new Acker({ now: () => now, batch: 1000, lingerMs: 2000 });
  const ch = fakeChannel();
  for (const tag of [2, 3, 4]) acker.ack({ deliveryTag: tag, channel: ch });
  now = 1999;
  acker.flush();
  expect(ch.sent).toEqual([]);
  acker.ack({ deliveryTag: 1, channel: ch });
  acker.flush();
  expect(ch.sent).toEqual(["ack<=4"]);
  acker.ack({ deliveryTag: 6, channel: ch });
  now = 4000;
  acker.flush();
  expect(ch.sent).toEqual(["ack<=4", "ack 6"]);
});

test("what settles while lingering lines wait for their re-check is still flushed at once, not at the re-check", async () => {
  // A linger of 10 min re-checks what waits beyond a gap once a minute;
  // the message that closes the gap must not wait for that.
  const acker = new Acker({ batch: 1000, lingerMs: 600_000 });
  const ch = fakeChannel();
  acker.ack({ deliveryTag: 2, channel: ch });
  acker.flush(); // 2 waits beyond the gap at 1: a re-check is due in a minute
  expect(ch.sent).toEqual([]);
  acker.ack({ deliveryTag: 1, channel: ch });
  for (let i = 0; i < 100 && ch.sent.length === 0; i++) await Bun.sleep(20);
  expect(ch.sent).toEqual(["ack<=2"]);
});
