/**
 * The webhook's HTTP app: routes, body parsing, error answers. `buildApp` configures fastify and never listens;
 * the composition root (src/cli/serve.ts) does that and owns the process lifecycle.
 *
 * Every answer that is not an AdmissionReview is one line of JSON, `{"error":"<reason>"}` — never a stack
 * trace, never fastify's default error shape.
 */
import type { DestinationStream } from 'pino';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import {
  fastify,
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import { admit, requestNamespace, requestObjectName, type AdmissionDeps } from '../admission/respond.js';
import { parseAdmissionReview } from '../admission/review.js';
import { parseJsonBody } from './json-body.js';
import type { AdmissionMetrics } from './metrics.js';
import { AdmissionReviewResponseBody, ErrorBody, StatusBody } from './schemas.js';
import { serverFactory, type ListenerOptions } from './server-factory.js';

/**
 * The API server accepts objects up to 3 MiB; as JSON inside an AdmissionReview (which may carry `oldObject`
 * too) a body can be larger, hence 6 MiB. Bigger bodies get 413 without being read to the end.
 */
export const DEFAULT_BODY_LIMIT = 6 * 1024 * 1024;

export interface AppLoggerOptions {
  level?: string;
  /** Where log lines go (default stdout). Tests pass a stream to read them. */
  stream?: DestinationStream;
}

export interface AppDeps {
  admission: AdmissionDeps;
  metrics: AdmissionMetrics;
  /** `/readyz`: 200 when true, 503 otherwise. */
  ready: () => boolean;
  /** While true (the drain after SIGTERM) every response carries `Connection: close`. */
  draining?: () => boolean;
  bodyLimit?: number;
  /** TLS and timeouts of the server fastify wraps. */
  listener?: ListenerOptions;
  /** Structured JSON logs (pino). `false`: no logs. Default: info to stdout. */
  logger?: AppLoggerOptions | false;
  /** A monotonic clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger
>;

/** Known paths and their methods: a known path with another method answers 405, not 404. */
const ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = {
  '/mutate': ['POST'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
};

/** An error whose message is safe to send back as it is (it never quotes the body). */
class BadRequest extends Error {
  readonly statusCode: number;
  constructor(message: string, statusCode = 400) {
    super(message);
    this.statusCode = statusCode;
  }
}

function oneLine(text: string, max = 200): string {
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** The path as the router sees it: percent-decoded where that is valid. */
function routedPath(url: string): string {
  const path = pathOf(url);
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function pathOf(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : url.slice(0, index);
}

/** Status and one-line reason for an error raised before or outside a handler. */
function errorAnswer(err: FastifyError, request: FastifyRequest, bodyLimit: number): { status: number; reason: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const sent = request.headers['content-type'];
      const what = sent === undefined ? 'no content-type' : `content-type ${JSON.stringify(oneLine(sent, 80))}`;
      return { status: 415, reason: `unsupported ${what}: send application/json` };
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, reason: `request body exceeds the limit of ${bodyLimit} bytes` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, reason: 'request body is empty' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, reason: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, reason: 'request body length does not match content-length' };
    default:
      break;
  }
  if (err instanceof BadRequest) return { status: err.statusCode, reason: err.message };
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) return { status, reason: (STATUS_CODES[status] ?? 'bad request').toLowerCase() };
  return { status: 500, reason: 'internal error' };
}

export function buildApp(deps: AppDeps): App {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const now = deps.now ?? (() => performance.now());
  const draining = deps.draining ?? (() => false);
  const { metrics } = deps;

  const loggerOptions =
    deps.logger === false
      ? false
      : {
          level: deps.logger?.level ?? 'info',
          ...(deps.logger?.stream === undefined ? {} : { stream: deps.logger.stream }),
        };

  const app = fastify({
    serverFactory: serverFactory(deps.listener),
    logger: loggerOptions,
    // The per-request "incoming request"/"request completed" lines are on the hot path and say nothing the one
    // admission line does not: off. Each admission logs one line itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // During the drain nothing answers 503: every request that reaches us gets a real answer, marked
    // `Connection: close`. On close, idle keep-alive sockets are closed and busy ones finish their request.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    clientErrorHandler: clientError,
    frameworkErrors: frameworkError,
  });

  app.decorateRequest('startedAt', 0);

  // Only application/json (any parameters, e.g. charset) reaches a handler; everything else is a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const parsed = parseJsonBody(typeof body === 'string' ? body : body.toString('utf8'));
    if (parsed.ok) done(null, parsed.value);
    else done(new BadRequest(parsed.reason), undefined);
  });

  // Synchronous: an async hook on every reply costs a promise per request for a header needed only when draining.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining()) void reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, reason } = errorAnswer(err, request, bodyLimit);
    if (status >= 500) request.log.error({ err }, 'unhandled error');
    else request.log.info({ status, reason, code: err.code, path: pathOf(request.url) }, 'bad request');
    if (status < 500) metrics.rejected.inc({ code: String(status) });
    void reply.code(status).type('application/json').send({ error: reason });
  });

  // Path and method are judged before the body is read: a wrong route is a 404/405 whatever its body, and an
  // unknown route's body is never parsed.
  app.addHook('onRequest', (request, reply, done) => {
    // A matched route (the router decodes the path: `/mutat%65` is `/mutate`) goes on to its handler.
    if (request.routeOptions.url !== undefined) {
      done();
      return;
    }
    answerNoRoute(request, reply);
  });

  function answerNoRoute(request: FastifyRequest, reply: FastifyReply): void {
    const path = routedPath(request.url);
    const allowed = Object.hasOwn(ROUTE_METHODS, path) ? ROUTE_METHODS[path] : undefined;
    const status = allowed === undefined ? 404 : 405;
    metrics.rejected.inc({ code: String(status) });
    // Debug only: probes and scanners hitting unknown paths are not worth a line each at info.
    request.log.debug({ status, method: request.method, path: oneLine(path, 100) }, 'no such route');
    if (allowed === undefined) {
      void reply.code(404).send({ error: `no route ${JSON.stringify(oneLine(path, 100))}` });
      return;
    }
    void reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send({ error: `method ${request.method} not allowed on ${path}: use ${allowed.join(' or ')}` });
  }

  app.setNotFoundHandler((request, reply) => answerNoRoute(request, reply));

  app.get('/healthz', { schema: { response: { 200: StatusBody } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: StatusBody, 503: StatusBody } } }, async (_request, reply) => {
    if (deps.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready' });
  });

  app.post(
    '/mutate',
    {
      schema: { response: { 200: AdmissionReviewResponseBody, '4xx': ErrorBody } },
      onRequest: (request, reply, done) => {
        request.startedAt = now();
        metrics.inflight.inc();
        // 'close' fires once the response is sent or the connection died: the gauge never leaks.
        reply.raw.once('close', () => metrics.inflight.dec());
        done();
      },
    },
    async (request, reply) => {
      if (request.body === undefined) {
        throw new BadRequest('request body is empty: send an AdmissionReview as application/json');
      }
      const parsed = parseAdmissionReview(request.body);
      if (!parsed.ok) throw new BadRequest(parsed.reason);

      const { review } = parsed;
      const { review: answer, outcome } = await admit(review, deps.admission);
      const seconds = (now() - request.startedAt) / 1000;
      metrics.admissions.inc({ decision: outcome.decision, reason: outcome.reason });
      if (outcome.reducedBy !== undefined) metrics.podSecurityReductions.inc({ level: outcome.reducedBy });
      metrics.duration.observe(seconds);

      // One line per admission, with its own fields: a child logger per request costs more than the line.
      const line = {
        uid: review.request.uid,
        namespace: requestNamespace(review),
        pod: requestObjectName(review),
        decision: outcome.decision,
        reason: outcome.reason,
        operation: review.request.operation,
        dryRun: review.request.dryRun === true,
        patchOperations: outcome.patchOperations,
        warnings: outcome.warnings,
        durationMs: Math.round(seconds * 1e6) / 1e3,
      };
      if (outcome.decision === 'error') {
        request.log.error(
          { ...line, detail: outcome.detail, denied: outcome.denied, err: outcome.error },
          'admission failed: our own fault',
        );
      } else {
        request.log.info(line, 'admission');
      }
      return reply.code(200).send(answer);
    },
  );

  return app;

  /** Errors fastify's router raises before routing (a URL it cannot decode). */
  function frameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
    metrics.rejected.inc({ code: '400' });
    void reply
      .code(400)
      .header('connection', 'close')
      .send({ error: err.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : 'bad request' });
  }

  /** Malformed HTTP and timeouts below fastify (Node's 'clientError'): answer like the rest, then close. */
  function clientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let reason = 'malformed HTTP request';
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'request not received in time';
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'request headers too large';
    }
    this.log.debug({ code: err.code, status }, 'client error');
    // As Node does: only when no response has started on this socket.
    const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && (pending === undefined || pending === null || pending.headersSent !== true)) {
      const body = `${JSON.stringify({ error: reason })}`;
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** When the request arrived, by the app's monotonic clock (ms). */
    startedAt: number;
  }
}
