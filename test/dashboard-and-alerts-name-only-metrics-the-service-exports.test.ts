/**
 * deploy/monitoring/grafana-dashboard.json and deploy/monitoring/prometheus-rules.yaml are
 * checked against the service: every metric they name is one the code
 * exports, read from a running processor's /metrics after some traffic
 * (with the labels the queries use), or, for the few that only appear after
 * a rare event, found in the source; and the rules cover each metric of
 * docs/failure-behaviour.md's "What to alert on".
 */
import { beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { insertServer, insertSession, useProcessor, waitFor } from "./support/processor.ts";

const ROOT = join(import.meta.dir, "..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

interface Panel {
  title: string;
  targets?: { expr: string; legendFormat?: string }[];
}
const dashboard = JSON.parse(read("deploy/monitoring/grafana-dashboard.json")) as { panels: Panel[] };
const rules = Bun.YAML.parse(read("deploy/monitoring/prometheus-rules.yaml")) as {
  apiVersion: string;
  kind: string;
  spec: { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: Record<string, string> }[] }[] };
};
const alerts = rules.spec.groups.flatMap((g) => g.rules);
/** Every query, with its legend template and where it is. */
const queries = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr, legend: t.legendFormat ?? "" }))),
  ...alerts.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr, legend: "" })),
];

const FUNCTIONS = new Set(["sum", "max", "min", "avg", "count", "rate", "increase", "deriv", "absent", "min_over_time", "max_over_time"]);
const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "bool"]);
// Labels Prometheus adds to every series of a scraped target.
const TARGET_LABELS = new Set(["instance", "job", "pod", "namespace", "container"]);
// Series other exporters provide: kube-state-metrics's readiness of a pod (/readyz as Kubernetes sees it).
const EXTERNAL = new Set(["kube_pod_status_ready"]);
// Families that exist only after a rare event, not made in this test; each is still checked against the source.
const RARE: Record<string, string> = {
  manman_dead_letters_dropped_total: "a full dead-letter queue (test/dead-letters-are-bounded-in-age-and-count.test.ts)",
  manman_event_retries_total: "a statement that times out",
  manman_event_early_retries_total: "running before starting",
  manman_event_messages_left_for_redelivery_total: "a lost channel or a shutdown",
  manman_external_events_deferred_total: "a refused publish",
  manman_external_events_relayed_total: "the relay after a refused publish",
  manman_outbox_commands_published_total: "a backup command (needs S3)",
  manman_broker_disconnects_total: "a lost broker connection",
  manman_database_outages_total: "a database outage",
  manman_database_connection_losses_total: "a lost database connection",
  manman_event_consumer_reattached_total: "a lost event consumer",
  manman_processor_role_given_up_total: "a database that stops answering the active replica",
  manman_unhandled_errors_total: "a rejection nobody handled",
  manman_log_streams_ended_total: "a log stream that ended",
  manman_log_streams_refused_total: "a log stream past LOG_STREAMS_MAX or LOG_STREAMS_PER_CLIENT_MAX",
  manman_log_queue_full_total: "a log queue at LOG_QUEUE_MAX_LENGTH (a replica far behind its lines)",
  manman_log_archive_consumer_reattached_total: "a lost archive consumer",
  manman_log_history_objects_skipped_total: "a history read of a bad object",
  manman_backups_scheduled_total: "a due backup (needs S3)",
  manman_backups_failed_stale_total: "a backup stale for BACKUP_STALE_HOURS",
  manman_backup_pre_actions_skipped_total: "a pre-action that cannot be rendered",
  manman_backup_scans_total: "a scan (needs S3)",
};

/** The metric names, label names and functions a PromQL expression uses. */
function parse(expr: string): { metrics: { name: string; labels: string[] }[]; grouping: string[]; functions: string[] } {
  const metrics: { name: string; labels: string[] }[] = [];
  const grouping: string[] = [];
  const functions: string[] = [];
  let rest = expr.replace(/\[[^\]]*\]/g, " "); // range selectors
  rest = rest.replace(/([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g, (_m, name: string, matchers: string) => {
    metrics.push({ name, labels: [...matchers.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!) });
    return " ";
  });
  rest = rest.replace(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g, (_m, _k, labels: string) => {
    grouping.push(...labels.split(",").map((l) => l.trim()).filter(Boolean));
    return " ";
  });
  for (const m of rest.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, word, call] = m;
    if (KEYWORDS.has(word!)) continue;
    if (call) functions.push(word!);
    else metrics.push({ name: word!, labels: [] });
  }
  return { metrics, grouping, functions };
}

/** The service's source files (tests and generated code left out), with their text. */
function sources(dir = join(ROOT, "src")): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" ? [] : sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [readFileSync(path, "utf8")] : [];
  });
}
const SOURCE = sources();

/** Every `manman_…` string literal in the source. */
function sourceNames(): Set<string> {
  return new Set(SOURCE.flatMap((text) => [...text.matchAll(/"(manman_[a-z_]+)"/g)].map((m) => m[1]!)));
}

/**
 * The label names the source gives a family: the keys of the `{ … }` in each
 * statement that names it, by its literal or by the constant holding it
 * (`metrics.inc("manman_x_total", "help", { reason }, n)`).
 */
