/** admit() around the engine: what the log line gets from a pod with one warning per container. */
import { describe, expect, it } from 'vitest';
import { admit, LOG_WARNINGS } from '../../src/admission/respond.js';
import { defaultConfig } from '../../src/core/defaults.js';

describe('admit', () => {
  it('keeps the log line bounded: at most LOG_WARNINGS warnings, the last one counting the rest', async () => {
    const containers = Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, image: 'app', volumeMounts: [{ name: 'data', mountPath: '/pod-data' }] }));
    const object = { spec: { containers, volumes: [{ name: 'data', emptyDir: {} }] } };
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE', namespace: 'apps', object } } as const;
    const { review: answer, outcome } = await admit(review, { config: defaultConfig, injectorNamespace: 'sidecar-injector', clusterFacts: () => ({}) });
    expect(outcome.decision).toBe('injected');
    expect(outcome.warnings).toHaveLength(LOG_WARNINGS);
    expect(outcome.warnings[0]).toBe('container c0 not given the shared volume: /pod-data is already used by volume data');
    expect(outcome.warnings.at(-1)).toBe(`${1000 - (LOG_WARNINGS - 1)} more warnings`);
    expect(answer.response.warnings).toHaveLength(10);
  });
});
