/**
 * `sidecar-injector serve`: flags, certificate and config files, signals. The composition root of the webhook.
 * Start-up problems (unreadable certificates, a bad config, a port in use) exit 1 with one line on stderr.
 */
import type { DestinationStream } from 'pino';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../core/defaults.js';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
import type { InjectorConfig } from '../core/types.js';
import type { RunningServer } from '../server.js';
import {
  CLUSTER_MODES,
  chooseClusterAccess,
  describeSource,
  loadKubeConfig,
  serviceAccountMounted,
  type ClusterMode,
  type LoadedKubeConfig,
} from '../cluster/client.js';
import type { ClusterFactsSource } from '../cluster/cluster-facts.js';
import type { EnsureOutcome } from '../cluster/certificate-secret.js';
import type { SelfManagedDeps } from '../cluster/self-managed.js';
import { errorLine } from '../error-line.js';
import { checkPair } from '../tls/pair.js';
import { EXIT_FAILURE, EXIT_OK, flagsOrExit } from './io.js';

export interface ServeIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /**
   * The process environment, handed in by main.ts: POD_NAMESPACE, KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT
   * are read here and nowhere else.
   */
  env: Readonly<Record<string, string | undefined>>;
}


const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const DEFAULT_TLS_SECRET = 'sidecar-injector-tls';
const DEFAULT_WEBHOOK_CONFIG = 'sidecar-injector';
const DEFAULT_SERVICE = 'sidecar-injector';
// Object names: a Secret or webhook configuration is an RFC 1123 subdomain, a Service an RFC 1035 label.
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const SERVE_USAGE = `Usage: sidecar-injector serve [options]

Serves the mutating admission webhook over HTTPS (POST /mutate, GET /healthz, GET /readyz) and Prometheus
metrics over plain HTTP (GET /metrics). On SIGTERM/SIGINT: /readyz turns 503, requests keep being answered
(with Connection: close) for --drain-seconds, then the listeners close and the process exits 0.

Options:
  --host HOST            address to bind (default 0.0.0.0); the metrics listener binds it too
  --port PORT            HTTPS port (default 8443; 0 = a random free port)
  --metrics-port PORT    plain-HTTP metrics port (default 9090; 0 = a random free port)
  --tls-cert FILE        PEM serving certificate (default certs/tls.crt); reloaded when it changes (new
                         handshakes get the new one, open connections keep theirs)
  --tls-key FILE         PEM private key (default certs/tls.key)
  --self-managed-certs   keep a CA and serving certificate in the Secret --tls-secret instead (created when
                         missing, renewed at 2/3 of its life, watched by every replica) and the CA in the caBundle
                         of --webhook-config; needs cluster access. --tls-cert/--tls-key are then not read
  --tls-secret NAME      that Secret, in the injector's namespace (default ${DEFAULT_TLS_SECRET})
  --webhook-config NAME  that MutatingWebhookConfiguration (default ${DEFAULT_WEBHOOK_CONFIG})
  --service NAME         the Service the certificate is for, in the injector's namespace (default ${DEFAULT_SERVICE})
  --config FILE          YAML configuration, reloaded when it changes (default: built-in defaults)
  --drain-seconds N      how long to keep answering after SIGTERM (default 5)
  --log-level LEVEL      ${LOG_LEVELS.join(', ')} (default info)
  --cluster MODE         ${CLUSTER_MODES.join(', ')} (default auto): watch namespaces (labels, Pod Security level),
                         nodes (kubelet versions) and read the API server version. auto: on in a pod with a
                         service account token, or with --kubeconfig / KUBECONFIG; off: never load the client
  --kubeconfig FILE      kubeconfig for cluster access (default: KUBECONFIG, else in-cluster)
  -h, --help             show this help

Environment:
  POD_NAMESPACE          the injector's own namespace, never injected (default ${DEFAULT_INJECTOR_NAMESPACE})
  KUBECONFIG             kubeconfig file(s) for cluster access, when --kubeconfig is not given
  KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT
                         the API server in a pod (set by the kubelet)
`;

