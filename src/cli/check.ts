/**
 * `sidecar-injector check`: diagnoses the injector in the cluster of the current kubeconfig. Fetches what it needs
 * (raw JSON, src/cluster/check-api.ts), hands it to the pure diagnosis (src/cluster/diagnose.ts), prints a report
 * (✓ pass, ! warning, ✗ failure, - skipped) or `--output json`, and exits 1 when anything failed.
 *
 * Read-only: the one write is a pod create with dryRun=All, which the API server never stores.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Namespace, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { replyMessage, type ChainProbe, type KubeApi } from '../cluster/check-api.js';
import {
  CHECKS,
  DEFAULT_TLS_SECRET,
  DEFAULT_WEBHOOK_CONFIGURATION,
  diagnose,
  dryRunTarget,
  excludedNamespaces,
  exitCodeFor,
  probePod,
  readInjection,
  summariseNamespaces,
  webhookEndpoint,
  type CheckFacts,
  type CheckResult,
  type CheckStatus,
  type DryRunOutcome,
  type DryRunTarget,
  type Listing,
  type Lookup,
  type TlsProbe,
} from '../cluster/diagnose.js';
import { auditCluster, auditSetup, type MissedPodsFacts } from '../audit/cluster-audit.js';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
import type { Workload } from '../audit/workloads.js';
import { POD_SECURITY_LEVELS, type PodSecurityLevel } from '../core/types.js';
import { errorLine } from '../error-line.js';
import { flagsOrExit, parseFlags, UsageError } from './io.js';
import { injectorNamespace } from '../runtime/namespace.js';


export const CHECK_USAGE = `Usage: sidecar-injector check [options]

Diagnoses the injector in the cluster of the current kubeconfig: the MutatingWebhookConfiguration and its two
entries, the caBundle and the certificate the webhook serves, the Service and its ready endpoints, the labelled
namespaces and their Pod Security levels, a server-side dry-run pod that must come back with the sidecar, and
the pods that should carry the sidecar but do not (grouped by workload, with the command that restarts it).
Nothing is changed (the dry-run pod is never stored). Exit status: 0 healthy (warnings allowed), 1 a check
failed, 2 usage error.

Options:
  --kubeconfig FILE             kubeconfig (default: KUBECONFIG, ~/.kube/config, or the pod's service account)
  --context NAME                kubeconfig context (default: the current one)
  --webhook-config NAME         MutatingWebhookConfiguration name, as serve's flag of the same name
                                (default ${DEFAULT_WEBHOOK_CONFIGURATION})
  --namespace NS                namespace for the dry-run pod (default: the first labelled sidecar-injection=enabled)
  --no-dry-run                  skip the dry-run pod (it needs permission to create pods)
  --injector-namespace NS       the injector's namespace, never injected (default: the webhook Service's namespace,
                                else POD_NAMESPACE, else ${DEFAULT_INJECTOR_NAMESPACE})
  --tls-secret NAME             Secret with the serving certificate, checked when the webhook is out of reach
                                (default ${DEFAULT_TLS_SECRET})
  --pod-security-default LEVEL  level of namespaces without an enforce label: ${POD_SECURITY_LEVELS.join(', ')}
                                (default privileged, as the injector's podSecurity.defaultLevel)
  --config FILE                 the injector's configuration, to judge pods by (default: its ConfigMap
                                sidecar-injector-config in the injector's namespace, else the built-in defaults)
  --strict                      pods without the sidecar are a failure (exit 1), not a warning
  --no-pods                     do not look at pods (listing them needs permission to list pods)
  --timeout SECONDS             per request (default 10)
  -o, --output FORMAT           text or json (default text)
  -h, --help                    show this help
`;

const OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  'webhook-config': { type: 'string', default: DEFAULT_WEBHOOK_CONFIGURATION },
  namespace: { type: 'string' },
  'no-dry-run': { type: 'boolean', default: false },
  'injector-namespace': { type: 'string' },
  'tls-secret': { type: 'string', default: DEFAULT_TLS_SECRET },
  'pod-security-default': { type: 'string', default: 'privileged' },
  config: { type: 'string' },
  strict: { type: 'boolean', default: false },
  'no-pods': { type: 'boolean', default: false },
  timeout: { type: 'string', default: '10' },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface CheckFlags {
  kubeconfig?: string;
  context?: string;
  webhookConfig: string;
  namespace?: string;
  dryRun: boolean;
  injectorNamespace?: string;
  tlsSecret: string;
  podSecurityDefault: PodSecurityLevel;
  timeoutMs: number;
  output: 'text' | 'json';
  help: boolean;
  config?: string;
  strict: boolean;
  pods: boolean;
}

export function parseCheckFlags(argv: string[]): CheckFlags {
  const values = parseFlags(argv, OPTIONS);
  const output = values.output;
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got "${output}"`);
  const level = values['pod-security-default'];
  if (!(POD_SECURITY_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--pod-security-default must be one of ${POD_SECURITY_LEVELS.join(', ')}, got "${level}"`);
  }
  const timeout = Number(values.timeout);
  if (values.timeout.trim() === '' || !Number.isFinite(timeout) || timeout <= 0) {
    throw new UsageError(`--timeout must be a number of seconds > 0, got "${values.timeout}"`);
  }
  for (const key of ['webhook-config', 'tls-secret'] as const) {
    if (values[key].trim() === '') throw new UsageError(`--${key} must not be empty`);
  }
  const optional = (key: 'kubeconfig' | 'context' | 'namespace' | 'injector-namespace' | 'config'): string | undefined => {
    const value = values[key]?.trim();
    if (value === '') throw new UsageError(`--${key} must not be empty`);
    return value;
  };
  const kubeconfig = optional('kubeconfig');
  const context = optional('context');
  const namespace = optional('namespace');
  const injectorNamespace = optional('injector-namespace');
  const config = optional('config');
  return {
    ...(config === undefined ? {} : { config }),
    strict: values.strict,
    pods: !values['no-pods'],
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    ...(context === undefined ? {} : { context }),
    webhookConfig: values['webhook-config'].trim(),
    ...(namespace === undefined ? {} : { namespace }),
    dryRun: !values['no-dry-run'],
    ...(injectorNamespace === undefined ? {} : { injectorNamespace }),
    tlsSecret: values['tls-secret'].trim(),
    podSecurityDefault: level as PodSecurityLevel,
    timeoutMs: Math.round(timeout * 1000),
    output,
    help: values.help,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Fetching.

export interface Connection {
  api: KubeApi;
  context: string;
  /** Running in a pod: cluster Service names resolve and are reachable. */
  inCluster: boolean;
}

