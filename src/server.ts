/**
 * The running webhook: the admission app on HTTPS, the metrics listener on plain HTTP, and the graceful stop.
 * Reads no environment and no files: `src/cli/serve.ts` does that and hands the results in.
 *
 * Stopping (SIGTERM), as the README's Endpoints section promises:
 *  1. at once `/readyz` answers 503, so the endpoint leaves the Service;
 *  2. for `drainSeconds` every request is still answered, each with `Connection: close`, so keep-alive clients
 *     (the API server) reconnect through the Service, to another replica;
 *  3. then the listener closes, idle keep-alive sockets are closed, in-flight requests finish;
 *  4. the metrics listener closes; the caller exits 0.
 */
import type { DestinationStream } from 'pino';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { ClusterFacts } from './admission/respond.js';
import type { InjectorConfig } from './core/types.js';
import { buildApp, type App } from './http/app.js';
import { buildMetricsApp, createMetrics, type AdmissionMetrics } from './http/metrics.js';
import type { ListenerOptions } from './http/server-factory.js';

export interface ServerOptions {
  host: string;
  port: number;
  /** The metrics listener binds the same host. 0: a random free port. */
  metricsPort: number;
  tls: { cert: string | Buffer; key: string | Buffer };
  drainSeconds: number;
  logLevel: string;
  /** Where log lines go (default stdout). */
  logStream?: DestinationStream;
  injectorNamespace: string;
  config: () => InjectorConfig;
  clusterFacts?: (namespace: string) => ClusterFacts | Promise<ClusterFacts>;
  /** Extra readiness condition (e.g. a synced namespace cache); draining always makes /readyz 503. */
  ready?: () => boolean;
  bodyLimit?: number;
  listener?: Omit<ListenerOptions, 'tls'>;
  /** After the drain, how long in-flight requests may take before their sockets are cut. Default 10 s. */
  closeGraceMs?: number;
}

export interface RunningServer {
  app: App;
  metrics: AdmissionMetrics;
  metricsServer: Server;
  port: number;
  metricsPort: number;
  log: FastifyBaseLogger;
  /** Starts the graceful stop (idempotent); resolves once both listeners are closed. */
  shutdown(reason: string): Promise<void>;
  isDraining(): boolean;
}

const DEFAULT_CLOSE_GRACE_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listenMetrics(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeMetrics(server: Server, graceMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    // A scraper's keep-alive socket would hold close() open: idle ones go now, busy ones after a grace period.
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Builds and starts both listeners. Throws (with the listener closed again) when the TLS material is invalid
 * or a port cannot be bound.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  let draining = false;
  const metrics = createMetrics();
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  const extraReady = options.ready ?? (() => true);

  const app = buildApp({
    admission: {
      config: options.config,
      injectorNamespace: options.injectorNamespace,
      clusterFacts: options.clusterFacts ?? (() => ({})),
    },
    metrics,
    ready: () => !draining && extraReady(),
    draining: () => draining,
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    listener: { ...options.listener, tls: options.tls },
    logger: {
      level: options.logLevel,
      ...(options.logStream === undefined ? {} : { stream: options.logStream }),
    },
  });
  const log = app.log;

  const metricsServer = buildMetricsApp(metrics.registry);
  metricsServer.on('clientError', (_err, socket) => socket.destroy());

  try {
    await app.listen({
      host: options.host,
      port: options.port,
      // fastify builds the address from its own `https` option, which we leave unset (our serverFactory has TLS).
      listenTextResolver: (address) => `Server listening at ${address.replace(/^http:/, 'https:')}`,
    });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const port = (app.server.address() as AddressInfo).port;

  let metricsPort: number;
  try {
    metricsPort = await listenMetrics(metricsServer, options.host, options.metricsPort);
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }

  log.info({ host: options.host, port, metricsPort, drainSeconds: options.drainSeconds }, 'listening');

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      log.info({ reason, drainSeconds: options.drainSeconds }, 'shutting down: /readyz is 503, draining');
      await sleep(options.drainSeconds * 1000);
      log.info('drain over: closing the listener, finishing in-flight requests');
      // Requests still running after the grace period lose their sockets rather than hold the pod.
      const force = setTimeout(() => {
        log.warn('in-flight requests did not finish in time: closing their connections');
        app.server.closeAllConnections();
      }, closeGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
      await closeMetrics(metricsServer, 1_000);
      log.info('stopped');
    })();
    return stopping;
  };

  return { app, metrics, metricsServer, port, metricsPort, log, shutdown, isDraining: () => draining };
}
