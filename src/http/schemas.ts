/**
 * Response shapes of the webhook's routes, as plain JSON Schema: fastify compiles them into serialisers (no
 * JSON.stringify guesswork). Plain literals rather than a schema builder, which would cost every start ~170 ms
 * and ~20 MiB for three small schemas. Request bodies are not validated here: `parseAdmissionReview` checks the
 * envelope only and leaves `request.object` untouched (ajv would coerce types and could strip fields).
 */
import { ADMISSION_V1, ADMISSION_V1BETA1 } from '../admission/review.js';

export const ErrorBody = {
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
} as const;

export const StatusBody = {
  type: 'object',
  properties: { status: { type: 'string' } },
  required: ['status'],
} as const;

export const AdmissionReviewResponseBody = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string', enum: [ADMISSION_V1, ADMISSION_V1BETA1] },
    kind: { type: 'string', const: 'AdmissionReview' },
    response: {
      type: 'object',
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        status: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: ['Success', 'Failure'] },
            message: { type: 'string' },
            reason: { type: 'string' },
            code: { type: 'integer' },
          },
        },
        patch: { type: 'string' },
        patchType: { type: 'string', const: 'JSONPatch' },
        auditAnnotations: { type: 'object', additionalProperties: { type: 'string' } },
        warnings: { type: 'array', items: { type: 'string' } },
      },
      required: ['uid', 'allowed'],
    },
  },
  required: ['apiVersion', 'kind', 'response'],
} as const;
