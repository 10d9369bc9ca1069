import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configTable } from "../scripts/readme-config.ts";

test("README's configuration table is the one src/config.ts describes", () => {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  // Regenerate with: bun scripts/readme-config.ts
  expect(readme).toContain(configTable());
});
