/**
 * Who may call the log services, from the settings: LOG_ACCESS_TOKEN,
 * GRPC_AUTH_MODE=oidc (GRPC_OIDC_ISSUER, GRPC_OIDC_CLIENT_ID) and
 * LOG_ACCESS (rpc/access.ts decides per call). One check for LogProcessor,
 * LogHistory and SessionViewer on both ports; one log line at start says
 * which mode is on.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { createAccessCheck, type AccessCheck } from "../rpc/access.ts";
import { createOidcVerifier } from "../rpc/oidc.ts";
import { errorMessage } from "../util/errors.ts";

type AccessSettings = Pick<Config, "logAccessTokens" | "logAccess" | "grpcAuthMode" | "grpcOidcIssuer" | "grpcOidcClientId">;

export function createLogAccess(config: AccessSettings, logger: Logger): AccessCheck {
  const log = logger.child({ component: "log_access" });
  const oidc =
    config.grpcAuthMode === "oidc" && config.grpcOidcIssuer && config.grpcOidcClientId
      ? createOidcVerifier({ issuer: config.grpcOidcIssuer, clientId: config.grpcOidcClientId })
      : undefined;
  const access = createAccessCheck({ tokens: config.logAccessTokens ?? [], oidc, access: config.logAccess });
  const fields = { mode: access.mode, ...(oidc ? { oidc_issuer: config.grpcOidcIssuer, oidc_client_id: config.grpcOidcClientId } : {}) };
  if (access.mode === "open") log.warn(access.summary, fields);
  else log.info(access.summary, fields);
  if (access.mode === "credentials" && config.logAccess === "open") {
    log.info("LOG_ACCESS=open has no effect: credentials are configured, so every call needs one");
  }
  // Read the issuer's keys now, so the first call does not wait for them and
  // a wrong issuer shows at start; calls retry it if it is down now.
  oidc?.warm().then(
    () => log.info("OIDC issuer reached; its keys are loaded", { oidc_issuer: config.grpcOidcIssuer }),
    (err) => log.warn("OIDC issuer not reachable at start; calls with OIDC tokens fail UNAVAILABLE until it is", { oidc_issuer: config.grpcOidcIssuer, error: errorMessage(err) }),
  );
  return access;
}
