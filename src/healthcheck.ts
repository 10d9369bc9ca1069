/**
 * `manman-processor healthcheck`: the container's HEALTHCHECK without curl.
 * The runtime image holds only the binary, so the binary asks itself: one
 * GET to the running service on HEALTH_CHECK_PORT, exit 0 on 200.
 */
import { errorMessage } from "./util/errors.ts";

// 3 s: Docker's default HEALTHCHECK timeout is 30 s and the kubelet's probe
// timeout defaults to 1 s; /healthz answers in milliseconds, so 3 s only ever
// expires on a process that is wedged, which is what a failed check means.
const PROBE_TIMEOUT_MS = 3000;

export interface HealthcheckResult {
  /** Process exit status: 0 healthy, 1 not. */
  exitCode: 0 | 1;
  /** One line for stdout/stderr. */
  line: string;
}

/**
 * Asks http://127.0.0.1:<port><path>. Loopback, not 0.0.0.0: the check runs
 * inside the container or pod, beside the service.
 */
export async function runHealthcheck(
  port: number,
  path: "/healthz" | "/readyz",
  fetchImpl: typeof fetch = fetch,
): Promise<HealthcheckResult> {
  const url = `http://127.0.0.1:${port}${path}`;
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = (await res.text()).trim();
    return res.status === 200
      ? { exitCode: 0, line: `${url}: ${res.status} ${body}` }
      : { exitCode: 1, line: `${url}: ${res.status} ${body}` };
  } catch (err) {
    return { exitCode: 1, line: `${url}: ${errorMessage(err)}` };
  }
}
