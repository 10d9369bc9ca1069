/**
 * No container engine or cluster here, so the Containerfile and deploy/ are
 * checked against the code they describe: the commands they run exist, the
 * ports and environment names are the service's, the probes and grace
 * period fit its health routes and drain time.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCommandLine } from "../src/cli.ts";
import { loadConfig, SETTINGS } from "../src/config.ts";

const ROOT = join(import.meta.dir, "..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
const containerfile = read("Containerfile");
const settingNames = new Set<string>(Object.values(SETTINGS).map((s) => s.env));

/** Arguments of a JSON exec-form instruction (`CMD ["a", "b"]`), without the program. */
function execForm(instruction: string): string[] {
  const m = containerfile.match(new RegExp(`^${instruction}(?:\\s+--[^\\n]*\\\\\\n)*\\s+(?:CMD\\s+)?(\\[.*\\])\\s*$`, "m"));
  if (!m) throw new Error(`no exec-form ${instruction} in Containerfile`);
  return JSON.parse(m[1]!) as string[];
}

interface Probe {
  httpGet: { path: string; port: string };
}
interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe?: Probe;
}
interface LabelSelector {
  matchLabels: Record<string, string>;
}
interface AffinityTerm {
  weight: number;
  podAffinityTerm: { topologyKey: string; labelSelector: LabelSelector };
}
const deployment = Bun.YAML.parse(read("deploy/deployment.yaml")) as {
  kind: string;
  spec: {
    replicas: number;
    strategy: { type: string; rollingUpdate?: { maxUnavailable: number; maxSurge: number } };
    selector: LabelSelector;
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds: number;
        containers: Container[];
        affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: AffinityTerm[] } };
      };
    };
  };
};
const budget = Bun.YAML.parse(read("deploy/pod-disruption-budget.yaml")) as {
  apiVersion: string;
  kind: string;
  spec: { minAvailable?: number; maxUnavailable?: number; selector: LabelSelector };
};
const service = Bun.YAML.parse(read("deploy/service.yaml")) as { kind: string; spec: { ports: { name: string; port: number; targetPort: string }[] } };
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;

describe("Containerfile", () => {
  test("its entrypoint, command and health check are commands the binary accepts", () => {
    const [entry] = execForm("ENTRYPOINT");
    const cmd = execForm("CMD");
    const [hcProgram, ...hcArgs] = execForm("HEALTHCHECK");
    expect(hcProgram).toBe(entry!);
    expect(parseCommandLine(cmd).kind).toBe("serve");
    expect(parseCommandLine(hcArgs).kind).toBe("healthcheck");
  });

  test("exposes the default HTTP and gRPC ports and runs as a non-root user", () => {
    const exposed = [...containerfile.matchAll(/^EXPOSE\s+(\d+)/gm)].map((m) => m[1]);
    expect(exposed).toEqual([SETTINGS.healthCheckPort.default, SETTINGS.grpcPort.default]);
    const user = containerfile.match(/^USER\s+(\S+)/m)?.[1];
    expect(user).toBeDefined();
    expect(user!.split(":")[0]).not.toMatch(/^(0|root)$/);
  });

  test("the runtime stage copies only the binary and the log archive's empty directory", () => {
    const runtime = containerfile.slice(containerfile.lastIndexOf("\nFROM "));
    const copies = [...runtime.matchAll(/^COPY\s+(.*)$/gm)].map((m) => m[1]);
    expect(copies).toEqual([
      "--from=build /src/dist/manman-processor /usr/local/bin/manman-processor",
      "--from=build --chown=65532:65532 /out/var/lib/manman-processor /var/lib/manman-processor",
    ]);
  });

  test("LOG_ARCHIVE_DIR is a directory the build creates, owned by the user the service runs as", () => {
    const runtime = containerfile.slice(containerfile.lastIndexOf("\nFROM "));
    const env = runtime.match(/^ENV\s+LOG_ARCHIVE_DIR=(\S+)$/m)?.[1];
    expect(env).toBe("/var/lib/manman-processor/log-archive");
    expect(settingNames).toContain("LOG_ARCHIVE_DIR");
    const build = containerfile.slice(0, containerfile.lastIndexOf("\nFROM "));
    expect(build).toMatch(new RegExp(`^RUN mkdir -p /out${env}$`, "m"));
    const owner = runtime.match(/^COPY\s+--from=build\s+--chown=(\S+)\s+\/out\/var\/lib\/manman-processor\s+\/var\/lib\/manman-processor$/m)?.[1];
    expect(owner).toBe(runtime.match(/^USER\s+(\S+)/m)?.[1]);
  });
});

describe("deploy/", () => {
  test("the Deployment sets only environment names the service reads, including CONTRACT §6's", () => {
    const names = container.env.map((e) => e.name);
    for (const name of names) expect(settingNames).toContain(name);
    for (const name of ["RABBITMQ_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "QUEUE_NAME", "HEALTH_CHECK_PORT", "GRPC_PORT"]) {
      expect(names).toContain(name);
    }
  });

  test("liveness asks /healthz and readiness /readyz on the HTTP port", () => {
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    const http = container.ports.find((p) => p.name === "http")!;
    expect(String(http.containerPort)).toBe(SETTINGS.healthCheckPort.default);
  });

  test("the grace period outlasts the service's longest drain", () => {
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(SETTINGS.shutdownTimeoutSeconds.default));
    expect(parseCommandLine(container.args).kind).toBe("serve");
  });

  test("the Service exposes the HTTP and gRPC container ports by name (not the metrics port)", () => {
    expect(service.kind).toBe("Service");
    expect(service.spec.ports.map((p) => p.targetPort).sort()).toEqual(["grpc", "http"]);
    for (const p of service.spec.ports) expect(p.port).toBe(container.ports.find((c) => c.name === p.targetPort)!.containerPort);
  });
});

