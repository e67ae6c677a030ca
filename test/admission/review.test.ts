/** The envelope parser and the warning trimmer: total functions over any JSON. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { admissionWarnings, MAX_WARNING_LENGTH, MAX_WARNINGS, warningLine } from '../../src/admission/warnings.js';

const validRequest = { uid: 'u-1', operation: 'CREATE', namespace: 'ns', object: { kind: 'Pod', extra: { keep: [1] } } };

describe('parseAdmissionReview', () => {
  it('never throws, and only accepts envelopes with a uid and an operation', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const result = parseAdmissionReview(body);
        if (result.ok) {
          expect(result.review.request.uid).toBeTypeOf('string');
          expect(result.review.request.uid).not.toBe('');
          expect(result.review.request.operation).toBeTypeOf('string');
        } else {
          expect(result.reason).not.toMatch(/\n/);
        }
      }),
    );
  });

  it('accepts v1 and v1beta1 and keeps request.object as it arrived (same reference, nothing stripped)', () => {
    for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']) {
      const body = { apiVersion, kind: 'AdmissionReview', request: structuredClone(validRequest) };
      const result = parseAdmissionReview(body);
      expect(result.ok).toBe(true);
      if (result.ok) {
        expect(result.review.apiVersion).toBe(apiVersion);
        expect(result.review.request.object).toBe(body.request.object);
        expect(result.review.request.object).toEqual(validRequest.object);
      }
    }
  });

  it.each([
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...validRequest, dryRun: 'yes' } }, /dryRun/],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...validRequest, name: 7 } }, /name/],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...validRequest, operation: '' } }, /operation/],
    [{ apiVersion: 'v1', kind: 'AdmissionReview', request: validRequest }, /apiVersion/],
  ])('refuses %j', (body, reason) => {
    const result = parseAdmissionReview(body);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('admission warnings', () => {
  it('are single lines of bounded length, at most MAX_WARNINGS of them', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 400 }), { maxLength: 30 }), (warnings) => {
        const out = admissionWarnings(warnings);
        expect(out.length).toBeLessThanOrEqual(MAX_WARNINGS);
        for (const line of out) {
          expect(line).not.toMatch(/[\r\n\u2028\u2029]/);
          expect(line.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
          expect(line).not.toBe('');
        }
      }),
    );
  });

  it('keeps a short warning as it is', () => {
    expect(warningLine('container app already mounts /pod-data: skipped')).toBe('container app already mounts /pod-data: skipped');
  });
});
