/**
 * Properties over generated pods, for both sidecar modes and all three Pod Security levels: the patch always
 * applies, the invariants hold, injecting twice is injecting once, and uninject takes back exactly what inject did.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { POD_SECURITY_LEVELS, type Container, type InjectionContext, type PodObject, type Volume } from '../../src/core/types.js';
import { uninjectPod } from '../../src/core/uninject.js';
import { applyToCopy, expectInjectedInvariants, normalise } from '../support/pod-assertions.js';
import { podSecurityViolations } from '../support/pod-security-standards.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);

const dnsName = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
const mountPath = fc.oneof(fc.constant('/pod-data'), fc.constant('/pod-data/'), fc.stringMatching(/^\/[a-z]{1,8}(\/[a-z]{1,8})?$/));
const annotationKey = fc.oneof(
  fc.stringMatching(/^[a-z]{1,8}\.example\.com\/[a-z~-]{1,12}$/),
  fc.stringMatching(/^[a-z~]{1,12}$/),
  fc.constant('kubectl.kubernetes.io/default-container'),
);

function container(name: string, volumeNames: string[]): fc.Arbitrary<Container> {
  const mount = fc.record({ name: volumeNames.length > 0 ? fc.constantFrom(...volumeNames) : fc.constant('scratch'), mountPath });
  return fc.record(
    {
      name: fc.constant(name),
      image: fc.constantFrom('nginx:1.27.3', 'ghcr.io/example/app@sha256:' + 'c'.repeat(64), 'postgres:16.4'),
      volumeMounts: fc.uniqueArray(mount, { maxLength: 3, selector: (m) => m.mountPath.replace(/\/$/, '') }),
      securityContext: fc.constantFrom(
        undefined,
        { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
        { readOnlyRootFilesystem: true },
      ),
      resources: fc.constantFrom(undefined, {}, { requests: { cpu: '100m' } }, { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } }),
      env: fc.constantFrom(undefined, [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }]),
    },
    { requiredKeys: ['name', 'image'] },
  ).map((c) => JSON.parse(JSON.stringify(c)) as Container);
}

const pod: fc.Arbitrary<PodObject> = fc
  .record({
    names: fc.uniqueArray(dnsName.filter((n) => n !== 'sidecar'), { minLength: 1, maxLength: 6 }),
    initCount: fc.nat(2),
    volumes: fc.uniqueArray(fc.oneof(dnsName, fc.constant('shared-data')), { maxLength: 3 }),
    labels: fc.option(fc.dictionary(fc.constantFrom('app', 'tier', 'sidecar-injection'), fc.constantFrom('web', 'enabled', 'disabled')), { nil: undefined }),
    annotations: fc.option(fc.dictionary(annotationKey, fc.string({ maxLength: 20 }), { maxKeys: 4 }), { nil: undefined }),
    restartPolicy: fc.constantFrom(undefined, 'Always', 'OnFailure', 'Never'),
    hostPID: fc.option(fc.boolean(), { nil: undefined }),
    shareProcessNamespace: fc.option(fc.boolean(), { nil: undefined }),
    podResources: fc.boolean(),
    podSecurity: fc.constantFrom(undefined, {}, { runAsNonRoot: true }, { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } }),
    windows: fc.nat(9).map((n) => n === 0),
  })
  .chain((shape) => {
    const initNames = shape.names.slice(0, Math.min(shape.initCount, shape.names.length - 1));
    const appNames = shape.names.slice(initNames.length);
    return fc
      .tuple(fc.tuple(...appNames.map((n) => container(n, shape.volumes))), fc.tuple(...initNames.map((n) => container(n, shape.volumes))))
      .map(([containers, initContainers]) => {
        const volumes: Volume[] = shape.volumes.map((name, i) =>
          i % 2 === 0 ? { name, emptyDir: {} } : { name, configMap: { name: `${name}-cm` } },
        );
        // Mounts must name volumes that exist, as the API server enforces.
        const known = new Set(volumes.map((v) => v.name));
        for (const c of [...containers, ...initContainers]) {
          c.volumeMounts = c.volumeMounts?.filter((m) => known.has(m.name));
          if (c.volumeMounts?.length === 0) delete c.volumeMounts;
        }
        const result: PodObject = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: JSON.parse(JSON.stringify({ name: 'generated', labels: shape.labels, annotations: shape.annotations })),
          spec: JSON.parse(
            JSON.stringify({
              containers,
              initContainers: initContainers.length > 0 ? initContainers : undefined,
              volumes: volumes.length > 0 ? volumes : undefined,
              restartPolicy: shape.restartPolicy,
              hostPID: shape.hostPID,
              shareProcessNamespace: shape.shareProcessNamespace,
              resources: shape.podResources ? { limits: { cpu: '2', memory: '2Gi' } } : undefined,
              securityContext: shape.podSecurity,
              os: shape.windows ? { name: 'windows' } : undefined,
            }),
          ),
        };
        return result;
      });
  });

const contexts = fc.record({
  nativeSidecar: fc.constantFrom('always', 'never') as fc.Arbitrary<'always' | 'never'>,
  level: fc.constantFrom(...POD_SECURITY_LEVELS),
});

describe('engine properties', () => {
  it('inject applies, holds the invariants, is idempotent, and uninject restores the pod', () => {
    let injectedCount = 0;
    fc.assert(
      fc.property(pod, contexts, (original, { nativeSidecar, level }) => {
        const config = { ...defaultConfig(), nativeSidecar, classicRunToCompletion: 'inject' as const };
        const context: InjectionContext = { operation: 'CREATE', namespace: 'apps', injectorNamespace: 'sidecar-injector', podSecurityLevel: level };
        const snapshot = JSON.stringify(original);
        const result = computeInjection(original, config, context);
        expect(JSON.stringify(original), 'the engine never mutates its input').toBe(snapshot);
        expect(result.decision.action, JSON.stringify(result.decision)).not.toBe('error');
        if (result.decision.action !== 'inject') return;

        injectedCount += 1;
        const injected = applyToCopy(original, result.patch);
        const status = expectInjectedInvariants(injected);
        expect(status.mode).toBe(nativeSidecar === 'always' ? 'native' : 'classic');
        if (podSecurityViolations(original, level).length === 0) expect(podSecurityViolations(injected, level)).toEqual([]);

        const again = computeInjection(injected, config, context);
        expect(again.patch).toEqual([]);
        expect(applyToCopy(injected, again.patch)).toEqual(injected);

        const removed = uninjectPod(injected);
        expect(removed.outcome).toBe('removed');
        if (removed.outcome === 'removed') expect(JSON.stringify(normalise(removed.pod))).toBe(JSON.stringify(normalise(original)));
      }),
      { numRuns: RUNS },
    );
    // The generator must mostly produce pods that get injected, or the properties above prove little.
    expect(injectedCount).toBeGreaterThan(RUNS / 2);
  });
});
