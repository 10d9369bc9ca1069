import { describe, expect, test } from "bun:test";
import { insertServer, insertSession, useProcessor, waitFor } from "./support/processor.ts";
// The updated_at trigger (upstream's, created standalone too) resets a plain UPDATE of it.
import { backdateUpdatedAt } from "./support/manmanv2-schema.ts";

const f = useProcessor("sessions", { STALE_SESSION_THRESHOLD_SECONDS: "10", FORWARD_SKIP_RETRY_SECONDS: "2" });
let sgc = 100;

const row = async (id: number) =>
  (await f.world.sql`SELECT status, started_at, ended_at, exit_code, updated_at FROM sessions WHERE session_id = ${id}`)[0]!;
// The session's timeline (processor_session_transitions), oldest first.
const timeline = async (id: number): Promise<Record<string, unknown>[]> =>
  (await f.world.sql`SELECT from_status, to_status, exit_code, routing_key, reason, by_session_id FROM processor_session_transitions
                     WHERE session_id = ${id} ORDER BY at, id`).map((r) => ({ ...(r as Record<string, unknown>), by_session_id: r.by_session_id === null ? null : Number(r.by_session_id) }));
const announced = (id: number) => f.peer.events("manman.session.").filter((e) => (e.body as { session_id: number }).session_id === id);
const send = (id: number, sgcId: number, status: string, exit_code?: number | null) =>
  f.peer.publish(`status.session.${id}`, { session_id: id, sgc_id: sgcId, status, ...(exit_code !== undefined ? { exit_code } : {}) });
// The stale-session sweep (10 s here) would mark quiet pending sessions lost:
// each test sends its transitions right away, so that never interferes.