const OPTIONS = {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '8443' },
  'metrics-port': { type: 'string', default: '9090' },
  'tls-cert': { type: 'string', default: 'certs/tls.crt' },
  'tls-key': { type: 'string', default: 'certs/tls.key' },
  'self-managed-certs': { type: 'boolean', default: false },
  'tls-secret': { type: 'string', default: DEFAULT_TLS_SECRET },
  'webhook-config': { type: 'string', default: DEFAULT_WEBHOOK_CONFIG },
  service: { type: 'string', default: DEFAULT_SERVICE },
  config: { type: 'string' },
  'drain-seconds': { type: 'string', default: '5' },
  'log-level': { type: 'string', default: 'info' },
  cluster: { type: 'string', default: 'auto' },
  kubeconfig: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface ServeFlags {
  host: string;
  port: number;
  metricsPort: number;
  tlsCert: string;
  tlsKey: string;
  selfManagedCerts: boolean;
  tlsSecret: string;
  webhookConfig: string;
  service: string;
  config?: string;
  drainSeconds: number;
  logLevel: string;
  cluster: ClusterMode;
  kubeconfig?: string;
  help: boolean;
}

class UsageError extends Error {}

function portFlag(name: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${value}"`);
  return port;
}

export function parseServeFlags(argv: string[]): ServeFlags {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    // parseArgs appends a hint about `--` that only confuses: its first sentence is the useful part.
    const message = err instanceof Error ? err.message : String(err);
    throw new UsageError((message.split('\n')[0] ?? message).split('. ')[0] ?? message);
  }
  const drainSeconds = Number(values['drain-seconds']);
  if (values['drain-seconds'].trim() === '' || !Number.isFinite(drainSeconds) || drainSeconds < 0) {
    throw new UsageError(`--drain-seconds must be a number ≥ 0, got "${values['drain-seconds']}"`);
  }
  const logLevel = values['log-level'];
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  if (values.host === '') throw new UsageError('--host must not be empty');
  const cluster = values.cluster as ClusterMode;
  if (!CLUSTER_MODES.includes(cluster)) {
    throw new UsageError(`--cluster must be one of ${CLUSTER_MODES.join(', ')}, got "${values.cluster}"`);
  }
  if (values.kubeconfig !== undefined && values.kubeconfig.trim() === '') throw new UsageError('--kubeconfig must not be empty');
  for (const flag of ['tls-secret', 'webhook-config'] as const) {
    const name = values[flag];
    if (name.length > 253 || !DNS_1123_SUBDOMAIN.test(name)) {
      throw new UsageError(`--${flag} must be a Kubernetes object name (lowercase RFC 1123 subdomain), got "${name}"`);
    }
  }
  if (!DNS_1035_LABEL.test(values.service)) {
    throw new UsageError(`--service must be a Service name (lowercase RFC 1035 label), got "${values.service}"`);
  }
  if (values['self-managed-certs'] && cluster === 'off') {
    throw new UsageError('--self-managed-certs needs cluster access: it cannot be combined with --cluster off');
  }
  return {
    host: values.host,
    port: portFlag('port', values.port),
    metricsPort: portFlag('metrics-port', values['metrics-port']),
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    selfManagedCerts: values['self-managed-certs'],
    tlsSecret: values['tls-secret'],
    webhookConfig: values['webhook-config'],
    service: values.service,
    ...(values.config === undefined ? {} : { config: values.config }),
    drainSeconds,
    logLevel,
    cluster,
    ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
    help: values.help,
  };
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${flag} ${path}: ${code ?? errorLine(err)}`);
  }
}

/** Why the PEM pair cannot serve, checked up front so the message names the file rather than an OpenSSL code. */
export function tlsPairProblem(cert: string, key: string, flags: { tlsCert: string; tlsKey: string }): string | undefined {
  const checked = checkPair({ cert, key });
  if (checked.ok) return undefined;
  switch (checked.part) {
    case 'certificate':
      return `--tls-cert ${flags.tlsCert} is not a PEM certificate (${checked.detail})`;
    case 'key':
      return `--tls-key ${flags.tlsKey} is not a PEM private key (${checked.detail})`;
    case 'match':
      return `--tls-key ${flags.tlsKey} does not belong to the certificate in --tls-cert ${flags.tlsCert}`;
  }
}

/**
 * Standard output for the logs, batched (4 KiB or 100 ms) and written asynchronously: a synchronous write per
 * line costs the admission hot path more than the admission itself. What is still buffered is written out when
 * the process exits, whatever the exit path.
 */
async function batchedStdout(): Promise<DestinationStream> {
  const { default: pino } = await import('pino');
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 });
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // Nothing more can be done for log lines at exit.
    }
  });
  return destination;
}

/** Runs the webhook until SIGTERM/SIGINT; resolves with the exit code once everything is closed. */
export async function runServe(argv: string[], io: ServeIo): Promise<number> {
  const parsed = flagsOrExit('serve', SERVE_USAGE, () => parseServeFlags(argv), io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const flags: ServeFlags = parsed.flags;
  const fail = (message: string): number => {
    io.stderr.write(`sidecar-injector serve: ${message}\n`);
    return EXIT_FAILURE;
  };

  const podNamespace = io.env.POD_NAMESPACE?.trim();
  const injectorNamespace = podNamespace === undefined || podNamespace === '' ? DEFAULT_INJECTOR_NAMESPACE : podNamespace;

  // The serving pair: from the files, or (self-managed) from the Secret once cluster access is settled below.
  let cert = '';
  let key = '';
  if (!flags.selfManagedCerts) {
    try {
      cert = await readPem('--tls-cert', flags.tlsCert);
      key = await readPem('--tls-key', flags.tlsKey);
    } catch (err) {
      return fail(errorLine(err));
    }
    const problem = tlsPairProblem(cert, key, flags);
    if (problem !== undefined) return fail(problem);
  }

  // Loaded only when asked for: the config module and its YAML parser stay out of a default start.
  let initialConfig: InjectorConfig = defaultConfig();
  let initialConfigText = '';
  if (flags.config !== undefined) {
    const { loadConfigFile } = await import('../config/watch.js');
    const loaded = await loadConfigFile(flags.config);
    if (!loaded.ok) return fail(`invalid --config ${flags.config}: ${errorLine(loaded.error)}`);
    initialConfig = loaded.config;
    initialConfigText = loaded.text;
  }
  // Replaced by the watcher's view once it runs; read per request.
  let currentConfig = (): InjectorConfig => initialConfig;

  // Cluster access is settled before listening, so a bad kubeconfig stops the start with one line. With
  // `--cluster off` (or `auto` outside a cluster) @kubernetes/client-node is never loaded.
  const access = chooseClusterAccess({
    mode: flags.cluster,
    kubeconfigFlag: flags.kubeconfig,
    env: io.env,
    serviceAccountMounted: flags.cluster !== 'off' && serviceAccountMounted(),
  });
  if ('error' in access) return fail(access.error);
  let kubeConfig: LoadedKubeConfig | undefined;
  if (access.on) {
    kubeConfig = await loadKubeConfig(access.source);
    if (!kubeConfig.ok) return fail(kubeConfig.error);
  }
  // Self-managed: the Secret is read or created (and renewed if due) before listening, so the server never
  // listens, and /readyz never answers, without a certificate in force.
  let selfManaged: { deps: SelfManagedDeps; initial: EnsureOutcome } | undefined;
  if (flags.selfManagedCerts) {
    if (kubeConfig?.ok !== true) {
      return fail(`--self-managed-certs needs cluster access: ${'why' in access ? access.why : 'none configured'}`);
    }
    const { bootstrapCertificates, connectSelfManagedCertificates } = await import('../cluster/self-managed.js');
    try {
      const deps = await connectSelfManagedCertificates({
        kubeConfig: kubeConfig.kubeConfig,
        namespace: injectorNamespace,
        secretName: flags.tlsSecret,
        webhookConfigName: flags.webhookConfig,
        service: flags.service,
      });
      const initial = await bootstrapCertificates(deps);
      cert = initial.stored.tlsCert ?? '';
      key = initial.stored.tlsKey ?? '';
      selfManaged = { deps, initial };
    } catch (err) {
      return fail(`cannot get or create the certificate Secret ${injectorNamespace}/${flags.tlsSecret}: ${errorLine(err)}`);
    }
  }

  // Set once the watches start (right after the listener opens); until they have synced /readyz is 503.
  let clusterFacts: ClusterFactsSource | undefined;
  const clusterOptions =
    kubeConfig === undefined
      ? {}
      : {
          clusterFacts: (namespace: string) => {
            if (clusterFacts === undefined) throw new Error('cluster facts are not started yet');
            return clusterFacts.clusterFacts(namespace);
          },
          ready: () => clusterFacts?.ready() ?? false,
        };

  const { startServer } = await import('../server.js');

  // Signals are caught from before the listener opens: a SIGTERM during start-up still means a clean stop.
  let running: RunningServer | undefined;
  let closeWatcher = (): void => {};
  let closeCertificates = (): void => {};
  let reloadFiles: () => Promise<void> = () => Promise.resolve();
  let signalled: NodeJS.Signals | undefined;
  let signals = 0;
  let settle: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const stop = (server: RunningServer, signal: NodeJS.Signals): void => {
    server.shutdown(signal).then(
      () => settle(EXIT_OK),
      (err: unknown) => {
        server.log.error({ err }, 'shutdown failed');
        settle(EXIT_FAILURE);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      // A second signal (an impatient Ctrl-C) skips the rest of the drain; what is in flight is still answered.
      running?.log.warn({ signal }, 'second signal: ending the drain now, answering what is in flight');
      running?.hurry();
      return;
    }
    signalled = signal;
    if (running !== undefined) stop(running, signal);
  };
  // SIGHUP (a closed terminal, a supervisor's reload) never stops the server: it re-reads the files now.
  const onHangup = (): void => {
    running?.log.info({ signal: 'SIGHUP' }, 'SIGHUP: re-reading the configuration and certificate files');
    void reloadFiles();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangup);
  const removeSignalHandlers = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangup);
  };

  try {
    running = await startServer({
      host: flags.host,
      port: flags.port,
      metricsPort: flags.metricsPort,
      tls: { cert, key },
      drainSeconds: flags.drainSeconds,
      logLevel: flags.logLevel,
      logStream: io.stdout === process.stdout ? await batchedStdout() : io.stdout,
      injectorNamespace,
      config: () => currentConfig(),
      ...clusterOptions,
    });
  } catch (err) {
    removeSignalHandlers();
    return fail(`cannot start: ${errorLine(err)}`);
  }
  const { log, metrics } = running;
  // Watching starts before the configuration line is logged: a change made after that line is never missed.
  if (flags.config !== undefined) {
    const { watchConfigFile } = await import('../config/watch.js');
    const path = flags.config;
    const watcher = watchConfigFile(path, { config: initialConfig, text: initialConfigText }, {
      onReload: () => {
        metrics.configReloads.inc({ result: 'ok' });
        log.info({ config: path }, 'configuration reloaded');
      },
      onError: (error) => {
        metrics.configReloads.inc({ result: 'failed' });
        log.warn({ config: path, error }, 'configuration not reloaded: the previous one stays in force');
      },
    });
    currentConfig = watcher.current;
    closeWatcher = () => watcher.close();
    reloadFiles = () => watcher.check();
  }
  log.info({ injectorNamespace, config: flags.config ?? 'built-in defaults' }, 'configuration');

  if (access.on && kubeConfig?.ok === true) {
    log.info({ cluster: 'on', source: describeSource(access.source), server: kubeConfig.server }, 'cluster access');
    const { startClusterFacts } = await import('../cluster/cluster-facts.js');
    try {
      clusterFacts = await startClusterFacts({ kubeConfig: kubeConfig.kubeConfig, log: log.child({ component: 'cluster' }) });
    } catch (err) {
      log.error({ err }, 'cannot start the cluster watches');
      await running.shutdown('cluster watches failed to start');
      removeSignalHandlers();
      return fail(`cannot start the cluster watches: ${errorLine(err)}`);
    }
  } else if (!access.on) {
    log.info({ cluster: 'off', why: access.why }, 'cluster access');
  }

  {
    // Certificate rotation: new handshakes get the new pair, open connections keep theirs.
    const { createCertificateSwitch, reloadCertificateFiles, secureContextTarget } = await import('../tls/reload.js');
    const { registerCertificateMetrics } = await import('../tls/metrics.js');
    const certificateLog = log.child({ component: 'tls' });
    const metrics = registerCertificateMetrics(running.metrics.registry);
    if (selfManaged === undefined) {
      const reload = reloadCertificateFiles({
        server: running.app.server,
        files: { cert: flags.tlsCert, key: flags.tlsKey },
        initial: { cert, key },
        log: certificateLog,
        metrics,
      });
      closeCertificates = () => reload.close();
      const reloadConfig = reloadFiles;
      reloadFiles = async () => {
        await reloadConfig();
        await reload.watcher.check();
      };
    } else {
      const target = secureContextTarget(running.app.server);
      if (target === undefined) throw new Error('unreachable: the webhook listener always has TLS');
      const { runSelfManagedCertificates } = await import('../cluster/self-managed.js');
      const { deps, initial } = selfManaged;
      certificateLog.info(
        { secret: `${injectorNamespace}/${flags.tlsSecret}`, action: initial.action, reason: initial.reason },
        'self-managed certificates',
      );
      const controller = runSelfManagedCertificates({
        ...deps,
        initial,
        log: certificateLog,
        certificates: createCertificateSwitch({ target, initial: { cert, key }, log: certificateLog, metrics }),
      });
      closeCertificates = () => controller.close();
    }
  }

  if (signalled !== undefined) stop(running, signalled);
  const code = await stopped;
  closeWatcher();
  closeCertificates();
  await clusterFacts?.close();
  removeSignalHandlers();
  return code;
}
