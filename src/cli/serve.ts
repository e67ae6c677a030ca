/**
 * `sidecar-injector serve`: flags and environment → the webhook's options → run until a signal
 * (src/runtime/webhook.ts composes the running webhook, src/runtime/signals.ts handles the signals).
 * Start-up problems (unreadable certificates, a bad config, a port in use) exit 1 with one line on stderr.
 */
import type { DestinationStream } from 'pino';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
import { CLUSTER_MODES, chooseClusterAccess, serviceAccountMounted, type ClusterMode } from '../cluster/client.js';
import { errorLine } from '../error-line.js';
import { injectorNamespace } from '../runtime/namespace.js';
import { auditPart } from '../runtime/audit-part.js';
import type { PartContext, WebhookOptions } from '../runtime/webhook.js';
import { EXIT_FAILURE, flagsOrExit, parseFlags, UsageError } from './io.js';

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
(with Connection: close) for --drain-seconds, then the listeners close and the process exits 0; a second
SIGTERM/SIGINT ends the drain at once (what is in flight is still answered). SIGHUP re-reads the configuration
and certificate files and never stops the server.

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

function portFlag(name: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${value}"`);
  return port;
}

export function parseServeFlags(argv: string[]): ServeFlags {
  const values = parseFlags(argv, OPTIONS);
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

/** The webhook's options from the flags and the environment; an error is a line for stderr. */
export function webhookOptions(flags: ServeFlags, env: ServeIo['env']): WebhookOptions | { error: string } {
  const access = chooseClusterAccess({
    mode: flags.cluster,
    kubeconfigFlag: flags.kubeconfig,
    env,
    serviceAccountMounted: flags.cluster !== 'off' && serviceAccountMounted(),
  });
  if ('error' in access) return { error: access.error };
  const namespace = injectorNamespace(env);
  if (flags.selfManagedCerts && !access.on) return { error: `--self-managed-certs needs cluster access: ${access.why}` };
  return {
    host: flags.host,
    port: flags.port,
    metricsPort: flags.metricsPort,
    drainSeconds: flags.drainSeconds,
    logLevel: flags.logLevel,
    injectorNamespace: namespace,
    ...(flags.config === undefined ? {} : { configFile: flags.config }),
    certificates: flags.selfManagedCerts
      ? { kind: 'self-managed', namespace, secretName: flags.tlsSecret, webhookConfigName: flags.webhookConfig, service: flags.service }
      : { kind: 'files', cert: flags.tlsCert, key: flags.tlsKey },
    cluster: access,
    // The missed-pods auditor needs the cluster; it audits only when the configuration turns it on.
    ...(access.on ? { extraParts: (context: PartContext) => [auditPart(context, namespace)] } : {}),
  };
}

/** Flags → options → run until SIGTERM/SIGINT; resolves with the exit code once everything is closed. */
export async function runServe(argv: string[], io: ServeIo): Promise<number> {
  const parsed = flagsOrExit('serve', SERVE_USAGE, () => parseServeFlags(argv), io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const fail = (message: string): number => {
    io.stderr.write(`sidecar-injector serve: ${message}\n`);
    return EXIT_FAILURE;
  };
  const options = webhookOptions(parsed.flags, io.env);
  if ('error' in options) return fail(options.error);
  const logStream = io.stdout === process.stdout ? await batchedStdout() : io.stdout;
  const { startWebhook } = await import('../runtime/webhook.js');
  const { runUntilSignal } = await import('../runtime/signals.js');
  return runUntilSignal(
    () => startWebhook({ ...options, logStream }),
    (err) => fail(errorLine(err)),
  );
}
