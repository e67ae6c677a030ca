/**
 * The one place the running webhook is composed: a list of parts (configuration source, cluster facts,
 * certificate source, listeners, and any extra part) started in order, ready when every part is, closed in
 * reverse order. The listeners are built first (their app owns the logger), and the certificate source is handed
 * the HTTPS server as it is built.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ClusterAccess } from '../cluster/client.js';
import type { InjectorConfig } from '../core/types.js';
import type { AdmissionDeps } from '../admission/respond.js';
import type { AdmissionMetrics } from '../http/metrics.js';
import type { ListenerOptions } from '../http/server-factory.js';
import { createListeners, type Listeners, type ListenersOptions } from '../server.js';
import { certificateSource, type CertificateSpec } from './certificate-part.js';
import { clusterPart, type ClusterPart } from './cluster-part.js';
import { configSource } from './config-part.js';
import type { Part } from './part.js';

/** The listeners' settings a webhook passes through as they are (src/server.ts documents each). */
const OPTIONAL_LISTENER_SETTINGS = ['logStream', 'bodyLimit', 'bodyBudget', 'now', 'closeGraceMs', 'idleCloseMs', 'processMetrics'] as const;
type ListenerSettings = 'host' | 'port' | 'metricsPort' | 'drainSeconds' | 'logLevel' | (typeof OPTIONAL_LISTENER_SETTINGS)[number];

export interface WebhookOptions extends Pick<ListenersOptions, ListenerSettings> {
  injectorNamespace: string;
  /** YAML configuration file; absent: `config`, else the built-in defaults. */
  configFile?: string;
  /** A configuration held in memory (tests). */
  config?: InjectorConfig;
  certificates: CertificateSpec;
  cluster: Exclude<ClusterAccess, { error: string }>;
  /** Optional parts composed after the listeners (e.g. an auditor); started, readied and closed with the rest. */
  extraParts?: (context: PartContext) => Part[];
  /** Listener timeouts (the certificate source is added here). */
  listener?: Omit<ListenerOptions, 'tls' | 'certificates'>;
  /** Replaces the admission engine (tests). */
  engine?: AdmissionDeps['engine'];
  /** Replaces the cluster facts (tests); the cluster part then only says it is off. */
  clusterFacts?: AdmissionDeps['clusterFacts'];
}

/** What an extra part may use. */
export interface PartContext {
  log: FastifyBaseLogger;
  metrics: AdmissionMetrics;
  config: () => InjectorConfig;
  cluster: ClusterPart;
}

export interface Webhook {
  listeners: Listeners;
  log: FastifyBaseLogger;
  parts: readonly Part[];
  port: number;
  metricsPort: number;
  ready(): boolean;
  /** Graceful stop: the drain, then every part in reverse order. Idempotent. */
  stop(reason: string): Promise<void>;
  /** Ends a drain in progress now (a second signal). */
  hurry(): void;
  /** Every part re-reads what it watches (SIGHUP). */
  reload(): Promise<void>;
}

/** Builds the parts and starts them in order; a part that cannot start closes the ones already started. */
export async function startWebhook(options: WebhookOptions): Promise<Webhook> {
  // The parts the app reads from are built first; those that log start after the listeners are built.
  let parts: Part[] = [];
  const configPart = configSource({
    ...(options.configFile === undefined ? {} : { file: options.configFile }),
    ...(options.config === undefined ? {} : { fixed: options.config }),
    log: () => listeners.log,
    metrics: () => listeners.metrics,
    injectorNamespace: options.injectorNamespace,
  });
  const cluster = clusterPart(options.cluster, () => listeners.log);
  const certificates = certificateSource(options.certificates, () => ({
    log: listeners.log,
    registry: listeners.metrics.registry,
    kubeConfig: cluster.kubeConfig(),
  }));
  const listeners: Listeners = createListeners({
    host: options.host,
    port: options.port,
    metricsPort: options.metricsPort,
    drainSeconds: options.drainSeconds,
    logLevel: options.logLevel,
    ...pick(options, [...OPTIONAL_LISTENER_SETTINGS]),
    admission: {
      config: () => configPart.current(),
      injectorNamespace: options.injectorNamespace,
      clusterFacts: options.clusterFacts ?? ((namespace) => cluster.facts(namespace)),
      ...(options.engine === undefined ? {} : { engine: options.engine }),
    },
    ready: () => parts.every((part) => part === listeners || part.ready()),
    listener: { ...options.listener, certificates },
  });
  const { log, metrics } = listeners;
  const config = (): InjectorConfig => configPart.current();
  const extra = options.extraParts?.({ log, metrics, config, cluster }) ?? [];
  parts = [configPart, cluster, certificates, listeners, ...extra];

  const started: Part[] = [];
  try {
    for (const part of parts) {
      await part.start();
      started.push(part);
    }
  } catch (err) {
    for (const part of started.reverse()) await part.close();
    await listeners.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    listeners,
    log,
    parts,
    port: listeners.port(),
    metricsPort: listeners.metricsPort(),
    ready: () => parts.every((part) => part.ready()),
    stop: (reason) => {
      stopping ??= (async () => {
        // The drain first: every other part keeps serving the requests it answers.
        await listeners.shutdown(reason);
        for (const part of [...parts].reverse()) if (part !== listeners) await part.close();
      })();
      return stopping;
    },
    hurry: () => listeners.hurry(),
    reload: async () => {
      for (const part of parts) await part.reload?.();
    },
  };
}

function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key];
  return out;
}