function sourceLabels(name: string): Set<string> {
  const out = new Set<string>();
  for (const text of SOURCE) {
    const handles = [`"${name}"`, ...[...text.matchAll(new RegExp(`const (\\w+) = "${name}"`, "g"))].map((m) => m[1]!)];
    for (const handle of handles) {
      for (let at = text.indexOf(handle); at >= 0; at = text.indexOf(handle, at + 1)) {
        const statement = text.slice(at, text.indexOf(";\n", at)); // to the statement's end (a help text may hold a ";")
        for (const obj of statement.matchAll(/\{([^{}]*)\}/g)) for (const k of obj[1]!.matchAll(/(\w+)\s*(?:[:,]|$)/g)) out.add(k[1]!);
      }
    }
  }
  return out;
}

/** Family name → the label names its series carry, from Prometheus text. */
function exported(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? /.exec(line);
    if (!m) continue;
    const labels = out.get(m[1]!) ?? new Set<string>();
    for (const l of (m[3] ?? "").matchAll(/(\w+)="/g)) labels.add(l[1]!);
    out.set(m[1]!, labels);
  }
  return out;
}

const f = useProcessor("dashboards");
let families: Map<string, Set<string>>;

beforeAll(async () => {
  // Traffic: a host online (applied, announced), a heartbeat for no row, a
  // bad message (dead-lettered), a session's log line (ingested).
  const serverId = await insertServer(f.world.sql, "dash-host");
  const sessionId = await insertSession(f.world.sql, 1, "running");
  await f.peer.publish(`status.host.${serverId}`, { server_id: serverId, status: "online" });
  await f.peer.publish("health.host.424242", { server_id: 424242 });
  await f.peer.publish("status.session.1", "{not json");
  await f.peer.publish(`logs.session.${sessionId}`, { session_id: sessionId, timestamp: Date.now(), source: "stdout", message: "hello" });
  await waitFor(() => f.peer.deadLettered.length === 1 && f.peer.events("manman.host").length === 1, 20_000, "traffic handled");
  await waitFor(() => f.processor.service.metrics.total("manman_log_lines_ingested_total") >= 1, 20_000, "a line ingested");
  // The archive publishes its figures on its tick.
  const text = await waitFor(async () => {
    const t = await (await fetch(f.processor.url("/metrics"))).text();
    return t.includes("manman_log_archive_consumer_attached") ? t : undefined;
  }, 20_000, "the archive's figures");
  families = exported(text);
}, 60_000);

test("the rules are a PrometheusRule whose alerts all have a severity, a summary and a description", () => {
  expect(rules.apiVersion).toBe("monitoring.coreos.com/v1");
  expect(rules.kind).toBe("PrometheusRule");
  expect(alerts.length).toBeGreaterThan(10);
  for (const a of alerts) {
    expect(["critical", "warning", "info"]).toContain(a.labels.severity);
    expect(a.annotations.summary).toBeTruthy();
    expect(a.annotations.description).toBeTruthy();
  }
  expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
});

test("every metric a query names is exported by the service: on /metrics after traffic, or (a rare event's) in the source", () => {
  const source = sourceNames();
  const problems: string[] = [];
  for (const q of queries) {
    const { metrics, functions } = parse(q.expr);
    if (metrics.length === 0) problems.push(`${q.where}: names no metric`);
    for (const fn of functions) if (!FUNCTIONS.has(fn)) problems.push(`${q.where}: unknown function ${fn}`);
    for (const { name } of metrics) {
      if (EXTERNAL.has(name)) continue;
      if (!name.startsWith("manman_")) problems.push(`${q.where}: ${name} is not a metric of this service`);
      else if (!families.has(name) && !(name in RARE)) problems.push(`${q.where}: ${name} is not on /metrics after traffic (a rare event's? add it to RARE)`);
      else if (!source.has(name)) problems.push(`${q.where}: ${name} is not in the source`);
    }
  }
  expect(problems).toEqual([]);
  // (A RARE family that happens to show up anyway is fine: load can bring a retry or a reconnect.)
  for (const n of Object.keys(RARE)) expect(source.has(n)).toBe(true);
});

test("every label a query selects, groups by or shows in a legend is one its metrics carry (or a label of every scraped target)", () => {
  const problems: string[] = [];
  for (const q of queries) {
    const { metrics, grouping } = parse(q.expr);
    // A family on /metrics carries the labels seen there; a rare one, those its statements in the source give it.
    const labelsOf = (name: string) => families.get(name) ?? (name in RARE ? sourceLabels(name) : new Set<string>());
    const carried = new Set<string>(TARGET_LABELS);
    for (const m of metrics) for (const l of labelsOf(m.name)) carried.add(l);
    for (const m of metrics) {
      if (EXTERNAL.has(m.name)) continue;
      for (const l of m.labels) if (!labelsOf(m.name).has(l) && !TARGET_LABELS.has(l)) problems.push(`${q.where}: ${m.name} has no label ${l}`);
    }
    const used = [...grouping, ...[...q.legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!)];
    for (const l of used) if (!carried.has(l)) problems.push(`${q.where}: no metric of "${q.expr}" carries ${l}`);
  }
  expect(problems).toEqual([]);
});

test("the rules alert on every metric docs/failure-behaviour.md's \"What to alert on\" names", () => {
  const doc = read("docs/failure-behaviour.md");
  const table = doc.slice(doc.indexOf("## What to alert on"), doc.indexOf("Tested (`test/fault-"));
  const named = new Set([...table.matchAll(/\b(manman_[a-z_]+)/g)].map((m) => m[1]!));
  expect(named.size).toBeGreaterThan(8);
  const inRules = new Set(alerts.flatMap((a) => parse(a.expr).metrics.map((m) => m.name)));
  expect([...named].filter((n) => !inRules.has(n))).toEqual([]);
});
