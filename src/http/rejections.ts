/**
 * Requests we refuse (4xx, and 503 when overloaded): each is counted by status and reason in
 * `sidecar_injector_rejected_requests_total`, and logged at info, but at most `LINES_PER_WINDOW` lines per
 * `WINDOW_MS`. The counter is exact; the log shows what the refusals look like without letting a flood of
 * garbage (a scanner, a misbehaving client) drown the admission lines or cost a line of I/O per bad request.
 * When a window saw more, the next refusal first logs how many lines were left out.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { AdmissionMetrics } from './metrics.js';

/** Label values of `reason`: a closed set, so the metric's cardinality stays fixed. */
export type RejectReason =
  | 'malformed-http'
  | 'request-timeout'
  | 'headers-too-large'
  | 'malformed-url'
  | 'no-route'
  | 'method-not-allowed'
  | 'content-type'
  | 'content-encoding'
  | 'body-too-large'
  | 'invalid-body'
  | 'overloaded'
  | 'other';

export const WINDOW_MS = 10_000;
export const LINES_PER_WINDOW = 10;

export interface Rejections {
  /**
   * Counts one refusal and logs it unless this window's lines are spent. `quiet`: counted, logged at debug only
   * (unknown paths: scanners and probes are not worth a line each).
   */
  reject(log: FastifyBaseLogger, status: number, reason: RejectReason, fields: Record<string, unknown>, quiet?: boolean): void;
}

export function createRejections(metrics: AdmissionMetrics, now: () => number): Rejections {
  let windowStart = Number.NEGATIVE_INFINITY;
  let logged = 0;
  let suppressed = 0;
  return {
    reject(log, status, reason, fields, quiet = false) {
      metrics.rejected.inc({ code: String(status), reason });
      if (quiet) {
        log.debug({ status, reason, ...fields }, 'request rejected');
        return;
      }
      const at = now();
      if (at - windowStart >= WINDOW_MS) {
        if (suppressed > 0) {
          log.warn(
            { suppressed, windowSeconds: WINDOW_MS / 1000 },
            'more requests were rejected than logged: see sidecar_injector_rejected_requests_total',
          );
        }
        windowStart = at;
        logged = 0;
        suppressed = 0;
      }
      if (logged >= LINES_PER_WINDOW) {
        suppressed += 1;
        return;
      }
      logged += 1;
      log.info({ status, reason, ...fields }, 'request rejected');
    },
  };
}
