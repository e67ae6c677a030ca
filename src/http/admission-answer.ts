/**
 * One admission from a parsed body to the bytes of its answer, with what the log line and the metrics need. The
 * same code runs on the event loop (typical pods) and in the admission worker (big ones, src/http/offload.ts).
 */
import { admit, requestNamespace, requestObjectName, type AdmissionDeps, type AdmissionOutcome } from '../admission/respond.js';
import { parseAdmissionReview, type AdmissionReviewResponse } from '../admission/review.js';
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

/** Patches from this size (base64 characters) are written into the answer's bytes rather than stringified. */
const SPLICED_PATCH = 64 * 1024;

/**
 * The answer's JSON. Not fastify's schema serialiser: it escapes the patch string character by character, a
 * second pass over up to 28 MiB for a pod of 170,000 containers. A big patch is not even given to JSON.stringify:
 * base64 needs no escaping, so it is copied as bytes into place, the response's last member.
 */
export function serialiseAnswer(answer: AdmissionReviewResponse): string | Buffer {
  const { patch, ...rest } = answer.response;
  if (patch === undefined || patch.length < SPLICED_PATCH) return JSON.stringify(answer);
  // `{"apiVersion":…,"kind":…,"response":{"uid":…,…}}`: the patch goes before the last two braces.
  const envelope = JSON.stringify({ apiVersion: answer.apiVersion, kind: answer.kind, response: rest });
  const head = `${envelope.slice(0, -2)},"patch":"`;
  const headBytes = Buffer.byteLength(head);
  const bytes = Buffer.allocUnsafe(headBytes + patch.length + 3);
  bytes.write(head, 0, 'utf8');
  bytes.write(patch, headBytes, 'latin1');
  bytes.write('"}}', headBytes + patch.length, 'latin1');
  return bytes;
}

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
  return { ok: true, json: serialiseAnswer(answer), outcome: { ...outcome, reason: clip(outcome.reason), warnings: clipList(outcome.warnings) }, fields };
}
