/**
 * The listener's part of a graceful stop (see src/server.ts for the sequence): idle keep-alive connections are
 * closed once idle for a while, the listener closes at a quiet moment, accepted connections are answered.
 */
import type { Server } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { ConnectionTracker } from './connections.js';

/** How often the drain looks for connections that have been idle long enough. */
const SWEEP_MS = 100;
/** After the drain, the listener closes once no connection has arrived for this long… */
const QUIET_MS = 50;
/**
 * …or after this long in any case (clients that never stop connecting have stale endpoints), and at most half
 * the close grace period, so what the listener accepted last still has time to be answered.
 */
const MAX_QUIET_WAIT_MS = 5_000;

export interface DrainOptions {
  server: Server;
  connections: ConnectionTracker;
  log: FastifyBaseLogger;
  drainMs: number;
  idleCloseMs: number;
  closeGraceMs: number;
}

/** The listener's part of a graceful stop: `run` resolves once every connection is closed. */
export function drainListener(options: DrainOptions): { run(): Promise<void>; hurry(): void } {
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
    // From a setImmediate callback: the poll phase before it has read whatever clients have sent meanwhile, so a
    // request waiting in the kernel while the event loop was busy counts as activity, not idleness.
    const closeIdle = (): void => {
      setImmediate(() => connections.closeIdle(idleCloseMs));
    };
    const sweep = setInterval(closeIdle, SWEEP_MS);
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
      const closed = stopAccepting(server, () => (hurried ? 0 : QUIET_MS), Math.min(MAX_QUIET_WAIT_MS, options.closeGraceMs / 2));
      closeIdle();
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
 * request nobody will read. So the listener closes only after `quietMs` without a new connection (or after
 * `maxWaitMs`), and only once two turns of the event loop in a row (each poll phase accepts whatever is
 * pending) have accepted nothing: what the kernel completed while the loop was busy is accepted, not reset.
 */
function stopAccepting(server: Server, quietMs: () => number, maxWaitMs: number): Promise<void> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let lastAccept = startedAt;
    let accepted = 0;
    const onConnection = (): void => {
      lastAccept = performance.now();
      accepted += 1;
    };
    server.on('connection', onConnection);
    const overdue = (): boolean => performance.now() - startedAt >= maxWaitMs;
    const close = (): void => {
      server.off('connection', onConnection);
      server.close(() => resolve());
    };
    const attempt = (): void => {
      const wait = quietMs() - (performance.now() - lastAccept);
      if (wait > 0 && !overdue()) {
        setTimeout(attempt, Math.ceil(wait));
        return;
      }
      const before = accepted;
      setImmediate(() => {
        if (accepted !== before && !overdue()) return attempt();
        setImmediate(() => (accepted !== before && !overdue() ? attempt() : close()));
      });
    };
    attempt();
  });
}
