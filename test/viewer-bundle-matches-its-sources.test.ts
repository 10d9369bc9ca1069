import { expect, test } from "bun:test";
import { buildViewerAssets } from "../src/web/build.ts";
import { VIEWER_ASSETS } from "../src/web/bundle.gen.ts";

// The served bundle is committed (src/web/bundle.gen.ts), so tests, tsc and
// the compiled binary need no build step; this keeps it honest.
test("the committed viewer bundle is the one its sources build (else: bun run build:web)", async () => {
  const fresh = await buildViewerAssets();
  expect(VIEWER_ASSETS.css.hash).toBe(fresh.css.hash);
  expect(VIEWER_ASSETS.js.hash).toBe(fresh.js.hash);
});

test("the bundle loads nothing from elsewhere and never parses HTML", () => {
  const js = VIEWER_ASSETS.js.body;
  expect(js).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i);
  expect(js).not.toContain("innerHTML");
  expect(js).not.toContain("insertAdjacentHTML");
  expect(js).not.toContain("document.write");
});
