/**
 * dist/manman-processor, copied alone into an empty folder and started with
 * nothing but the service URLs in its environment, does the whole job.
 */
import { smokeTestArtefact } from "./support/shipped.ts";

smokeTestArtefact("the compiled binary", {
  only: "binary",
  file: "manman-processor",
  command: (path, args) => [path, ...args],
});