describe("the session lifecycle", () => {
  test("pending → starting → running → stopping → stopped sets started_at, ended_at and exit_code and announces running and stopped", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s);
    for (const status of ["starting", "running", "stopping"]) await send(id, s, status);
    await send(id, s, "stopped", 0);
    await waitFor(async () => (await row(id)).status === "stopped", 10_000, "stopped");
    const r = await row(id);
    expect(r.started_at).not.toBeNull();
    expect(r.ended_at).not.toBeNull();
    expect(r.exit_code).toBe(0);
    expect(new Date(r.ended_at).getTime()).toBeGreaterThanOrEqual(new Date(r.started_at).getTime());
    await waitFor(() => announced(id).length === 2);
    expect(announced(id)).toEqual([
      { routingKey: "manman.session.running", body: { session_id: id, sgc_id: s, status: "running" } },
      { routingKey: "manman.session.stopped", body: { session_id: id, sgc_id: s, status: "stopped", exit_code: 0 } },
    ]);
  });

  test("a crash records its exit code and is announced with it", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s);
    await send(id, s, "starting");
    await send(id, s, "running");
    await send(id, s, "crashed", 137);
    await waitFor(async () => (await row(id)).status === "crashed");
    expect((await row(id)).exit_code).toBe(137);
    await waitFor(() => announced(id).some((e) => e.routingKey === "manman.session.crashed"));
    expect(announced(id).at(-1)!.body).toEqual({ session_id: id, sgc_id: s, status: "crashed", exit_code: 137, log_tail: [] });
    const key = `status.session.${id}`;
    expect(await timeline(id)).toEqual([
      { from_status: "pending", to_status: "starting", exit_code: null, routing_key: key, reason: "message", by_session_id: null },
      { from_status: "starting", to_status: "running", exit_code: null, routing_key: key, reason: "message", by_session_id: null },
      { from_status: "running", to_status: "crashed", exit_code: 137, routing_key: key, reason: "message", by_session_id: null },
    ]);
  });

  test("a session can be lost from any active state, and the same state twice is accepted quietly", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s);
    await send(id, s, "starting");
    await send(id, s, "starting");
    await send(id, s, "lost");
    await waitFor(async () => (await row(id)).status === "lost");
    await waitFor(() => announced(id).length === 1);
    expect(announced(id)[0]!.routingKey).toBe("manman.session.lost");
    expect(f.peer.deadLettered.filter((d) => JSON.parse(d.body).session_id === id)).toHaveLength(0);
  });

  test("the same non-terminal state again is a keepalive: it refreshes updated_at and changes nothing else", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s, "starting");
    await backdateUpdatedAt(f.world.sql, "sessions", [id], 5);
    const before = await row(id);
    await send(id, 0, "starting"); // what a host sends every 5 s while it downloads addons
    await waitFor(async () => (await row(id)).updated_at.getTime() > before.updated_at.getTime());
    const after = await row(id);
    expect({ ...after, updated_at: null }).toEqual({ ...before, updated_at: null });
    expect(announced(id)).toHaveLength(0);
    expect(await timeline(id)).toEqual([]); // a keepalive is not a move
  });

  test("a stale redelivery (running after stopping) changes nothing, is acked and counted, not dead-lettered", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s);
    for (const status of ["starting", "running", "stopping"]) await send(id, s, status);
    await waitFor(async () => (await row(id)).status === "stopping");
    const before = await row(id);
    await send(id, s, "running");
    await send(id, s, "pending");
    await waitFor(() => f.processor.logs.filter((l) => l.msg === "ignored stale redelivery" && l.session_id === id).length === 2);
    expect((await row(id)).updated_at).toEqual(before.updated_at);
    expect(f.processor.service.metrics.get("manman_event_messages_total", { kind: "session_status", outcome: "stale" })).toBeGreaterThanOrEqual(2);
    expect(f.peer.deadLettered.filter((d) => JSON.parse(d.body).session_id === id)).toHaveLength(0);
  });

  test("a stop before running (addon download cancelled) and a force kill from running are applied, freeing ports", async () => {
    const s = ++sgc;
    const cancelled = await insertSession(f.world.sql, s);
    const killed = await insertSession(f.world.sql, s + 3000);
    const server = await insertServer(f.world.sql, `ports-${s}`);
    await f.world.sql`INSERT INTO server_ports (server_id, port, protocol, session_id)
      VALUES (${server}, 27015, 'UDP', ${cancelled}), (${server}, 27016, 'TCP', ${killed}), (${server}, 27017, 'TCP', ${killed})`;
    await send(cancelled, s, "starting");
    await send(cancelled, 0, "stopping");
    await send(cancelled, 0, "stopped");
    await send(killed, s + 3000, "starting");
    await send(killed, s + 3000, "running");
    await send(killed, 0, "stopped"); // a kill: no stopping, sgc_id 0
    await waitFor(async () => (await row(cancelled)).status === "stopped" && (await row(killed)).status === "stopped");
    expect(await f.world.sql`SELECT port FROM server_ports WHERE server_id = ${server}`).toHaveLength(0);
    await waitFor(() => announced(killed).length === 2);
    // The row's sgc_id, never the message's 0.
    expect(announced(killed)[1]).toEqual({ routingKey: "manman.session.stopped", body: { session_id: killed, sgc_id: s + 3000, status: "stopped" } });
    expect(announced(cancelled)).toEqual([{ routingKey: "manman.session.stopped", body: { session_id: cancelled, sgc_id: s, status: "stopped" } }]);
    expect(f.peer.deadLettered).toHaveLength(0);
  });

  test("running while still pending waits for its starting; without one it is dead-lettered after the window", async () => {
    const s = ++sgc;
    const overtaken = await insertSession(f.world.sql, s);
    const orphan = await insertSession(f.world.sql, s + 4000);
    await send(overtaken, s, "running"); // overtook its "starting" (another replica, a requeue)
    await send(orphan, s + 4000, "running");
    await new Promise((r) => setTimeout(r, 300));
    await send(overtaken, s, "starting");
    await waitFor(async () => (await row(overtaken)).status === "running", 10_000, "running after its starting");
    const dead = await waitFor(() => f.peer.deadLettered.find((d) => JSON.parse(d.body).session_id === orphan), 15_000);
    expect(String(dead.headers["x-death-reason"])).toContain("pending -> running skips starting: its predecessor did not arrive");
    expect((await row(orphan)).status).toBe("pending");
  });

  test("a session becoming running stops every other unended session of its game server config", async () => {
    const s = ++sgc;
    const old1 = await insertSession(f.world.sql, s, "running");
    const old2 = await insertSession(f.world.sql, s, "stopping");
    const done = await insertSession(f.world.sql, s, "crashed");
    const other = await insertSession(f.world.sql, s + 1000, "running");
    const id = await insertSession(f.world.sql, s, "starting");
    const server = await insertServer(f.world.sql, `supersede-${s}`);
    await f.world.sql`INSERT INTO server_ports (server_id, port, protocol, session_id) VALUES (${server}, 7777, 'UDP', ${old1}), (${server}, 7778, 'UDP', ${other})`;
    await send(id, 0, "running"); // sgc_id comes from the row, not the message
    await waitFor(async () => (await row(id)).status === "running");
    expect((await f.world.sql`SELECT port FROM server_ports WHERE server_id = ${server}`).map((r) => r.port)).toEqual([7778]);
    for (const old of [old1, old2]) {
      expect((await row(old)).status).toBe("stopped");
      expect((await row(old)).ended_at).not.toBeNull();
    }
    expect((await row(done)).status).toBe("crashed");
    expect((await row(other)).status).toBe("running");
    await waitFor(() => announced(old1).length === 1 && announced(old2).length === 1);
    expect(announced(old1)[0]).toEqual({ routingKey: "manman.session.stopped", body: { session_id: old1, sgc_id: s, status: "stopped" } });
    expect(await timeline(old1)).toEqual([{ from_status: "running", to_status: "stopped", exit_code: null, routing_key: `status.session.${id}`, reason: "superseded", by_session_id: id }]);
    expect((await timeline(old2))[0]).toMatchObject({ from_status: "stopping", to_status: "stopped", reason: "superseded" });
    expect(await timeline(done)).toEqual([]);
  });

  test("a session stuck in pending, starting or stopping past the threshold becomes lost and is announced", async () => {
    const s = ++sgc;
    const id = await insertSession(f.world.sql, s, "starting");
    const running = await insertSession(f.world.sql, s + 2000, "running");
    const server = await insertServer(f.world.sql, `stuck-${s}`);
    await f.world.sql`INSERT INTO server_ports (server_id, port, protocol, session_id) VALUES (${server}, 25565, 'TCP', ${id}), (${server}, 25566, 'TCP', ${running})`;
    await backdateUpdatedAt(f.world.sql, "sessions", [id, running], 60);
    await waitFor(async () => (await row(id)).status === "lost", 15_000, "lost");
    expect((await row(id)).ended_at).not.toBeNull();
    await waitFor(() => announced(id).length === 1);
    expect(announced(id)[0]).toEqual({ routingKey: "manman.session.lost", body: { session_id: id, sgc_id: s, status: "lost", log_tail: [] } });
    expect(await timeline(id)).toEqual([{ from_status: "starting", to_status: "lost", exit_code: null, routing_key: null, reason: "stale_sweep", by_session_id: null }]);
    expect((await row(running)).status).toBe("running");
    // The lost session's port is freed in the same statement; the running one keeps its own.
    expect((await f.world.sql`SELECT port FROM server_ports WHERE server_id = ${server}`).map((r) => r.port)).toEqual([25566]);
  });
});
