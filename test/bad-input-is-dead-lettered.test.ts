import { expect, test } from "bun:test";
import { insertServer, insertSession, useProcessor, waitFor } from "./support/processor.ts";

// A 1 s window for an early pending -> running, so its dead letter comes quickly.
const f = useProcessor("badinput", { MAX_MESSAGE_BYTES: "4096", FORWARD_SKIP_RETRY_SECONDS: "1" });

test("every kind of bad input is dead-lettered with its reason while good messages keep flowing", async () => {
  const serverId = await insertServer(f.world.sql, "good-host");
  const sessionId = await insertSession(f.world.sql, 1);
  const neverStarted = await insertSession(f.world.sql, 2);
  const bad: [string, unknown, string][] = [
    ["status.host.1", "{not json", "not JSON"],
    ["status.host.x", { status: "online" }, "server_id: not given"],
    ["status.session.1", [1, 2], "not a JSON object"],
    ["status.host.1", { server_id: "1", status: "online" }, "server_id"],
    ["status.host.1", { server_id: 1, status: "asleep" }, "online or offline"],
    ["status.session.1", { session_id: 1, sgc_id: 1, status: "paused" }, "must be one of"],
    ["status.session.424242", { session_id: 424242, sgc_id: 1, status: "starting" }, "session 424242 does not exist"],
    ["status.backup.9", { backup_id: 9, status: "completed" }, "no backups table"],
    ["status.session.2", { session_id: neverStarted, sgc_id: 0, status: "running" }, "pending -> running skips starting: its predecessor did not arrive"],
    ["health.host.1", JSON.stringify({ server_id: 1, pad: "x".repeat(5000) }), "exceeds MAX_MESSAGE_BYTES"],
    ["health.host.1", new Uint8Array([0xff, 0x00, 0xfe]), "not JSON"],
  ];
  // Bad and good interleaved: the good ones must not wait behind the bad.
  for (const [i, [key, body]] of bad.entries()) {
    await f.peer.publish(key, body);
    await f.peer.publish(`health.host.${serverId}`, { server_id: serverId, n: i });
  }
  await f.peer.publish(`status.session.${sessionId}`, { session_id: sessionId, sgc_id: 1, status: "starting" });

  await waitFor(() => f.peer.deadLettered.length >= bad.length, 20_000, "all bad messages dead-lettered");
  const reasons = f.peer.deadLettered.map((d) => String(d.headers["x-death-reason"]));
  for (const [, , reason] of bad) expect(reasons.some((r) => r.includes(reason))).toBe(true);
  for (const d of f.peer.deadLettered) expect(d.headers["x-attempts"]).toBe(1);

  await waitFor(async () => (await f.world.sql`SELECT status FROM sessions WHERE session_id = ${sessionId}`)[0]!.status === "starting");
  expect((await f.world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`)[0]!.status).toBe("online");
  // A host message for a server with no row is not bad input: acked, counted.
  await f.peer.publish("status.host.535353", { server_id: 535353, status: "online" });
  await waitFor(() => f.processor.service.metrics.get("manman_event_messages_total", { kind: "host_status", outcome: "unknown_server" }) === 1);
  expect(f.peer.deadLettered).toHaveLength(bad.length);
  // Each refusal is logged with its reason and counted.
  expect(f.processor.logs.filter((l) => l.msg === "dead-lettered event message")).toHaveLength(bad.length);
  expect(f.processor.service.metrics.total("manman_event_messages_dead_lettered_total")).toBe(bad.length);
  // Still alive and ready.
  expect((await fetch(f.processor.url("/readyz"))).status).toBe(200);
});
