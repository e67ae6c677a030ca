/** Engine behaviour on pod shapes the fixture table does not carry. */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import type { InjectionContext, PodObject } from '../../src/core/types.js';
import { uninjectPod } from '../../src/core/uninject.js';
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

describe('reinvocation of a pod whose injection something else changed', () => {
  function injectedThenChanged(change: (pod: PodObject) => void): PodObject {
    const original = pod({});
    const injected = applyToCopy(original, computeInjection(original, defaultConfig(), context).patch);
    injected.spec!.containers.splice(1, 0, { name: 'late-agent', image: 'vault:1.17' });
    change(injected);
    return injected;
  }

  it.each([
    ['the sidecar removed', (p: PodObject) => (p.spec!.containers = p.spec!.containers.filter((c) => c.name !== 'sidecar'))],
    ['the shared volume removed', (p: PodObject) => (p.spec!.volumes = [])],
    ["the sidecar's mount removed", (p: PodObject) => (p.spec!.containers.find((c) => c.name === 'sidecar')!.volumeMounts = [])],
    ["an app container's recorded mount removed", (p: PodObject) => delete p.spec!.containers.find((c) => c.name === 'app')!.volumeMounts],
  ])('with %s: left unchanged with a warning, never an error', (_what, change) => {
    const result = computeInjection(injectedThenChanged(change), defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'skip', reason: 'already-injected' });
    expect(result.patch).toEqual([]);
    expect(result.warnings).toEqual([expect.stringMatching(/left unchanged$/)]);
  });

  it('unchanged, the late container gets its mount', () => {
    const result = computeInjection(injectedThenChanged(() => undefined), defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'update' });
    expect(result.status?.mounted).toEqual(['app', 'late-agent']);
  });
});

describe('duplicate container or volume names (invalid, but seen before validation)', () => {
  it.each([
    ['two app containers', { containers: [{ name: 'orders' }, { name: 'orders' }] }],
    ['an init and an app container', { initContainers: [{ name: 'orders' }], containers: [{ name: 'orders' }] }],
    ['two volumes', { containers: [{ name: 'orders' }], volumes: [{ name: 'shared-data', emptyDir: {} }, { name: 'shared-data', emptyDir: {} }] }],
  ])('%s with one name: "not a pod"', (_what, spec) => {
    expect(computeInjection({ spec }, defaultConfig(), context).decision).toEqual({ action: 'skip', reason: 'not-a-pod' });
  });
});

describe('a pod at the size limit', () => {
  it('150,000 containers that all use the mount path: one skip each, recorded, and no fault', () => {
    // 150,000 warnings once overflowed `push(...warnings)`, which turned a legal pod into an engine exception.
    const containers = Array.from({ length: 150_000 }, (_, i) => ({
      name: `c${i}`,
      volumeMounts: [{ name: 'data', mountPath: '/pod-data' }],
    }));
    const original = pod({ containers, volumes: [{ name: 'data', emptyDir: {} }] });
    const result = computeInjection(original, defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'inject' });
    expect(result.status?.skipped).toHaveLength(150_000);
    expect(result.warnings.filter((w) => w.startsWith('container c'))).toHaveLength(150_000);
  });
});

describe('what is wrong with an object that is not a pod, said', () => {
  it.each([
    ['null', null, 'the object is null, not a pod'],
    ['a string', 'pod', 'the object is a string, not a pod'],
    ['no spec', { metadata: {} }, 'spec is missing'],
    ['no containers', { spec: {} }, 'spec.containers is missing'],
    ['empty containers', { spec: { containers: [] } }, 'spec.containers is empty'],
    ['unnamed container', { spec: { containers: [{ image: 'x' }] } }, 'spec.containers[0].name is not a string'],
    ['a duplicate name', { spec: { containers: [{ name: 'a' }], initContainers: [{ name: 'a' }] } }, 'container name "a" is used twice'],
    ['volumes not a list', { spec: { containers: [{ name: 'a' }], volumes: {} } }, 'spec.volumes is an object, not a list'],
    ['a mount without a path', { spec: { containers: [{ name: 'a', volumeMounts: [{ name: 'v' }] }] } }, 'spec.containers[0].volumeMounts[0].mountPath is not a string'],
    ['annotations a list', { metadata: { annotations: ['a'] }, spec: { containers: [{ name: 'a' }] } }, 'metadata.annotations is not a map of strings'],
    ['a label not a string', { metadata: { labels: { app: 1 } }, spec: { containers: [{ name: 'a' }] } }, 'metadata.labels.app is not a string'],
    ['an annotation not a string', { metadata: { annotations: { 'example.com/x': true } }, spec: { containers: [{ name: 'a' }] } }, 'metadata.annotations["example.com/x"] is not a string'],
  ])('%s: the warning names it', (_what, object, problem) => {
    const result = computeInjection(object, defaultConfig(), context);
    expect(result.decision).toEqual({ action: 'skip', reason: 'not-a-pod' });
    expect(result.warnings).toEqual([`not a pod the injector can read: ${problem}; not injected`]);
    expect(uninjectPod(object)).toEqual({ outcome: 'error', reason: `not a pod the injector can read: ${problem}` });
  });
});

describe('null where a map or list is optional is absent, as the API server decodes it', () => {
  it.each([
    ['metadata', { metadata: null }],
    ['annotations', { metadata: { name: 'p', annotations: null } }],
    ['labels', { metadata: { name: 'p', labels: null } }],
    ['volumes', { spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }], volumes: null } }],
    ['initContainers', { spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }], initContainers: null } }],
    ['volumeMounts', { spec: { containers: [{ name: 'app', image: 'nginx:1.27.3', volumeMounts: null, volumeDevices: null }] } }],
  ])('%s: null', (_what, fields) => {
    const original = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }] }, ...fields };
    const result = computeInjection(original, defaultConfig(), context);
    expect(result.decision, JSON.stringify(result.warnings)).toEqual({ action: 'inject' });
    const patched = applyToCopy(original, result.patch);
    expect(expectInjectedInvariants(patched).mounted).toEqual(['app']);
    expect(computeInjection(patched, defaultConfig(), context).decision).toEqual({ action: 'skip', reason: 'already-injected' });
    expect(uninjectPod(patched).outcome).toBe('removed');
  });
});
