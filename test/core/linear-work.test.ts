/**
 * Every step of the engine is linear in the size of the pod: one legal pod (3 MiB of containers, volumes, mounts,
 * env entries or annotations) must not stall the replica. Measured without a clock (test/core/work-meter.ts): the
 * work done for a pod of size 8N is compared with the work for size N; linear code stays near 8, quadratic code
 * nears 64.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admit } from '../../src/admission/respond.js';
import type { AdmissionReviewRequest } from '../../src/admission/review.js';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import type { Container, InjectionContext, PodObject } from '../../src/core/types.js';
import { uninjectPod } from '../../src/core/uninject.js';
import { workFor, workForAsync } from './work-meter.js';

const context: InjectionContext = { operation: 'CREATE', namespace: 'apps', injectorNamespace: 'sidecar-injector' };
const N = 100;
/** Linear work grows 8-fold (less where a fixed part dominates); quadratic work 30- to 64-fold at these sizes. */
const MAX_RATIO = 10;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function app(name: string, extra: Partial<Container> = {}): Container {
  return { name, image: 'registry.example/app:1.0.0', ...extra };
}

function pod(spec: Partial<NonNullable<PodObject['spec']>>, metadata: PodObject['metadata'] = { name: 'big' }): PodObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: { containers: [app('app')], ...spec } };
}

/** Pod shapes that grow with n, as big legal pods do. */
const SHAPES: Record<string, (n: number) => PodObject> = {
  'many containers': (n) => pod({ containers: range(n).map((i) => app(`c${i}`)) }),
  'many containers already using the mount path': (n) =>
    pod({
      containers: range(n).map((i) => app(`c${i}`, { volumeMounts: [{ name: 'data', mountPath: '/pod-data' }] })),
      volumes: [{ name: 'data', emptyDir: {} }],
    }),
  'many init containers': (n) => pod({ initContainers: range(n).map((i) => app(`init${i}`)) }),
  'many volumes': (n) => pod({ volumes: range(n).map((i) => ({ name: `v${i}`, emptyDir: {} })) }),
  'many mounts per container': (n) =>
    pod({
      containers: range(3).map((c) =>
        app(`c${c}`, { volumeMounts: range(n).map((i) => ({ name: `v${i}`, mountPath: `/mnt/${i}` })) }),
      ),
      volumes: range(n).map((i) => ({ name: `v${i}`, emptyDir: {} })),
    }),
  'many env entries': (n) => pod({ containers: [app('app', { env: range(n).map((i) => ({ name: `E${i}`, value: 'v' })) })] }),
  'many annotations': (n) =>
    pod({}, { name: 'big', annotations: Object.fromEntries(range(n).map((i) => [`example.com/a${i}`, 'v'])) }),
  'many labels': (n) => pod({}, { name: 'big', labels: Object.fromEntries(range(n).map((i) => [`example.com/l${i}`, 'v'])) }),
};

function injected(original: PodObject): PodObject {
  const result = computeInjection(original, defaultConfig(), context);
  expect(result.decision.action).toBe('inject');
  return fastJsonPatch.applyPatch(structuredClone(original), result.patch as Operation[], true, false).newDocument as PodObject;
}

/** An injected pod to which another webhook then added as many app containers again (reinvocation). */
function grownAfterInjection(make: (n: number) => PodObject): (n: number) => PodObject {
  return (n) => {
    const pod = injected(make(n));
    pod.spec!.containers.push(...range(n).map((i) => app(`late${i}`)));
    return pod;
  };
}

function expectLinear(make: (n: number) => PodObject, run: (pod: PodObject) => void): void {
  const small = workFor(make, N, run);
  const large = workFor(make, 8 * N, run);
  expect(small).toBeGreaterThan(0);
  expect(large / small, `work for ${N}: ${small}, for ${8 * N}: ${large}`).toBeLessThan(MAX_RATIO);
}

describe('work grows linearly with the pod', () => {
  describe.each(Object.entries(SHAPES))('%s', (_shape, make) => {
    it('inject', () => {
      expectLinear(make, (p) => expect(computeInjection(p, defaultConfig(), context).decision.action).toBe('inject'));
    });

    it('reinvocation after more containers were added', () => {
      expectLinear(grownAfterInjection(make), (p) => {
        expect(computeInjection(p, defaultConfig(), context).decision.action).toBe('update');
      });
    });

    it('reinvocation with nothing to do', () => {
      expectLinear(
        (n) => injected(make(n)),
        (p) => expect(computeInjection(p, defaultConfig(), context).decision).toEqual({ action: 'skip', reason: 'already-injected' }),
      );
    });

    it('uninject', () => {
      expectLinear(
        (n) => injected(make(n)),
        (p) => expect(uninjectPod(p).outcome).toBe('removed'),
      );
    });

    it('the admission around the engine (patch encoding, warnings)', async () => {
      const review = (object: PodObject): AdmissionReviewRequest => ({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', operation: 'CREATE', namespace: 'apps', object },
      });
      const deps = { config: defaultConfig, injectorNamespace: 'sidecar-injector', clusterFacts: () => ({}) };
      const run = async (p: PodObject): Promise<void> => {
        expect((await admit(review(p), deps)).outcome.decision).toBe('injected');
      };
      const small = await workForAsync(make, N, run);
      const large = await workForAsync(make, 8 * N, run);
      expect(large / small, `work for ${N}: ${small}, for ${8 * N}: ${large}`).toBeLessThan(MAX_RATIO);
    });
  });
});
