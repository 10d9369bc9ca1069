import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const SRC = join(import.meta.dir, "..", "src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" ? [] : sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

// postgres.js tagged templates send every ${value} as a bind parameter;
// only `unsafe` (and the sql(string) helper for identifiers) take raw text.
test("SQL is parameterised everywhere: raw SQL text only in the migrations, which are fixed strings", () => {
  const raw = sources(SRC).flatMap((file) =>
    readFileSync(file, "utf8")
      .split("\n")
      .map((line, i) => ({ file: relative(SRC, file), line: i + 1, text: line }))
      .filter((l) => /\.unsafe\s*\(/.test(l.text)),
  );
  expect(raw.map((r) => `${r.file}:${r.line}`)).toEqual([expect.stringMatching(/^db\/migrate\.ts:\d+$/)]);
  expect(raw[0]!.text).toContain("unsafe(m.sql)");
  // …and those strings are constants with no interpolation.
  const migrations = readFileSync(join(SRC, "db", "migrations.ts"), "utf8");
  expect(migrations).not.toContain("${");
});
