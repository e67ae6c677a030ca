/**
 * Every answer that is not an AdmissionReview: errors raised by handlers and parsers, unknown paths (404) and
 * known paths with another method (405), URLs the router cannot decode, and malformed HTTP below fastify. Each is
 * one line of JSON, `{"error":"<reason>"}`, never a stack trace, never fastify's default error shape.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clip } from '../log-fields.js';
import type { RejectReason, Rejections } from '../rejections.js';
import { oneLine } from '../../error-line.js';
import { appWide, BadRequest, pathOf } from './shared.js';

/** Known paths and their methods: a known path with another method answers 405, not 404. */
const ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = {
  '/mutate': ['POST'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
};

export interface ErrorsOptions {
  rejections: Rejections;
  bodyLimit: number;
}

interface ErrorAnswer {
  status: number;
  reason: string;
  label: RejectReason;
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

/** Status and one-line reason for an error raised before or outside a handler. */
function errorAnswer(err: FastifyError, request: FastifyRequest, bodyLimit: number): ErrorAnswer {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const sent = request.headers['content-type'];
      const what = sent === undefined ? 'no content-type' : `content-type ${JSON.stringify(oneLine(sent, 80))}`;
      return { status: 415, reason: `unsupported ${what}: send application/json`, label: 'content-type' };
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, reason: `request body exceeds the limit of ${bodyLimit} bytes`, label: 'body-too-large' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, reason: 'request body is empty', label: 'invalid-body' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, reason: 'request body is not valid JSON', label: 'invalid-body' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, reason: 'request body length does not match content-length', label: 'invalid-body' };
    default:
      break;
  }
  // The envelope checks quote what they found (`unsupported apiVersion "…"`): clipped, for the reply and the log.
  if (err instanceof BadRequest) return { status: err.statusCode, reason: clip(err.message), label: err.reason };
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, reason: (STATUS_CODES[status] ?? 'bad request').toLowerCase(), label: 'other' };
  }
  return { status: 500, reason: 'internal error', label: 'other' };
}

/** The error handler, and the 404/405 answers decided before any body is read. */
export const errorsPlugin = appWide<ErrorsOptions>((app, { rejections, bodyLimit }, done) => {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, reason, label } = errorAnswer(err, request, bodyLimit);
    if (status >= 500 && !(err instanceof BadRequest)) request.log.error({ err }, 'unhandled error');
    else rejections.reject(request.log, status, label, { error: reason, code: err.code, path: oneLine(pathOf(request.url), 100) });
    // Overloaded: the one refusal worth retrying, and soon.
    if (label === 'overloaded') void reply.header('retry-after', '1');
    void reply.code(status).type('application/json').send({ error: reason });
  });

  function answerNoRoute(request: FastifyRequest, reply: FastifyReply): void {
    const path = routedPath(request.url);
    const allowed = Object.hasOwn(ROUTE_METHODS, path) ? ROUTE_METHODS[path] : undefined;
    const status = allowed === undefined ? 404 : 405;
    // Quiet: probes and scanners hitting unknown paths are not worth a line each at info.
    const fields = { method: oneLine(request.method, 20), path: oneLine(path, 100) };
    rejections.reject(request.log, status, allowed === undefined ? 'no-route' : 'method-not-allowed', fields, true);
    if (allowed === undefined) {
      void reply.code(404).send({ error: `no route ${JSON.stringify(oneLine(path, 100))}` });
      return;
    }
    void reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send({ error: `method ${oneLine(request.method, 20)} not allowed on ${path}: use ${allowed.join(' or ')}` });
  }

  // Path and method are judged before the body is read: a wrong route is a 404/405 whatever its body, and an
  // unknown route's body is never parsed. A matched route (the router decodes the path: `/mutat%65` is
  // `/mutate`) goes on to its handler.
  app.addHook('onRequest', (request, reply, next) => {
    if (request.routeOptions.url !== undefined) {
      next();
      return;
    }
    answerNoRoute(request, reply);
  });
  app.setNotFoundHandler((request, reply) => answerNoRoute(request, reply));
  done();
});

/** Errors fastify's router raises before routing (a URL it cannot decode): the `frameworkErrors` option. */
export function frameworkErrorHandler(rejections: Rejections) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    rejections.reject(request.log, 400, 'malformed-url', { code: err.code });
    void reply
      .code(400)
      .header('connection', 'close')
      .send({ error: err.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : 'bad request' });
  };
}

/**
 * Malformed HTTP and timeouts below fastify (Node's 'clientError', the `clientErrorHandler` option): answered
 * like the rest, then closed.
 */
export function clientErrorHandler(rejections: Rejections) {
  return function clientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let reason = 'malformed HTTP request';
    let label: RejectReason = 'malformed-http';
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'request not received in time';
      label = 'request-timeout';
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'request headers too large';
      label = 'headers-too-large';
    }
    rejections.reject(this.log, status, label, { error: reason, code: err.code });
    // As Node does: only when no response has started on this socket.
    const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && (pending === undefined || pending === null || pending.headersSent !== true)) {
      const body = JSON.stringify({ error: reason });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  };
}
