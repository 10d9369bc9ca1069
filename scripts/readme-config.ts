/**
 * Prints the configuration table of docs/configuration.md from src/config.ts's
 * SETTINGS, so the table is regenerated rather than edited:
 * `bun scripts/readme-config.ts`, then paste it over the table there.
 * test/readme-documents-every-setting.test.ts fails when they drift.
 */
import { SETTINGS } from "../src/config.ts";

export function configTable(): string {
  const rows = (Object.values(SETTINGS) as { env: string; default?: string; help: string }[]).map(
    (s) => `| \`${s.env}\` | ${s.default === undefined ? "unset" : s.default === "" ? "empty" : "`" + s.default + "`"} | ${s.help.replace(/\|/g, "\\|")} |`,
  );
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

if (import.meta.main) console.log(configTable());
