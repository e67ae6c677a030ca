/**
 * Memory: request bodies held at once are capped by a byte budget (src/http/byte-budget.ts). A request reserves
 * its Content-Length (a body without one, chunked, reserves the whole body limit) before its body is read, and
 * keeps it until its answer has gone, since the parsed pod and the answer are what cost memory. One that does not
 * fit waits briefly, then gets 503 with `Retry-After`: with `failurePolicy: Ignore` a refusal means a pod without
 * the sidecar, so waiting comes first, bounded so the answer still beats the API server's timeout.
 */
import type { AdmissionMetrics } from '../metrics.js';
import { createByteBudget, type Release } from '../byte-budget.js';
import { appWide, BadRequest } from './shared.js';

export interface BodyBudgetOptions {
  /** Request-body bytes held at once; at least the body limit (a single largest body always fits). */
  bytes: number;
  /** How long a request may wait for room before its 503. */
  maxWaitMs: number;
  bodyLimit: number;
  metrics: AdmissionMetrics;
}

/** What a request reserves: its declared length, or the body limit when it declares none. */
function declaredBytes(header: string | undefined, bodyLimit: number): number {
  if (header === undefined || !/^\d+$/.test(header)) return bodyLimit;
  const length = Number(header);
  // Over the limit: fastify answers 413 before reading a byte, nothing to reserve.
  return length > bodyLimit ? 0 : length;
}

export const bodyBudgetPlugin = appWide<BodyBudgetOptions>((app, options, done) => {
  const { metrics } = options;
  const budget = createByteBudget({
    bytes: Math.max(options.bytes, options.bodyLimit),
    maxWaitMs: options.maxWaitMs,
    onChange: (held, waiting) => {
      metrics.bodyBytesHeld.set(held);
      metrics.waitingRequests.set(waiting);
    },
  });

  app.addHook('preParsing', (request, reply, payload, next) => {
    // Only a routed POST (/mutate) reads a body; 404/405 were answered in onRequest.
    if (request.method !== 'POST' || request.routeOptions.url === undefined) {
      next(null, payload);
      return;
    }
    const bytes = declaredBytes(request.headers['content-length'], options.bodyLimit);
    if (bytes === 0) {
      next(null, payload);
      return;
    }
    let release: Release | undefined;
    let gone = false;
    // 'close': the answer has gone, or the client did. Either way the bytes are free again.
    reply.raw.once('close', () => {
      gone = true;
      release?.();
    });
    void budget.reserve(bytes).then((granted) => {
      if (granted === undefined) {
        next(new BadRequest('server busy: too many request bytes in flight, retry shortly', 503, 'overloaded'));
        return;
      }
      release = granted;
      if (gone) release();
      else next(null, payload);
    });
  });
  done();
});