export interface CheckDeps {
  connect(request: { kubeconfig?: string; context?: string; timeoutMs: number }): Promise<Connection | { error: string }>;
  probe(host: string, port: number, servername: string, timeoutMs: number): Promise<ChainProbe>;
  now(): Date;
}

export interface CheckIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Handed in by main.ts: KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT, POD_NAMESPACE. */
  env: Readonly<Record<string, string | undefined>>;
  /** The cluster; the real one (loaded lazily) unless a test passes a fake. */
  deps?: CheckDeps;
}

export { replyMessage };

async function lookup<T>(api: KubeApi, path: string): Promise<Lookup<T>> {
  try {
    const reply = await api.request('GET', path);
    if (reply.status === 200) return { found: true, object: reply.body as T };
    if (reply.status === 404) return { found: false };
    return { error: replyMessage(reply) };
  } catch (err) {
    return { error: errorLine(err) };
  }
}

async function listing<T>(api: KubeApi, path: string): Promise<Listing<T>> {
  try {
    const reply = await api.request('GET', path);
    if (reply.status !== 200) return { error: replyMessage(reply) };
    const items = (reply.body as { items?: T[] | null }).items;
    return { items: items ?? [] };
  } catch (err) {
    return { error: errorLine(err) };
  }
}

const segment = encodeURIComponent;

/** A server-side dry-run create of the probe pod: what the admission chain (our webhook included) made of it. */
export async function createDryRunPod(api: KubeApi, namespace: string): Promise<DryRunOutcome> {
  try {
    const reply = await api.request('POST', `/api/v1/namespaces/${segment(namespace)}/pods?dryRun=All`, probePod());
    return reply.status === 200 || reply.status === 201
      ? { namespace, status: reply.status, pod: reply.body as Pod, warnings: reply.warnings }
      : { namespace, status: reply.status, message: replyMessage(reply), warnings: reply.warnings };
  } catch (err) {
    return { namespace, error: errorLine(err) };
  }
}

