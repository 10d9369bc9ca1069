/**
 * `bun run build`: the two shippable artefacts.
 *
 *   dist/manman-processor     one executable (bun build --compile): runtime,
 *                             code, migrations, generated protobuf code and
 *                             viewer assets, nothing else needed on the host
 *   dist/manman-processor.js  one ESM file for `deno run -A`
 *
 * Everything the service needs at run time is reached through ordinary
 * imports (migrations and viewer assets are TypeScript strings), so both
 * bundles carry it without file embedding or file access. The viewer's
 * module (src/web/bundle.gen.ts) is committed and kept fresh by its own
 * script and test (`bun run build:web`); this build does not rewrite sources.
 *
 * Configuration is read at run time only, never baked in:
 * - `env: "disable"`: no `process.env.X` is replaced by its build-time value
 *   (oven-sh/bun#11191);
 * - NODE_ENV is defined as a run-time lookup, because Bun.build inlines the
 *   build machine's NODE_ENV even with `env: "disable"` (oven-sh/bun#19508,
 *   #26994);
 * - the executable does not load a `.env` or `bunfig.toml` from the folder it
 *   starts in (`autoloadDotenv/autoloadBunfig: false`), which compiled
 *   binaries otherwise do.
 * test/support/shipped.ts checks all three on the built files (run by
 * test/binary-runs-alone-from-an-empty-folder-and-environment.test.ts and
 * test/deno-runs-the-same-bundle-with-the-same-behaviour.test.ts).
 *
 * Options: --outdir DIR (default dist; tests build into a temp folder),
 * --only binary|deno.
 */
import { mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "..");
const ENTRY = join(root, "src/main.ts");
export const BINARY_NAME = "manman-processor";
export const BUNDLE_NAME = "manman-processor.js";

// Keep the expression different from the key, or the define would rewrite
// its own replacement; `globalThis.process` is the same object at run time.
const RUNTIME_ONLY_DEFINES = { "process.env.NODE_ENV": "globalThis.process.env.NODE_ENV" };

const { values: opts } = parseArgs({
  options: { outdir: { type: "string", default: join(root, "dist") }, only: { type: "string" } },
});
const outdir = resolve(opts.outdir!);
if (opts.only !== undefined && opts.only !== "binary" && opts.only !== "deno") {
  console.error(`--only must be binary or deno, got ${opts.only}`);
  process.exit(2);
}
mkdirSync(outdir, { recursive: true });

async function bundle(what: string, options: Omit<Bun.BuildConfig, "entrypoints">): Promise<void> {
  const started = performance.now();
  const result = await Bun.build({
    env: "disable",
    define: RUNTIME_ONLY_DEFINES,
    sourcemap: "none",
    ...options,
    entrypoints: [ENTRY],
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`${what}: build failed`);
  }
  for (const log of result.logs) console.warn(log);
  const file = result.outputs[0]!.path;
  const mib = (statSync(file).size / 2 ** 20).toFixed(1);
  console.log(`${what}: ${file} (${mib} MiB, ${Math.round(performance.now() - started)} ms)`);
}

if (opts.only !== "deno") {
  await bundle("binary", {
    // Minified: smaller and quicker to parse at start. Names kept so stack
    // traces and `err.name` checks read the same as in development.
    minify: { whitespace: true, syntax: true, identifiers: true, keepNames: true },
    compile: {
      outfile: join(outdir, BINARY_NAME),
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
  });
}

if (opts.only !== "binary") {
  await bundle("deno bundle", {
    // "node" resolves packages' node conditions (postgres.js and amqp-client
    // use node:net, which Deno provides) and keeps Bun-only globals out.
    target: "node",
    format: "esm",
    // Readable: operators may need to read a stack trace from this file.
    minify: { syntax: true },
    outdir,
    naming: BUNDLE_NAME,
  });
}
