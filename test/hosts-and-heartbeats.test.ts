import { describe, expect, test } from "bun:test";
import { insertServer, useProcessor, waitFor } from "./support/processor.ts";

// A 2 s threshold keeps the stale tests short; sweeps run every second.
const f = useProcessor("hosts", { STALE_HOST_THRESHOLD_SECONDS: "2" });

const server = async (id: number) => (await f.world.sql`SELECT status, last_seen, updated_at FROM servers WHERE server_id = ${id}`)[0]!;

describe("host status", () => {
  test("an online message sets the row online, stamps last_seen and announces manman.host.online", async () => {
    const id = await insertServer(f.world.sql, "host-online");
    await f.peer.publish(`status.host.${id}`, { server_id: id, status: "online" });
    await waitFor(async () => (await server(id)).status === "online", 10_000, "server online");
    expect((await server(id)).last_seen).not.toBeNull();
    const ev = await waitFor(() => f.peer.events("manman.host.online").find((e) => (e.body as { server_id: number }).server_id === id));
    expect(ev.body).toEqual({ server_id: id, status: "online" });
  });

  test("an offline message sets the row offline and announces manman.host.offline", async () => {
    const id = await insertServer(f.world.sql, "host-offline", "online");
    await f.peer.publish(`status.host.${id}`, { server_id: id, status: "offline", extra_field: "ignored" });
    const ev = await waitFor(() => f.peer.events("manman.host.offline").find((e) => (e.body as { server_id: number }).server_id === id));
    expect(ev.body).toEqual({ server_id: id, status: "offline" });
    expect((await server(id)).status).toBe("offline");
  });
});

describe("heartbeats and stale hosts", () => {
  test("a silent host is marked offline and announced as manman.host.stale; a heartbeat brings it back online", async () => {
    const id = await insertServer(f.world.sql, "host-stale");
    await f.peer.publish(`health.host.${id}`, { server_id: id, session_stats: { total: 1, running: 1 } });
    await waitFor(() => f.peer.events("manman.host.online").find((e) => (e.body as { server_id: number }).server_id === id), 10_000, "back online");
    // Silent past the 2 s threshold: detected within threshold + 2 s (and then some for a busy machine).
    const stale = await waitFor(() => f.peer.events("manman.host.stale").find((e) => (e.body as { server_id: number }).server_id === id), 15_000, "stale event");
    expect(stale.body).toEqual({ server_id: id, status: "offline" });
    expect((await server(id)).status).toBe("offline");

    const onlineBefore = f.peer.events("manman.host.online").filter((e) => (e.body as { server_id: number }).server_id === id).length;
    await f.peer.publish(`health.host.${id}`, { server_id: id });
    await waitFor(async () => (await server(id)).status === "online", 10_000, "online again");
    await waitFor(() => f.peer.events("manman.host.online").filter((e) => (e.body as { server_id: number }).server_id === id).length === onlineBefore + 1);
  });

  test("heartbeats of an online host announce nothing and keep it online", async () => {
    const id = await insertServer(f.world.sql, "host-steady");
    for (let i = 0; i < 5; i++) await f.peer.publish(`health.host.${id}`, { server_id: id });
    await waitFor(async () => (await server(id)).status === "online");
    await Bun.sleep(300);
    expect(f.peer.events("manman.host.online").filter((e) => (e.body as { server_id: number }).server_id === id)).toHaveLength(1);
  });

  test("a heartbeat racing the sweep never loses: the host ends online, and every stale event is followed by an online one", async () => {
    const id = await insertServer(f.world.sql, "host-race");
    // Push last_seen to the edge of the threshold over and over while the
    // sweeper runs every second, then keep heartbeating.
    for (let round = 0; round < 6; round++) {
      await f.world.sql`UPDATE servers SET status = 'online', last_seen = now() - interval '1900 milliseconds' WHERE server_id = ${id}`;
      await f.peer.publish(`health.host.${id}`, { server_id: id });
      await Bun.sleep(150);
    }
    await f.peer.publish(`health.host.${id}`, { server_id: id });
    await waitFor(async () => {
      const s = await server(id);
      return s.status === "online" && Date.now() - new Date(s.last_seen).getTime() < 60_000;
    });
    await Bun.sleep(500);
    const mine = f.peer.external.filter((e) => JSON.parse(e.body).server_id === id).map((e) => e.routingKey);
    // Whatever interleaving happened, announcements alternate and end online.
    for (let i = 0; i < mine.length; i++) {
      if (mine[i] === "manman.host.stale") expect(mine[i + 1]).toBe("manman.host.online");
    }
    expect((await server(id)).status).toBe("online");
  });

  test("a deleted host's heartbeats are acked and counted, not dead-lettered, and logged once per 10 minutes", async () => {
    for (let i = 0; i < 3; i++) await f.peer.publish("health.host.999999", { server_id: 999999, session_stats: { total: 0 } });
    await f.peer.publish("status.host.999999", { server_id: 999999, status: "offline" });
    const counted = () =>
      f.processor.service.metrics.get("manman_event_messages_total", { kind: "heartbeat", outcome: "unknown_server" }) +
      f.processor.service.metrics.get("manman_event_messages_total", { kind: "host_status", outcome: "unknown_server" });
    await waitFor(() => counted() === 4);
    expect(f.peer.deadLettered.filter((d) => d.routingKey.endsWith(".999999"))).toHaveLength(0);
    expect(f.processor.logs.filter((l) => String(l.msg).startsWith("message for a server with no row") && l.server_id === 999999)).toHaveLength(1);
  });
});
