/**
 * The listeners part: the admission app on HTTPS, the metrics listener on plain HTTP, and the graceful stop.
 * Reads no environment and no files: the other parts (src/runtime/) hand it configuration, certificates and
 * cluster facts, and src/runtime/webhook.ts composes them.
 *
 * Stopping (SIGTERM), as the README's Endpoints section promises:
 *  1. at once `/readyz` answers 503, so the endpoint leaves the Service;
 *  2. for `drainSeconds` the listener still accepts and every request is answered, each with `Connection: close`,
 *     so keep-alive clients (the API server) reconnect through the Service, to another replica. Keep-alive
 *     connections idle since before the signal never get such an answer: each is closed once it has been idle for
 *     `idleCloseMs`, early in the drain, while its client is not sending (see src/runtime/connections.ts);
 *  3. then the listener stops accepting; connections already accepted are answered (their first request too),
 *     idle ones keep being closed the same way, in-flight requests finish;
 *  4. the metrics listener closes; the caller exits 0.
 * `hurry()` (a second signal) ends the drain now: idle connections close at once, in-flight requests finish.
 */
import type { DestinationStream } from 'pino';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { AdmissionDeps } from './admission/respond.js';
import { buildApp, type App, type AppDeps } from './http/app.js';
import { buildMetricsApp, createMetrics, type AdmissionMetrics } from './http/metrics.js';
import type { ListenerOptions } from './http/server-factory.js';
import { trackConnections } from './runtime/connections.js';
import { drainListener } from './runtime/drain.js';
import type { Part } from './runtime/part.js';

export interface ListenersOptions {
  host: string;
  port: number;
  /** The metrics listener binds the same host. 0: a random free port. */
  metricsPort: number;
  drainSeconds: number;
  logLevel: string;
  /** Where log lines go (default stdout). */
  logStream?: DestinationStream;
  admission: AdmissionDeps;
  /** Whether every other part is ready; draining always makes /readyz 503. */
  ready: () => boolean;
  /** The certificate source (ListenerOptions.certificates), or a fixed pair in `listener.tls`. */
  listener: ListenerOptions;
  bodyLimit?: number;
  /** Request body bytes held at once, and how long a request may wait for room (defaults in src/http/app.ts). */
  bodyBudget?: AppDeps['bodyBudget'];
  /** The app's monotonic clock in ms (tests); default `performance.now`. */
  now?: AppDeps['now'];
  /** After the drain, how long in-flight requests may take before their sockets are cut. Default 10 s. */
  closeGraceMs?: number;
  /** During the drain, a keep-alive connection idle this long is closed. Default 1 s. */
  idleCloseMs?: number;
  /** Process metrics (CPU, memory, GC) in the registry. Default true. */
  processMetrics?: boolean;
}

export interface Listeners extends Part {
  app: App;
  log: FastifyBaseLogger;
  metrics: AdmissionMetrics;
  /** Once started. */
  port(): number;
  metricsPort(): number;
  /** Starts the graceful stop (idempotent); resolves once both listeners are closed. */
  shutdown(reason: string): Promise<void>;
  /** Ends a drain in progress now: idle connections close at once, in-flight requests finish. */
  hurry(): void;
  isDraining(): boolean;
}

const DEFAULT_CLOSE_GRACE_MS = 10_000;
const DEFAULT_IDLE_CLOSE_MS = 1_000;

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

/** Builds both listeners (the app and its logger exist from here on); `start` binds them. */
export function createListeners(options: ListenersOptions): Listeners {
  let draining = false;
  let port = 0;
  let metricsPort = 0;
  const metrics = createMetrics({ processMetrics: options.processMetrics ?? true });
  const app = buildApp({
    admission: options.admission,
    metrics,
    ready: () => !draining && options.ready(),
    draining: () => draining,
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    ...(options.bodyBudget === undefined ? {} : { bodyBudget: options.bodyBudget }),
    ...(options.now === undefined ? {} : { now: options.now }),
    listener: options.listener,
    logger: { level: options.logLevel, ...(options.logStream === undefined ? {} : { stream: options.logStream }) },
  });
  const log = app.log;
  const connections = trackConnections(app.server);
  const metricsServer = buildMetricsApp(metrics.registry);
  metricsServer.on('clientError', (_err, socket) => socket.destroy());
  const drain = drainListener({
    server: app.server,
    connections,
    log,
    drainMs: options.drainSeconds * 1000,
    idleCloseMs: options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS,
    closeGraceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
  });

  const start = async (): Promise<void> => {
    try {
      await app.listen({
        host: options.host,
        port: options.port,
        // fastify builds the address from its own `https` option, which we leave unset (our serverFactory has TLS).
        listenTextResolver: (address) => `Server listening at ${address.replace(/^http:/, 'https:')}`,
      });
      port = (app.server.address() as AddressInfo).port;
      metricsPort = await listenMetrics(metricsServer, options.host, options.metricsPort);
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    log.info({ host: options.host, port, metricsPort, drainSeconds: options.drainSeconds }, 'listening');
  };

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      log.info({ reason, drainSeconds: options.drainSeconds }, 'shutting down: /readyz is 503, draining');
      if (app.server.listening) await drain.run();
      // Nothing is left for fastify's own close to cut: it runs its onClose hooks.
      await app.close();
      await closeMetrics(metricsServer, 1_000);
      log.info('stopped');
    })();
    return stopping;
  };

  return {
    name: 'listeners',
    app,
    log,
    metrics,
    port: () => port,
    metricsPort: () => metricsPort,
    start,
    ready: () => !draining,
    close: () => shutdown('close'),
    shutdown,
    hurry: drain.hurry,
    isDraining: () => draining,
  };
}
