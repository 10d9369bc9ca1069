import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configTable } from "../scripts/readme-config.ts";

test("docs/configuration.md's table is the one src/config.ts describes", () => {
  const doc = readFileSync(join(import.meta.dir, "..", "docs", "configuration.md"), "utf8");
  // Regenerate with: bun scripts/readme-config.ts
  expect(doc).toContain(configTable());
});
