/**
 * `POST /mutate`: an AdmissionReview in, the engine's answer out, with its metrics and one log line per admission.
 */
import type { FastifyPluginCallback } from 'fastify';
import { admit, requestNamespace, requestObjectName, type AdmissionDeps } from '../../admission/respond.js';
import { parseAdmissionReview } from '../../admission/review.js';
import { clip, clipList, clipOptional } from '../log-fields.js';
import type { AdmissionMetrics } from '../metrics.js';
import { AdmissionReviewResponseBody, ErrorBody } from '../schemas.js';
import { BadRequest } from './shared.js';

export interface AdmissionRouteOptions {
  admission: AdmissionDeps;
  metrics: AdmissionMetrics;
  /** A monotonic clock in milliseconds. */
  now: () => number;
}

export const admissionPlugin: FastifyPluginCallback<AdmissionRouteOptions> = (app, options, done) => {
  const { metrics, now } = options;
  app.decorateRequest('startedAt', 0);
  app.post(
    '/mutate',
    {
      schema: { response: { 200: AdmissionReviewResponseBody, '4xx': ErrorBody } },
      onRequest: (request, reply, next) => {
        request.startedAt = now();
        metrics.inflight.inc();
        // 'close' fires once the response is sent or the connection died: the gauge never leaks.
        reply.raw.once('close', () => metrics.inflight.dec());
        next();
      },
    },
    async (request, reply) => {
      if (request.body === undefined) {
        throw new BadRequest('request body is empty: send an AdmissionReview as application/json');
      }
      const parsed = parseAdmissionReview(request.body);
      if (!parsed.ok) throw new BadRequest(parsed.reason);

      const { review } = parsed;
      const { review: answer, outcome } = await admit(review, options.admission);
      const seconds = (now() - request.startedAt) / 1000;
      metrics.admissions.inc({ decision: outcome.decision, reason: outcome.reason });
      if (outcome.reducedBy !== undefined) metrics.podSecurityReductions.inc({ level: outcome.reducedBy });
      metrics.duration.observe(seconds);

      // One line per admission, with its own fields: a child logger per request costs more than the line. Every
      // string the request chose is clipped (src/http/log-fields.ts).
      const line = {
        uid: clip(review.request.uid),
        namespace: clip(requestNamespace(review)),
        pod: clipOptional(requestObjectName(review)),
        decision: outcome.decision,
        reason: clip(outcome.reason),
        operation: clip(review.request.operation),
        dryRun: review.request.dryRun === true,
        patchOperations: outcome.patchOperations,
        warnings: clipList(outcome.warnings),
        durationMs: Math.round(seconds * 1e6) / 1e3,
      };
      if (outcome.decision === 'error') {
        request.log.error(
          { ...line, detail: clipOptional(outcome.detail), denied: outcome.denied, err: outcome.error },
          'admission failed: our own fault',
        );
      } else {
        request.log.info(line, 'admission');
      }
      return reply.code(200).send(answer);
    },
  );
  done();
};

declare module 'fastify' {
  interface FastifyRequest {
    /** When the request arrived, by the app's monotonic clock (ms). */
    startedAt: number;
  }
}
