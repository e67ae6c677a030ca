/**
 * One admission from a parsed body to the bytes of its answer, with what the log line and the metrics need. The
 * same code runs on the event loop (typical pods) and in the admission worker (big ones, src/http/offload.ts).
 */
import { admit, requestNamespace, requestObjectName, type AdmissionDeps, type AdmissionOutcome } from '../admission/respond.js';
import { parseAdmissionReview } from '../admission/review.js';
import { clip, clipList, clipOptional } from './log-fields.js';

/** The request's own fields of the admission log line, already clipped (src/http/log-fields.ts). */
export interface RequestFields {
  uid: string;
  namespace: string;
  pod: string | undefined;
  operation: string;
  dryRun: boolean;
}

export type Answer =
  | { ok: true; json: string | Buffer; outcome: AdmissionOutcome; fields: RequestFields }
  | { ok: false; reason: string };

/**
 * The answer serialised here with JSON.stringify, not by fastify's schema serialiser: that one escapes the
 * patch string character by character, a second pass over up to 28 MiB for a pod of 170,000 containers.
 */
export async function answerAdmission(body: unknown, deps: AdmissionDeps): Promise<Answer> {
  const parsed = parseAdmissionReview(body);
  if (!parsed.ok) return parsed;
  const { review } = parsed;
  const { review: answer, outcome } = await admit(review, deps);
  const fields: RequestFields = {
    uid: clip(review.request.uid),
    namespace: clip(requestNamespace(review)),
    pod: clipOptional(requestObjectName(review)),
    operation: clip(review.request.operation),
    dryRun: review.request.dryRun === true,
  };
  return { ok: true, json: JSON.stringify(answer), outcome: { ...outcome, reason: clip(outcome.reason), warnings: clipList(outcome.warnings) }, fields };
}
