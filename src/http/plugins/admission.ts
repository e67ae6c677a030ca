/**
 * `POST /mutate`: an AdmissionReview in, the engine's answer out, with its metrics and one log line per admission.
 * Big bodies are answered by the admission worker when there is one (src/http/offload.ts).
 */
import type { FastifyPluginCallback } from 'fastify';
import type { AdmissionDeps } from '../../admission/respond.js';
import { answerAdmission, type Answer } from '../admission-answer.js';
import { parseJsonBody } from '../json-body.js';
import { clipOptional } from '../log-fields.js';
import type { AdmissionMetrics } from '../metrics.js';
import { DeferredBody, type AdmissionOffload } from '../offload.js';
import { ErrorBody } from '../schemas.js';
import { BadRequest } from './shared.js';

export interface AdmissionRouteOptions {
  admission: AdmissionDeps;
  metrics: AdmissionMetrics;
  /** A monotonic clock in milliseconds. */
  now: () => number;
  offload?: AdmissionOffload;
}

/** A deferred body, by the worker when it takes it, else here as any other. */
async function answerDeferred(body: DeferredBody, options: AdmissionRouteOptions): Promise<Answer> {
  const offloaded = await options.offload?.answer(body.text, options.admission);
  if (offloaded !== undefined) return offloaded;
  const parsed = parseJsonBody(body.text);
  return parsed.ok ? answerAdmission(parsed.value, options.admission) : parsed;
}

export const admissionPlugin: FastifyPluginCallback<AdmissionRouteOptions> = (app, options, done) => {
  const { metrics, now } = options;
  app.decorateRequest('startedAt', 0);
  app.post(
    '/mutate',
    {
      // The 200 answer is serialised by answerAdmission (see there), not by a schema.
      schema: { response: { '4xx': ErrorBody } },
      onRequest: (request, reply, next) => {
        request.startedAt = now();
        metrics.inflight.inc();
        // 'close' fires once the response is sent or the connection died: the gauge never leaks.
        reply.raw.once('close', () => metrics.inflight.dec());
        next();
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (body === undefined) {
        throw new BadRequest('request body is empty: send an AdmissionReview as application/json');
      }
      const answer =
        body instanceof DeferredBody ? await answerDeferred(body, options) : await answerAdmission(body, options.admission);
      if (!answer.ok) throw new BadRequest(answer.reason);

      const { outcome, fields } = answer;
      const seconds = (now() - request.startedAt) / 1000;
      metrics.admissions.inc({ decision: outcome.decision, reason: outcome.reason });
      if (outcome.reducedBy !== undefined) metrics.podSecurityReductions.inc({ level: outcome.reducedBy });
      metrics.duration.observe(seconds);

      // One line per admission, with its own fields: a child logger per request costs more than the line. Every
      // string the request chose is clipped (src/http/log-fields.ts).
      const line = {
        uid: fields.uid,
        namespace: fields.namespace,
        pod: fields.pod,
        decision: outcome.decision,
        reason: outcome.reason,
        operation: fields.operation,
        dryRun: fields.dryRun,
        patchOperations: outcome.patchOperations,
        warnings: outcome.warnings,
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
      return reply.code(200).type('application/json; charset=utf-8').send(answer.json);
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