/** Everything the diagnosis needs, fetched in dependency order (the endpoint decides what else to read). */
export async function gatherFacts(
  connection: Connection,
  flags: CheckFlags,
  env: CheckIo['env'],
  deps: Pick<CheckDeps, 'probe' | 'now'>,
  configFile?: { path: string; text: string },
): Promise<CheckFacts> {
  const { api } = connection;
  const base = {
    webhookConfigurationName: flags.webhookConfig,
    podSecurityDefault: flags.podSecurityDefault,
    inCluster: connection.inCluster,
    strict: flags.strict,
  };
  let version: string | undefined;
  try {
    const reply = await api.request('GET', '/version');
    if (reply.status === 401) throw new Error(`credentials rejected: ${replyMessage(reply)}`);
    const gitVersion = (reply.body as { gitVersion?: unknown } | null)?.gitVersion;
    if (reply.status === 200 && typeof gitVersion === 'string') version = gitVersion;
  } catch (err) {
    const facts: CheckFacts = {
      ...base,
      apiServer: { server: api.server, context: connection.context, error: errorLine(err) },
      excludedNamespaces: excludedNamespaces(injectorNamespace(env, { flag: flags.injectorNamespace })),
      now: deps.now(),
    };
    return facts;
  }

  const webhookConfiguration = await lookup<MutatingWebhookConfiguration>(
    api,
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${segment(flags.webhookConfig)}`,
  );
  const endpoint = 'found' in webhookConfiguration && webhookConfiguration.found ? webhookEndpoint(webhookConfiguration.object) : undefined;

  let service: Lookup<Service> | undefined;
  let endpointSlices: Listing<EndpointSlice> | undefined;
  let served: TlsProbe | undefined;
  let tlsSecret: CheckFacts['tlsSecret'];
  if (endpoint?.kind === 'service') {
    const ns = segment(endpoint.namespace);
    service = await lookup<Service>(api, `/api/v1/namespaces/${ns}/services/${segment(endpoint.name)}`);
    const selector = segment(`kubernetes.io/service-name=${endpoint.name}`);
    endpointSlices = await listing<EndpointSlice>(api, `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${selector}`);
    if (connection.inCluster) {
      const target = `${endpoint.host}:${endpoint.port}`;
      const probe = await deps.probe(endpoint.host, endpoint.port, endpoint.host, flags.timeoutMs);
      served = probe.reached ? { reached: true, target, chain: probe.chain } : { reached: false, target, error: probe.error };
    } else {
      served = { reached: false, skipped: `Service ${endpoint.host} not reachable from here (outside the cluster)` };
    }
    if (!served.reached) {
      const secret = await lookup<Secret>(api, `/api/v1/namespaces/${ns}/secrets/${segment(flags.tlsSecret)}`);
      tlsSecret = { ...secret, name: flags.tlsSecret };
    }
  } else if (endpoint?.kind === 'url') {
    const target = `${endpoint.host}:${endpoint.port}`;
    const probe = await deps.probe(endpoint.host, endpoint.port, endpoint.host, flags.timeoutMs);
    served = probe.reached ? { reached: true, target, chain: probe.chain } : { reached: false, target, error: probe.error };
  }

  const ownNamespace = injectorNamespace(env, { flag: flags.injectorNamespace, service: endpoint?.kind === 'service' ? endpoint.namespace : undefined });
  const excluded = excludedNamespaces(ownNamespace);
  const namespaces = await listing<Namespace>(api, '/api/v1/namespaces');

  let target: DryRunTarget;
  if (!flags.dryRun) target = { skipped: 'not attempted (--no-dry-run)' };
  else if ('items' in namespaces) target = dryRunTarget(namespaces.items, flags.namespace, excluded);
  else if (flags.namespace !== undefined) target = { namespace: flags.namespace, why: '--namespace' };
  else target = { none: 'namespaces could not be listed; pass --namespace' };

  const dryRun = 'namespace' in target ? await createDryRunPod(api, target.namespace) : undefined;

  let missedPods: MissedPodsFacts;
  if (!flags.pods) missedPods = { skipped: 'not looked at (--no-pods)' };
  else if (!('items' in namespaces)) missedPods = { skipped: 'namespaces could not be listed' };
  else missedPods = await auditCluster(api, namespaces.items, await auditSetup(api, ownNamespace, version, configFile));

  return {
    ...base,
    missedPods,
    apiServer: { server: api.server, context: connection.context, ...(version === undefined ? {} : { version }) },
    webhookConfiguration,
    ...(service === undefined ? {} : { service }),
    ...(endpointSlices === undefined ? {} : { endpointSlices }),
    ...(served === undefined ? {} : { served }),
    ...(tlsSecret === undefined ? {} : { tlsSecret }),
    namespaces,
    dryRunTarget: target,
    ...(dryRun === undefined ? {} : { dryRun }),
    excludedNamespaces: excluded,
    now: deps.now(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting.

const SYMBOL: Record<CheckStatus, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };

export interface CheckReport {
  ok: boolean;
  server: string;
  context: string | null;
  webhookConfiguration: string;
  summary: Record<CheckStatus, number>;
  checks: CheckResult[];
  namespaces: { enabled: { name: string; podSecurity: PodSecurityLevel }[]; disabled: string[] } | null;
  dryRun: { namespace: string; injected: boolean; mode: string | null } | null;
  /** Pods that should carry the sidecar but do not, by workload; null when not looked at or unreadable. */
  missedPods: {
    scanned: number;
    requests: number;
    missed: number;
    missedByNamespace: Record<string, number>;
    stale: number;
    staleByNamespace: Record<string, number>;
    configuration: string;
    workloads: Workload[];
  } | null;
}

/** The JSON document `--output json` prints: every key always present, checks in a fixed order. */
export function buildReport(facts: CheckFacts, results: CheckResult[]): CheckReport {
  const summary: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) summary[r.status] += 1;
  const namespaces =
    facts.namespaces !== undefined && 'items' in facts.namespaces
      ? summariseNamespaces(facts.namespaces.items, facts.excludedNamespaces, facts.podSecurityDefault)
      : undefined;
  const dryRun = facts.dryRun;
  const reading = dryRun !== undefined && 'pod' in dryRun ? readInjection(dryRun.pod) : undefined;
  return {
    ok: exitCodeFor(results) === 0,
    server: facts.apiServer.server,
    context: facts.apiServer.context ?? null,
    webhookConfiguration: facts.webhookConfigurationName,
    summary,
    checks: results,
    namespaces:
      namespaces === undefined
        ? null
        : { enabled: namespaces.enabled.map((n) => ({ name: n.name, podSecurity: n.podSecurity })), disabled: namespaces.disabled },
    dryRun: dryRun === undefined ? null : { namespace: dryRun.namespace, injected: reading?.injected ?? false, mode: reading?.mode ?? null },
    missedPods: missedPodsReport(facts.missedPods),
  };
}

function missedPodsReport(facts: MissedPodsFacts | undefined): CheckReport['missedPods'] {
  if (facts === undefined || !('ok' in facts) || !facts.ok) return null;
  const { result, workloads, configSource } = facts;
  return {
    scanned: result.scanned,
    requests: result.requests,
    missed: result.missed.length,
    missedByNamespace: result.missedByNamespace,
    stale: Object.values(result.staleByNamespace).reduce((a, b) => a + b, 0),
    staleByNamespace: result.staleByNamespace,
    configuration: configSource,
    workloads,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function renderText(report: CheckReport): string {
  const width = Math.max(...CHECKS.map((c) => c.title.length));
  const titles = new Map(CHECKS.map((c) => [c.id, c.title]));
  const lines = [
    `sidecar-injector check: ${report.server || 'no connection'}${report.context === null ? '' : ` (context ${report.context})`}, ` +
      `MutatingWebhookConfiguration ${report.webhookConfiguration}`,
  ];
  for (const check of report.checks) {
    lines.push(`${SYMBOL[check.status]} ${(titles.get(check.id) ?? check.id).padEnd(width)}  ${check.message}`);
    for (const detail of check.details) lines.push(`  ${' '.repeat(width)}    ${detail}`);
  }
  const { pass, warn, fail, skip } = report.summary;
  lines.push(
    `${fail > 0 ? 'FAILED' : 'OK'}: ${plural(pass, 'check')} passed, ${plural(warn, 'warning')}, ${plural(fail, 'failure')}` +
      `${skip > 0 ? `, ${skip} skipped` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------

/** The real cluster: client.ts picks and loads the kubeconfig (client-node is imported only now). */
export function realDeps(env: CheckIo["env"]): CheckDeps {
  return {
    async connect({ kubeconfig, context, timeoutMs }) {
      const { chooseClusterAccess, loadKubeConfig, serviceAccountMounted } = await import('../cluster/client.js');
      // kubectl's order: --kubeconfig, KUBECONFIG, ~/.kube/config, then the pod's service account.
      const home = env.HOME === undefined || env.HOME === '' ? undefined : join(env.HOME, '.kube', 'config');
      const homeConfig = kubeconfig === undefined && (env.KUBECONFIG ?? '') === '' && home !== undefined && existsSync(home) ? home : undefined;
      const access = chooseClusterAccess({
        mode: 'on',
        ...(kubeconfig ?? homeConfig ? { kubeconfigFlag: kubeconfig ?? homeConfig } : {}),
        env,
        serviceAccountMounted: serviceAccountMounted(),
      });
      if ('error' in access) return { error: 'no cluster: pass --kubeconfig, set KUBECONFIG, or run in a pod with its service account' };
      if (!access.on) return { error: access.why };
      const loaded = await loadKubeConfig(access.source);
      if (!loaded.ok) return { error: loaded.error };
      const kubeConfig = loaded.kubeConfig;
      if (context !== undefined) {
        if (kubeConfig.getContextObject(context) === null) return { error: `no context "${context}" in the kubeconfig` };
        kubeConfig.setCurrentContext(context);
      }
      const { kubeApi } = await import('../cluster/check-api.js');
      try {
        return {
          api: kubeApi(kubeConfig, timeoutMs),
          context: kubeConfig.getCurrentContext(),
          inCluster: (env.KUBERNETES_SERVICE_HOST ?? '') !== '',
        };
      } catch (err) {
        return { error: errorLine(err) };
      }
    },
    async probe(host, port, servername, timeoutMs) {
      const { probeCertificateChain } = await import('../cluster/check-api.js');
      return probeCertificateChain(host, port, servername, timeoutMs);
    },
    now: () => new Date(),
  };
}

/** The text of `--config`, or 'failed' once the error is written (a usage error: exit 2). */
export function readConfigFlag(
  command: string,
  path: string | undefined,
  io: Pick<CheckIo, 'stderr'>,
): { path: string; text: string } | undefined | 'failed' {
  if (path === undefined) return undefined;
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (err) {
    io.stderr.write(`sidecar-injector ${command}: cannot read --config ${path}: ${errorLine(err)}\n`);
    return 'failed';
  }
}

export async function runCheck(argv: string[], io: CheckIo): Promise<number> {
  const parsed = flagsOrExit('check', CHECK_USAGE, () => parseCheckFlags(argv), io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const { flags } = parsed;
  const configFile = readConfigFlag('check', flags.config, io);
  if (configFile === 'failed') return 2;
  const deps = io.deps ?? realDeps(io.env);
  const connection = await deps.connect({
    ...(flags.kubeconfig === undefined ? {} : { kubeconfig: flags.kubeconfig }),
    ...(flags.context === undefined ? {} : { context: flags.context }),
    timeoutMs: flags.timeoutMs,
  });
  let facts: CheckFacts;
  if ('error' in connection) {
    facts = {
      webhookConfigurationName: flags.webhookConfig,
      apiServer: { server: '', error: connection.error },
      excludedNamespaces: excludedNamespaces(injectorNamespace(io.env, { flag: flags.injectorNamespace })),
      podSecurityDefault: flags.podSecurityDefault,
      inCluster: false,
      now: deps.now(),
    };
  } else {
    facts = await gatherFacts(connection, flags, io.env, deps, configFile);
  }
  const results = diagnose(facts);
  const report = buildReport(facts, results);
  io.stdout.write(flags.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
  return exitCodeFor(results);
}
