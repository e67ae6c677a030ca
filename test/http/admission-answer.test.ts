import { describe, expect, it } from 'vitest';
import type { AdmissionReviewResponse } from '../../src/admission/review.js';
import { serialiseAnswer } from '../../src/http/admission-answer.js';

function answer(patchBytes: number): AdmissionReviewResponse {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: 'u-"é"',
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.alloc(patchBytes, 'x').toString('base64'),
      warnings: ['a "quoted" warning…', 'line\\two'],
    },
  };
}

describe('serialiseAnswer', () => {
  it.each([0, 1_000, 60_000, 3_000_000])('is JSON that parses back to the answer (patch of %i bytes)', (bytes) => {
    const value = answer(bytes);
    const json = serialiseAnswer(value);
    expect(JSON.parse(json.toString())).toEqual(value);
  });

  it('writes a big patch into the bytes rather than stringifying it', () => {
    expect(Buffer.isBuffer(serialiseAnswer(answer(60_000)))).toBe(true);
    expect(typeof serialiseAnswer(answer(1_000))).toBe('string');
  });

  it('an answer without a patch is plain JSON', () => {
    const value: AdmissionReviewResponse = { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', response: { uid: 'u', allowed: false } };
    expect(serialiseAnswer(value)).toBe(JSON.stringify(value));
  });
});
