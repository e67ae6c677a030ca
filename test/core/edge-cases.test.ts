/** Engine behaviour on pod shapes the fixture table does not carry. */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import type { InjectionContext, PodObject } from '../../src/core/types.js';
import { applyToCopy, expectInjectedInvariants } from '../support/pod-assertions.js';

const context: InjectionContext = { operation: 'CREATE', namespace: 'apps', injectorNamespace: 'sidecar-injector' };

function pod(spec: Partial<NonNullable<PodObject['spec']>>): PodObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }], ...spec } };
}

describe('engine edge cases', () => {
  it('skips a Windows pod selected only by its node selector', () => {
    const result = computeInjection(pod({ nodeSelector: { 'kubernetes.io/os': 'windows' } }), defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'skip', reason: 'windows-pod' });
    expect(result.warnings).toEqual([expect.stringMatching(/Windows/)]);
  });

  it('skips a container whose raw block device sits at the mount path', () => {
    const original = pod({
      containers: [
        { name: 'db', image: 'postgres:16.4', volumeDevices: [{ name: 'block', devicePath: '/pod-data' }] },
        { name: 'exporter', image: 'prom/postgres-exporter:v0.15.0' },
      ],
      volumes: [{ name: 'block', persistentVolumeClaim: { claimName: 'raw' } }],
    });
    const result = computeInjection(original, defaultConfig(), context);
    const status = expectInjectedInvariants(applyToCopy(original, result.patch));
    expect(status.skipped).toEqual([{ container: 'db', reason: '/pod-data is already used by volume block' }]);
    expect(status.mounted).toEqual(['exporter']);
  });

  it.each([['UPDATE'], ['DELETE'], ['CONNECT']])('never patches on %s', (operation) => {
    const result = computeInjection(pod({}), defaultConfig(), { ...context, operation });
    expect(result).toEqual({ decision: { action: 'skip', reason: 'operation-not-create' }, patch: [], warnings: [] });
  });

  it.each([
    ['null', null],
    ['a string', 'pod'],
    ['no spec', { metadata: {} }],
    ['no containers', { spec: {} }],
    ['empty containers', { spec: { containers: [] } }],
    ['unnamed container', { spec: { containers: [{ image: 'x' }] } }],
    ['annotations not strings', { metadata: { annotations: { a: 1 } }, spec: { containers: [{ name: 'a' }] } }],
    ['volumes not a list', { spec: { containers: [{ name: 'a' }], volumes: {} } }],
  ])('answers "not a pod" for %s, without a patch', (_what, object) => {
    const result = computeInjection(object, defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'skip', reason: 'not-a-pod' });
    expect(result.patch).toEqual([]);
  });

  it('creates metadata for a pod template that has none', () => {
    const template = { spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }] } };
    const result = computeInjection(template, defaultConfig(), context);
    expect(result.patch[0]).toMatchObject({ op: 'add', path: '/metadata' });
    expectInjectedInvariants(applyToCopy(template, result.patch));
  });
});

describe('malformed mounts (the API server validates only after mutating webhooks)', () => {
  it.each([
    ['mountPath absent', { name: 'x' }],
    ['mountPath null', { name: 'x', mountPath: null }],
    ['name an object', { name: { toString: null }, mountPath: '/pod-data' }],
  ])('a mount with %s is "not a pod", never an exception', (_what, mount) => {
    const pod = { spec: { containers: [{ name: 'app', image: 'nginx:1.27.3', volumeMounts: [mount] }] } };
    expect(computeInjection(pod, defaultConfig(), context).decision).toEqual({ action: 'skip', reason: 'not-a-pod' });
  });
});
