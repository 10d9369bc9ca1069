/**
 * The map of docs/architecture.md, checked: each folder's imports stay
 * within what its layer may import, and no imports form a circle, between
 * files or between folders. Imports are read from the source text (type-only
 * imports count: a type is a dependency too).
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = join(import.meta.dir, "..", "src");

type Layer = "kit" | "core" | "adapter" | "wiring" | "top" | "gen";
const MAP = readFileSync(join(import.meta.dir, "..", "docs", "architecture.md"), "utf8");
/** The layer table of docs/architecture.md: | `folder/` | layer | — the map is the truth, this test holds the code to it. */
const LAYER: Record<string, Layer> = Object.fromEntries(
  [...MAP.matchAll(/^\| `([\w.-]+)\/?` \| (kit|core|adapter|wiring|top|gen) \|$/gm)].map((m) => [m[1]!, m[2] as Layer]),
);
/** What each layer may import besides its own folder (the map's second table). Top-level files are leaves every adapter and wiring file may use. */
const MAY_IMPORT: Record<Layer, Layer[]> = {
  kit: [],
  core: ["kit", "gen"],
  adapter: ["core", "kit", "gen", "adapter", "top"],
  wiring: ["kit", "core", "adapter", "wiring", "top", "gen"],
  top: ["kit"],
  gen: [],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" ? [] : sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

const IMPORT = /^\s*(?:import|export)\s[\w*\s{},$]*?from\s+["'](\.{1,2}\/[^"']+)["']|^\s*import\s+["'](\.{1,2}\/[^"']+)["']/gm;
const graph = new Map<string, string[]>();
for (const file of sources(SRC)) {
  const text = readFileSync(file, "utf8");
  const deps = [...text.matchAll(IMPORT)]
    .map((m) => relative(SRC, resolve(dirname(file), m[1] ?? m[2]!)))
    .filter((dep) => !dep.startsWith("..")); // package.json and the like: not code of a layer
  graph.set(relative(SRC, file), deps);
}
const folder = (path: string) => path.split("/")[0]!;

test("every folder and top-level file has a layer in the map, and the map names nothing that is not there", () => {
  expect(Object.keys(LAYER).length).toBeGreaterThan(10); // the table was found
  expect([...new Set([...graph.keys()].map(folder))].filter((f) => !(f in LAYER))).toEqual([]);
  const present = new Set(readdirSync(SRC));
  expect(Object.keys(LAYER).filter((f) => !present.has(f))).toEqual([]);
});

test("every source file the map names exists", () => {
  const named = [...new Set([...MAP.matchAll(/`((?:[\w-]+\/)+[\w.-]+\.ts)`/g)].map((m) => m[1]!))].filter((p) => p.split("/")[0]! in LAYER);
  const missing = named.filter((p) => !existsSync(join(SRC, p)));
  expect(missing).toEqual([]);
});

test("imports stay within what each layer may import", () => {
  const crossings: string[] = [];
  for (const [file, deps] of graph) {
    const from = LAYER[folder(file)]!;
    for (const dep of deps) {
      if (folder(dep) === folder(file)) continue;
      const to = LAYER[folder(dep)];
      const allowed = to !== undefined && (MAY_IMPORT[from].includes(to) || (file === "cli.ts" && dep === "config.ts"));
      if (!allowed) crossings.push(`${file} (${from}) imports ${dep} (${to ?? "unmapped"})`);
    }
  }
  expect(crossings).toEqual([]);
});

test("no import circles between files", () => {
  const circles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (state.get(dep) === "open") circles.push([...path.slice(path.indexOf(dep)), dep].join(" -> "));
      else if (!state.has(dep)) visit(dep);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  expect(circles).toEqual([]);
});

test("no import circles between folders", () => {
  const edges = new Map<string, Set<string>>();
  for (const [file, deps] of graph) {
    for (const dep of deps) if (folder(dep) !== folder(file)) edges.set(folder(file), (edges.get(folder(file)) ?? new Set()).add(folder(dep)));
  }
  const both = [...edges].flatMap(([a, bs]) => [...bs].filter((b) => a < b && edges.get(b)?.has(a)).map((b) => `${a} <-> ${b}`));
  expect(both).toEqual([]);
});
