/**
 * The Node server under fastify, created by us (fastify's `serverFactory`) because some options only exist at
 * creation time: `connectionsCheckingInterval` (how often Node enforces headersTimeout/requestTimeout: 30 s by
 * default, so a slow client would hold a socket far longer than the timeouts say), and the TLS settings.
 * Note: with a serverFactory, fastify applies none of its own timeout options: every one is set here.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { TLS_CONTEXT_POLICY } from '../tls/policy.js';

export interface ListenerOptions {
  /** PEM serving certificate and key. Absent (and no `certificates`): plain HTTP (local use and `inject()` tests only). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * The certificate source, handed the HTTPS server as it is built: it alone puts serving pairs in force
   * (`setSecureContext`), the first one included. Takes the place of `tls`.
   */
  certificates?: { attach(server: { setSecureContext(options: SecureContextOptions): void }): void };
  /**
   * Idle keep-alive sockets stay open this long. Above the API server's 90 s idle close, so it is always the
   * client that closes an idle connection (a server-side close can race a request being sent). Default 125 s.
   */
  keepAliveTimeoutMs?: number;
  /** Complete request headers must arrive within this from the first byte. Default 5 s. */
  headersTimeoutMs?: number;
  /** The whole request (headers and body) must arrive within this. Default 10 s. */
  requestTimeoutMs?: number;
  /** How often Node checks the two timeouts above. Default 1 s (Node's own default is 30 s). */
  connectionsCheckingIntervalMs?: number;
  /**
   * A TLS handshake must complete within this, counted from the connection (bytes trickling in do not extend
   * it). Default 3 s (Node's default is 120 s): a handshake takes milliseconds, and one slower than the API
   * server's whole 5 s budget is useless; a stalled one holds a connection slot and ~60 KiB until then.
   */
  handshakeTimeoutMs?: number;
  /**
   * Open connections (handshaking, idle or busy); beyond it a new connection is closed at once, before any TLS.
   * Default 512: each API server keeps ~25 idle keep-alive connections and opens more under bursts, so this
   * leaves room for several API servers, probes and scrapers, while 512 connections cost at most ~35 MiB.
   */
  maxConnections?: number;
}

type ListenerSettings = Record<keyof typeof LISTENER_DEFAULTS, number>;

export const LISTENER_DEFAULTS = {
  keepAliveTimeoutMs: 125_000,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  connectionsCheckingIntervalMs: 1_000,
  handshakeTimeoutMs: 3_000,
  maxConnections: 512,
} as const;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Returns a `serverFactory` for fastify: an HTTPS (or HTTP) server with our timeouts, not listening. */
export function serverFactory(options: ListenerOptions = {}): (handler: RequestHandler) => Server {
  const settings: ListenerSettings = { ...LISTENER_DEFAULTS, ...definedOnly(options) };
  if (settings.headersTimeoutMs > settings.requestTimeoutMs) {
    throw new RangeError('headersTimeoutMs must not exceed requestTimeoutMs');
  }
  return (handler) => {
    const httpOptions = {
      connectionsCheckingInterval: settings.connectionsCheckingIntervalMs,
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      // Node would answer a request without Host itself, with an empty 400; ours says why, in one line of JSON.
      requireHostHeader: false,
    };
    const tls = options.certificates === undefined ? options.tls : {};
    const server: Server =
      tls === undefined
        ? createHttpServer(httpOptions, handler)
        : createHttpsServer(
            {
              ...httpOptions,
              ...tls,
              ...TLS_CONTEXT_POLICY,
              // The API server speaks HTTP/1.1 only; say so in ALPN rather than leave it to chance.
              ALPNProtocols: ['http/1.1'],
              handshakeTimeout: settings.handshakeTimeoutMs,
            },
            handler,
          );
    if (options.certificates !== undefined) options.certificates.attach(server as Server & { setSecureContext(o: SecureContextOptions): void });
    // Also set as properties: some Node versions read only these (keepAliveTimeout is not a 20.x option).
    server.keepAliveTimeout = settings.keepAliveTimeoutMs;
    server.headersTimeout = settings.headersTimeoutMs;
    server.requestTimeout = settings.requestTimeoutMs;
    server.maxConnections = settings.maxConnections;
    return server;
  };
}

function definedOnly(options: ListenerOptions): Partial<ListenerSettings> {
  const out: Partial<ListenerSettings> = {};
  for (const key of Object.keys(LISTENER_DEFAULTS) as (keyof typeof LISTENER_DEFAULTS)[]) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
