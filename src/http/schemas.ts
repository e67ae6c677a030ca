/**
 * Response shapes of the webhook's routes, as TypeBox schemas: they type the handlers (the TypeBox type provider)
 * and let fastify serialise answers without JSON.stringify's guesswork. Request bodies are not validated here:
 * `parseAdmissionReview` checks the envelope only and leaves `request.object` untouched (ajv would coerce types
 * and could strip fields).
 */
import { Type } from 'typebox';
import { ADMISSION_V1, ADMISSION_V1BETA1 } from '../admission/review.js';

export const ErrorBody = Type.Object({ error: Type.String() });

export const StatusBody = Type.Object({ status: Type.String() });

export const AdmissionReviewResponseBody = Type.Object({
  apiVersion: Type.Union([Type.Literal(ADMISSION_V1), Type.Literal(ADMISSION_V1BETA1)]),
  kind: Type.Literal('AdmissionReview'),
  response: Type.Object({
    uid: Type.String(),
    allowed: Type.Boolean(),
    status: Type.Optional(
      Type.Object({
        status: Type.Optional(Type.Union([Type.Literal('Success'), Type.Literal('Failure')])),
        message: Type.Optional(Type.String()),
        reason: Type.Optional(Type.String()),
        code: Type.Optional(Type.Integer()),
      }),
    ),
    patch: Type.Optional(Type.String()),
    patchType: Type.Optional(Type.Literal('JSONPatch')),
    auditAnnotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    warnings: Type.Optional(Type.Array(Type.String())),
  }),
});