/** True when every label the selector asks for is on the pod template. */
const selects = (selector: LabelSelector) => Object.entries(selector.matchLabels).every(([k, v]) => deployment.spec.template.metadata.labels[k] === v);

describe("deploy/ runs replicas (docs/replicas.md)", () => {
  test("three replicas, rolled one new pod at a time with none taken first, so a standby is always there", () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy.type).toBe("RollingUpdate");
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    expect(selects(deployment.spec.selector)).toBe(true);
  });

  test("a PodDisruptionBudget lets voluntary disruptions take one replica at a time", () => {
    expect(budget.apiVersion).toBe("policy/v1");
    expect(budget.kind).toBe("PodDisruptionBudget");
    const { minAvailable, maxUnavailable } = budget.spec;
    expect(maxUnavailable === 1 || minAvailable === deployment.spec.replicas - 1).toBe(true);
    expect(selects(budget.spec.selector)).toBe(true);
  });

  test("replicas prefer different nodes (by hostname), without refusing to schedule on a small cluster", () => {
    const terms = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(terms.length).toBeGreaterThan(0);
    expect(terms[0]!.podAffinityTerm.topologyKey).toBe("kubernetes.io/hostname");
    expect(selects(terms[0]!.podAffinityTerm.labelSelector)).toBe(true);
    expect((pod.affinity?.podAntiAffinity as Record<string, unknown>).requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
  });

  test("each replica knows its name and the failover budget, and readiness (a standby is ready) keeps it in the Service", () => {
    const names = container.env.map((e) => e.name);
    expect(names).toContain("FAILOVER_SECONDS");
    expect(names).toContain("POD_NAME");
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
  });
});

/** The `value` of an env entry, or the Secret key it reads. */
const envOf = (name: string) => container.env.find((e) => e.name === name);
const exampleSecret = Bun.YAML.parse(read("deploy/secret.yaml.example")) as { kind: string; metadata: { name: string }; stringData: Record<string, string> };

describe("deploy/ is closed as shipped (docs/security.md)", () => {
  test("LOG_ACCESS_TOKEN comes from the Secret, and no credential is written in the manifest", () => {
    expect(envOf("LOG_ACCESS_TOKEN")?.valueFrom?.secretKeyRef).toEqual({ name: "manman-processor", key: "LOG_ACCESS_TOKEN" });
    for (const name of ["LOG_ACCESS_TOKEN", "RABBITMQ_URL", "DB_PASSWORD"]) expect(envOf(name)?.value).toBeUndefined();
  });

  test("LOG_ACCESS is a value the service accepts and never open", () => {
    const value = envOf("LOG_ACCESS")?.value;
    expect(value).toBe("protected");
    expect(loadConfig({ LOG_ACCESS: value }).ok).toBe(true);
  });

  test("the example Secret holds every key the Deployment reads from it, as placeholders the service refuses", () => {
    expect(exampleSecret.kind).toBe("Secret");
    const refs = container.env.map((e) => e.valueFrom?.secretKeyRef).filter((r) => r !== undefined);
    for (const ref of refs) {
      expect(ref.name).toBe(exampleSecret.metadata.name);
      expect(Object.keys(exampleSecret.stringData)).toContain(ref.key);
      expect(exampleSecret.stringData[ref.key]).toContain("CHANGE-ME");
    }
    expect(loadConfig({ LOG_ACCESS_TOKEN: exampleSecret.stringData.LOG_ACCESS_TOKEN }).ok).toBe(false);
    // kubectl apply -f deploy/ reads .yaml, .yml and .json only: the placeholders never overwrite a real Secret.
    expect(readdirSync(join(ROOT, "deploy")).filter((f) => /\.(ya?ml|json)$/.test(f) && read(`deploy/${f}`).match(/^kind:\s*Secret/m))).toEqual([]);
  });

  test("metrics are on METRICS_PORT, a named container port Prometheus is pointed at, not the public one", () => {
    const metricsPort = envOf("METRICS_PORT")?.value;
    expect(metricsPort).toBeDefined();
    expect(container.ports.find((p) => p.name === "metrics")?.containerPort).toBe(Number(metricsPort));
    expect(deployment.spec.template.metadata.annotations?.["prometheus.io/port"]).toBe(metricsPort);
    expect(metricsPort).not.toBe(envOf("HEALTH_CHECK_PORT")?.value);
    expect(service.spec.ports.map((p) => p.targetPort)).not.toContain("metrics");
  });

  test("CORS stays off: the viewer is same-origin", () => {
    expect(envOf("CORS_ORIGINS")).toBeUndefined();
  });
});

describe("Containerfile base images", () => {
  const froms = [...containerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);

  test("each is pinned by digest, or docs/deploy.md says why not and how an operator pins it", () => {
    expect(froms.length).toBe(2);
    const deployDoc = read("docs/deploy.md");
    for (const image of froms) {
      if (/@sha256:[0-9a-f]{64}$/.test(image)) continue;
      expect(deployDoc).toContain(image);
      expect(deployDoc).toMatch(/Pinning the base images/);
      expect(deployDoc).toContain("@sha256:");
    }
  });
});
