import { describe, expect, test } from "bun:test";
import { timelineEntries } from "./timeline.ts";

const iso = (ms: number) => new Date(ms).toISOString();

describe("the session timeline above the log", () => {
  test("each move reads time, from → to and the exit code, oldest first", () => {
    const entries = timelineEntries(
      [
        { at: 1000, from: "pending", to: "starting", reason: "message", routingKey: "status.session.7" },
        { at: 2000, from: "running", to: "crashed", exitCode: 137, reason: "message", routingKey: "status.session.7" },
      ],
      iso,
    );
    expect(entries.map((e) => [e.at, e.time, e.move, e.exit, e.to])).toEqual([
      [1000, "1970-01-01T00:00:01.000Z", "pending → starting", "", "starting"],
      [2000, "1970-01-01T00:00:02.000Z", "running → crashed", "exit 137", "crashed"],
    ]);
    expect(entries[1]!.why).toBe("reported by the host (status.session.7)");
  });

  test("an exit code of 0 is shown; superseded and swept moves say why", () => {
    const [stopped, superseded, lost, other] = timelineEntries(
      [
        { at: 1, from: "stopping", to: "stopped", exitCode: 0, reason: "message", routingKey: "k" },
        { at: 2, from: "running", to: "stopped", reason: "superseded", routingKey: "status.session.9", bySessionId: 9 },
        { at: 3, from: "starting", to: "lost", reason: "stale_sweep", routingKey: "" },
        { at: 4, from: "starting", to: "lost", reason: "something new", routingKey: "" },
      ],
      iso,
    );
    expect(stopped!.exit).toBe("exit 0");
    expect(superseded!.why).toContain("session 9");
    expect(lost!.why).toContain("stale-session threshold");
    expect(other!.why).toBe("something new");
  });
});
