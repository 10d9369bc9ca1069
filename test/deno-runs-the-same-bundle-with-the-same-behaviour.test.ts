/**
 * dist/manman-processor.js under `deno run -A` (Deno from the npm package),
 * copied alone into an empty folder, passes the same smoke test as the binary.
 */
import { join } from "node:path";
import { smokeTestArtefact } from "./support/shipped.ts";

const DENO = join(import.meta.dir, "..", "node_modules", "deno", "deno");

smokeTestArtefact("the Deno bundle", {
  only: "deno",
  file: "manman-processor.js",
  command: (path, args) => [DENO, "run", "-A", path, ...args],
});
