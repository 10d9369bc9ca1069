/**
 * Counters and gauges an operator alerts on, served as Prometheus text at
 * GET /metrics. Hand-written because it is ~50 lines; a client library would
 * add a dependency for the same output.
 */
export type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, number>;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(name: string, type: Family["type"], help: string): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, values: new Map() }));
    return f;
  }

  /** Adds `by` (default 1) to a counter. */
  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const f = this.family(name, "counter", help);
    const key = labelKey(labels);
    f.values.set(key, (f.values.get(key) ?? 0) + by);
  }

  /** Sets a gauge to a value read now. */
  set(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(name, "gauge", help).values.set(labelKey(labels), value);
  }

  /** Current value, for tests and readiness logic. */
  get(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  /** Sum over every label set of a family. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.families.get(name)?.values.values() ?? []) sum += v;
    return sum;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const [key, value] of f.values) lines.push(`${name}${key} ${value}`);
    }
    return lines.join("\n") + "\n";
  }
}

// Label sets are few by design (a handful per family), but inc() runs for
// every event message: the rendered key is kept by a cheap fingerprint of the
// labels, so the sort and the escaping run once per label set, not per call
// (bench:events profile). 10,000 sets is far more than any family has; past
// it the cache starts over rather than grow.
const LABEL_KEYS_MAX = 10_000;
const labelKeys = new Map<string, string>();

function labelKey(labels: Labels): string {
  let fingerprint = "";
  for (const k in labels) fingerprint += k + "\u0000" + labels[k] + "\u0001";
  if (fingerprint === "") return "";
  let key = labelKeys.get(fingerprint);
  if (key === undefined) {
    if (labelKeys.size >= LABEL_KEYS_MAX) labelKeys.clear();
    labelKeys.set(fingerprint, (key = renderLabels(labels)));
  }
  return key;
}

function renderLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  entries.sort(([a], [b]) => (a < b ? -1 : 1));
  return "{" + entries.map(([k, v]) => `${k}="${v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c))}"`).join(",") + "}";
}
