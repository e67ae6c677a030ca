/**
 * The running webhook: the admission app on HTTPS, the metrics listener on plain HTTP, and the graceful stop.
 * Reads no environment and no files: `src/cli/serve.ts` does that and hands the results in.
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
import type { ClusterFacts } from './admission/respond.js';
import type { InjectorConfig } from './core/types.js';
import { buildApp, type App } from './http/app.js';
import { buildMetricsApp, createMetrics, type AdmissionMetrics } from './http/metrics.js';
import type { ListenerOptions } from './http/server-factory.js';
import { trackConnections, type ConnectionTracker } from './runtime/connections.js';

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
  /** During the drain, a keep-alive connection idle this long is closed. Default 1 s. */
  idleCloseMs?: number;
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
  /** Ends a drain in progress now: idle connections close at once, in-flight requests finish. */
  hurry(): void;
  isDraining(): boolean;
}

const DEFAULT_CLOSE_GRACE_MS = 10_000;
const DEFAULT_IDLE_CLOSE_MS = 1_000;
/** How often the drain looks for connections that have been idle long enough. */
const SWEEP_MS = 100;
/** After the drain, the listener closes once no connection has arrived for this long… */
const QUIET_MS = 50;
/** …or after this long in any case (clients that never stop connecting have stale endpoints). */
const MAX_QUIET_WAIT_MS = 2_000;

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
  const connections = trackConnections(app.server);

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

  const drain = drainListener({
    server: app.server,
    connections,
    log,
    drainMs: options.drainSeconds * 1000,
    idleCloseMs: options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS,
    closeGraceMs,
  });
  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      log.info({ reason, drainSeconds: options.drainSeconds }, 'shutting down: /readyz is 503, draining');
      await drain.run();
      // Nothing is left for fastify's own close to cut: it runs its onClose hooks.
      await app.close();
      await closeMetrics(metricsServer, 1_000);
      log.info('stopped');
    })();
    return stopping;
  };

  return { app, metrics, metricsServer, port, metricsPort, log, shutdown, hurry: drain.hurry, isDraining: () => draining };
}

interface DrainOptions {
  server: Server;
  connections: ConnectionTracker;
  log: FastifyBaseLogger;
  drainMs: number;
  idleCloseMs: number;
  closeGraceMs: number;
}

/** The listener's part of a graceful stop: `run` resolves once every connection is closed. */
function drainListener(options: DrainOptions): { run(): Promise<void>; hurry(): void } {
  const { server, connections, log } = options;
  let idleCloseMs = options.idleCloseMs;
  let wake: () => void = () => {};
  let hurried = false;
  const hurry = (): void => {
    hurried = true;
    idleCloseMs = 0;
    wake();
  };
  const run = async (): Promise<void> => {
    const sweep = setInterval(() => connections.closeIdle(idleCloseMs), SWEEP_MS);
    try {
      if (!hurried) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.drainMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      log.info({ connections: connections.size() }, 'drain over: answering what is in flight, closing the listener once quiet');
      // Accepted connections stay: a client that connected in the last moment gets its answer, not a reset.
      const closed = stopAccepting(server, () => (hurried ? 0 : QUIET_MS));
      connections.closeIdle(idleCloseMs);
      const force = setTimeout(() => {
        log.warn({ connections: connections.size() }, 'in-flight requests did not finish in time: closing their connections');
        connections.destroyAll();
        server.closeAllConnections();
      }, options.closeGraceMs);
      try {
        await closed;
      } finally {
        clearTimeout(force);
      }
    } finally {
      clearInterval(sweep);
    }
  };
  return { run, hurry };
}

/**
 * Closes the listener at a quiet moment; resolves once every connection is closed. Closing a listening socket
 * resets the connections the kernel has completed but Node has not accepted yet: their clients have sent a
 * request nobody will read. So the listener closes only after `quietMs` without a new connection (or at
 * `maxWaitMs`), and from a setImmediate callback, right after the poll phase that would have accepted anything
 * pending.
 */
function stopAccepting(server: Server, quietMs: () => number): Promise<void> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let lastAccept = startedAt;
    const onConnection = (): void => {
      lastAccept = performance.now();
    };
    server.on('connection', onConnection);
    const waitMore = (): number => {
      const now = performance.now();
      if (now - startedAt >= MAX_QUIET_WAIT_MS) return 0;
      return Math.max(0, quietMs() - (now - lastAccept));
    };
    const attempt = (): void => {
      const wait = waitMore();
      if (wait > 0) {
        setTimeout(attempt, Math.ceil(wait));
        return;
      }
      setImmediate(() => {
        if (waitMore() > 0) {
          attempt();
          return;
        }
        server.off('connection', onConnection);
        server.close(() => resolve());
      });
    };
    attempt();
  });
}
