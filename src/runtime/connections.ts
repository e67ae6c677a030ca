/**
 * The open connections of a listener and how long each has been idle, so a drain can close idle keep-alive
 * connections one at a time, once each has been idle for a while.
 *
 * Why not `server.closeIdleConnections()`: it closes every connection with no request in progress at that
 * instant. Under steady load a keep-alive connection is idle for microseconds between two requests, and a
 * connection accepted a moment ago has not sent its first request yet: closing either cuts a client that is
 * sending, and it sees ECONNRESET. A client only learns safely of a close that happens while it is not sending;
 * "idle for a second" is the evidence that it is not about to.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

interface Connection {
  /** A request is being read or answered. */
  busy: boolean;
  /** When the connection last did anything: accepted, or its last response finished. */
  idleSince: number;
  /** Bytes received when it went idle: more means the client has started a request the parser has not finished. */
  bytesRead: number;
}

export interface ConnectionTracker {
  /** Closes every connection idle for at least `minIdleMs` (0: every idle one); returns how many it closed. */
  closeIdle(minIdleMs: number): number;
  /** Open connections, busy or idle. */
  size(): number;
  /** Destroys every connection (the last resort after the grace period). */
  destroyAll(): void;
}

/**
 * Follows every connection of `server` from the moment the HTTP layer gets it (after the TLS handshake on an
 * HTTPS server) to its close.
 */
export function trackConnections(server: Server, now: () => number = () => performance.now()): ConnectionTracker {
  const connections = new Map<Socket, Connection>();
  // An HTTPS server hands sockets to HTTP on 'secureConnection'; a plain one on 'connection'.
  const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
  server.on(event, (socket: Socket) => {
    connections.set(socket, { busy: false, idleSince: now(), bytesRead: socket.bytesRead });
    socket.once('close', () => connections.delete(socket));
  });
  // Prepended: marked busy before any handler can answer, however fast.
  server.prependListener('request', (request, response) => {
    const connection = connections.get(request.socket);
    if (connection === undefined) return;
    connection.busy = true;
    response.once('close', () => {
      connection.busy = false;
      connection.idleSince = now();
      connection.bytesRead = request.socket.bytesRead;
    });
  });

  return {
    closeIdle(minIdleMs) {
      const at = now();
      let closed = 0;
      for (const [socket, connection] of connections) {
        if (connection.busy) continue;
        if (socket.bytesRead !== connection.bytesRead) {
          // The client has started sending: that is activity, whatever the parser has made of it so far.
          connection.bytesRead = socket.bytesRead;
          connection.idleSince = at;
          continue;
        }
        if (at - connection.idleSince < minIdleMs) continue;
        socket.destroy();
        connections.delete(socket);
        closed += 1;
      }
      return closed;
    },
    size: () => connections.size,
    destroyAll() {
      for (const socket of connections.keys()) socket.destroy();
      connections.clear();
    },
  };
}
