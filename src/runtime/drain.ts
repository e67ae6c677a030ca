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
/** …or after this long in any case (clients that never stop connecting have stale endpoints). */
const MAX_QUIET_WAIT_MS = 2_000;

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
