/**
 * `sidecar-injector check`: diagnoses the injector in the cluster of the current kubeconfig. Fetches what it needs
 * (raw JSON, src/cluster/check-api.ts), hands it to the pure diagnosis (src/cluster/diagnose.ts), prints a report
 * (✓ pass, ! warning, ✗ failure, - skipped) or `--output json`, and exits 1 when anything failed.
 *
 * Read-only: the one write is a pod create with dryRun=All, which the API server never stores.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from 'kubernetes-types/core/v1.js';
import {
  apiServerVersion,
  createDryRunPod,
  getSecret,
  getService,
  getWebhookConfiguration,
  listNamespaces,
  listServiceEndpointSlices,
  replyMessage,
  type ChainProbe,
  type KubeApi,
} from '../cluster/check-api.js';
import { diagnose, exitCodeFor } from '../cluster/diagnose.js';
import { buildReport, renderText } from './check-report.js';
import {
  DEFAULT_TLS_SECRET,
  DEFAULT_WEBHOOK_CONFIGURATION,
  dryRunTarget,
  excludedNamespaces,
  webhookEndpoint,
  type CheckFacts,
  type DryRunTarget,
  type Listing,
  type TlsProbe,
  type WebhookEndpoint,
} from '../cluster/check-targets.js';
import { auditCluster, auditSetup, type MissedPodsFacts } from '../audit/cluster-audit.js';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
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

/** Whether the webhook answers TLS at the endpoint, and with which chain. */
async function probeServed(
  endpoint: WebhookEndpoint,
  connection: Connection,
  timeoutMs: number,
  probe: CheckDeps['probe'],
): Promise<TlsProbe> {
  if (endpoint.kind === 'service' && !connection.inCluster) {
    return { reached: false, skipped: `Service ${endpoint.host} not reachable from here (outside the cluster)` };
  }
  const target = `${endpoint.host}:${endpoint.port}`;
  const reply = await probe(endpoint.host, endpoint.port, endpoint.host, timeoutMs);
  return reply.reached ? { reached: true, target, chain: reply.chain } : { reached: false, target, error: reply.error };
}

type ServingFacts = Pick<CheckFacts, 'service' | 'endpointSlices' | 'served' | 'tlsSecret'>;

/** What serves the webhook: the Service and its endpoints, the chain it presents, else the Secret it would use. */
async function servingFacts(
  connection: Connection,
  flags: CheckFlags,
  endpoint: WebhookEndpoint | undefined,
  probe: CheckDeps['probe'],
): Promise<ServingFacts> {
  if (endpoint === undefined) return {};
  const served = await probeServed(endpoint, connection, flags.timeoutMs, probe);
  if (endpoint.kind === 'url') return { served };
  const { api } = connection;
  const facts: ServingFacts = {
    service: await getService(api, endpoint.namespace, endpoint.name),
    endpointSlices: await listServiceEndpointSlices(api, endpoint.namespace, endpoint.name),
    served,
  };
  if (!served.reached) facts.tlsSecret = { ...(await getSecret(api, endpoint.namespace, flags.tlsSecret)), name: flags.tlsSecret };
  return facts;
}

function dryRunTargetFor(flags: CheckFlags, namespaces: Listing<Namespace>, excluded: readonly string[]): DryRunTarget {
  if (!flags.dryRun) return { skipped: 'not attempted (--no-dry-run)' };
  if ('items' in namespaces) return dryRunTarget(namespaces.items, flags.namespace, excluded);
  if (flags.namespace !== undefined) return { namespace: flags.namespace, why: '--namespace' };
  return { none: 'namespaces could not be listed; pass --namespace' };
}

async function missedPodsFacts(
  api: KubeApi,
  flags: CheckFlags,
  namespaces: Listing<Namespace>,
  setup: () => ReturnType<typeof auditSetup>,
): Promise<MissedPodsFacts> {
  if (!flags.pods) return { skipped: 'not looked at (--no-pods)' };
  if (!('items' in namespaces)) return { skipped: 'namespaces could not be listed' };
  return auditCluster(api, namespaces.items, await setup());
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
    version = await apiServerVersion(api);
  } catch (err) {
    return {
      ...base,
      apiServer: { server: api.server, context: connection.context, error: errorLine(err) },
      excludedNamespaces: excludedNamespaces(injectorNamespace(env, { flag: flags.injectorNamespace })),
      now: deps.now(),
    };
  }

  const webhookConfiguration = await getWebhookConfiguration(api, flags.webhookConfig);
  const endpoint = 'found' in webhookConfiguration && webhookConfiguration.found ? webhookEndpoint(webhookConfiguration.object) : undefined;
  const serving = await servingFacts(connection, flags, endpoint, deps.probe);

  const ownNamespace = injectorNamespace(env, { flag: flags.injectorNamespace, service: endpoint?.kind === 'service' ? endpoint.namespace : undefined });
  const excluded = excludedNamespaces(ownNamespace);
  const namespaces = await listNamespaces(api);
  const target = dryRunTargetFor(flags, namespaces, excluded);
  const dryRun = 'namespace' in target ? await createDryRunPod(api, target.namespace) : undefined;
  const missedPods = await missedPodsFacts(api, flags, namespaces, () => auditSetup(api, ownNamespace, version, configFile));

  return {
    ...base,
    missedPods,
    apiServer: { server: api.server, context: connection.context, ...(version === undefined ? {} : { version }) },
    webhookConfiguration,
    ...serving,
    namespaces,
    dryRunTarget: target,
    ...(dryRun === undefined ? {} : { dryRun }),
    excludedNamespaces: excluded,
    now: deps.now(),
  };
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

interface ClusterFlags {
  help: boolean;
  config?: string;
  kubeconfig?: string;
  context?: string;
  timeoutMs: number;
}

/**
 * What check and repair start with: the flags (or the usage), the --config file read (exit 2 when it cannot be),
 * and the connection.
 */
export async function openCluster<F extends ClusterFlags>(
  command: string,
  usage: string,
  parse: () => F,
  io: CheckIo,
): Promise<{ flags: F; configFile: { path: string; text: string } | undefined; deps: CheckDeps; connection: Connection | { error: string } } | { exitCode: number }> {
  const parsed = flagsOrExit(command, usage, parse, io);
  if ('exitCode' in parsed) return parsed;
  const { flags } = parsed;
  const configFile = readConfigFlag(command, flags.config, io);
  if (configFile === 'failed') return { exitCode: 2 };
  const deps = io.deps ?? realDeps(io.env);
  const connection = await deps.connect({
    ...(flags.kubeconfig === undefined ? {} : { kubeconfig: flags.kubeconfig }),
    ...(flags.context === undefined ? {} : { context: flags.context }),
    timeoutMs: flags.timeoutMs,
  });
  return { flags, configFile, deps, connection };
}

export async function runCheck(argv: string[], io: CheckIo): Promise<number> {
  const opened = await openCluster('check', CHECK_USAGE, () => parseCheckFlags(argv), io);
  if ('exitCode' in opened) return opened.exitCode;
  const { flags, configFile, deps, connection } = opened;
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
