/** The pre-flight check refuses exactly the patches the API server would refuse, and broken promises. */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { preflight } from '../../src/core/preflight.js';
import type { InjectionStatus, PatchOperation, PodObject } from '../../src/core/types.js';

const context = { operation: 'CREATE', namespace: 'apps', injectorNamespace: 'sidecar-injector' };

function podWithoutVolumes(): PodObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'nginx:1.27.3' }] } };
}

function injected(pod: PodObject): { patch: PatchOperation[]; status: InjectionStatus } {
  const result = computeInjection(pod, defaultConfig(), context);
  return { patch: result.patch, status: result.status! };
}

describe('preflight', () => {
  it('accepts the engine’s patch and leaves the original untouched', () => {
    const pod = podWithoutVolumes();
    const before = JSON.stringify(pod);
    const { patch, status } = injected(pod);
    const verdict = preflight(pod, patch, status);
    expect(verdict.ok).toBe(true);
    expect(JSON.stringify(pod)).toBe(before);
  });

  it.each([
    ['appending to an absent array', { op: 'add', path: '/spec/volumes/-', value: { name: 'x', emptyDir: {} } }, /doc is missing path \/spec\/volumes\/-/],
    ['an index past the end', { op: 'add', path: '/spec/containers/5', value: { name: 'x' } }, /index out of range/],
    ['an index with a leading zero', { op: 'add', path: '/spec/containers/00', value: { name: 'x' } }, /index out of range/],
    ['an index with a sign', { op: 'add', path: '/spec/containers/+0', value: { name: 'x' } }, /index out of range/],
    ['an empty index', { op: 'add', path: '/spec/containers/', value: { name: 'x' } }, /index out of range/],
    ['a walk through a padded index', { op: 'add', path: '/spec/containers/ 0/tty', value: true }, /doc is missing path/],
    ['a walk through a hexadecimal index', { op: 'add', path: '/spec/containers/0x0/tty', value: true }, /doc is missing path/],
    ['a missing parent object', { op: 'add', path: '/spec/nope/inner', value: 1 }, /doc is missing path/],
    ['replacing what is absent', { op: 'replace', path: '/spec/hostPID', value: true }, /doc is missing path/],
    ['a path without a leading slash', { op: 'add', path: 'spec', value: 1 }, /invalid path/],
  ] as const)('refuses %s, as the API server would', (_what, bad, reason) => {
    const pod = podWithoutVolumes();
    const { patch, status } = injected(pod);
    // First: operations apply in order, and the engine's own patch creates spec.volumes.
    const verdict = preflight(pod, [bad as PatchOperation, ...patch], status);
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(reason) });
  });

  it('applies operations in order: an append to an array an earlier operation created applies', () => {
    const pod = podWithoutVolumes();
    const { patch, status } = injected(pod);
    const extra = { op: 'add', path: '/spec/volumes/-', value: { name: 'extra', emptyDir: {} } } as const;
    expect(preflight(pod, [...patch, extra], status)).toEqual({ ok: true });
    // …and what it adds is really there: a second shared volume breaks a promise.
    const twice = { op: 'add', path: '/spec/volumes/-', value: { name: 'shared-data', emptyDir: {} } } as const;
    expect(preflight(pod, [...patch, twice], status)).toEqual({ ok: false, reason: 'expected exactly one shared-data volume, found 2' });
  });

  it('leaves the original untouched, maps with a __proto__ key included, and reads what the patch added', () => {
    const pod = podWithoutVolumes();
    pod.metadata = JSON.parse('{"name":"p","annotations":{"__proto__":"x","a":"b"}}') as PodObject['metadata'];
    const before = JSON.stringify(pod);
    const { patch, status } = injected(pod);
    expect(preflight(pod, patch, status)).toEqual({ ok: true });
    expect(JSON.stringify(pod)).toBe(before);
    expect(Object.getPrototypeOf(pod.metadata?.annotations)).toBe(Object.prototype);
    // A status the patch does not carry is seen through the added annotations.
    expect(preflight(pod, patch, { ...status, reduced: ['x'] })).toEqual({ ok: false, reason: 'status annotation does not record what was done' });
  });

  it.each([
    ['replaced', { op: 'replace', path: '/metadata/annotations/a', value: 'c' }],
    ['removed', { op: 'remove', path: '/metadata/annotations/a' }],
    ['added again', { op: 'add', path: '/metadata/annotations/a', value: 'c' }],
  ] as const)('an annotation the patch added and then %s: the original map is untouched', (_what, op) => {
    const pod = podWithoutVolumes();
    pod.metadata = { name: 'p', annotations: { keep: 'k' } };
    const { patch, status } = injected(pod);
    const adds = { op: 'add', path: '/metadata/annotations/a', value: 'b' } as const;
    expect(preflight(pod, [...patch, adds, op as PatchOperation], status)).toEqual({ ok: true });
    expect(pod.metadata.annotations).toEqual({ keep: 'k' });
  });

  it('walking into a member an earlier operation added to a map copies it first', () => {
    const pod = podWithoutVolumes();
    pod.metadata = { name: 'p', labels: { keep: 'k' } };
    const { patch, status } = injected(pod);
    const extra: PatchOperation[] = [
      { op: 'add', path: '/metadata/labels/nested', value: {} },
      { op: 'add', path: '/metadata/labels/nested/x', value: 'y' },
      { op: 'remove', path: '/metadata/labels/keep' },
    ];
    expect(preflight(pod, [...patch, ...extra], status)).toEqual({ ok: true });
    expect(pod.metadata.labels).toEqual({ keep: 'k' });
    // Removing what is not there (an overlay must not answer for what its original had)
    expect(preflight(pod, [...patch, ...extra, { op: 'remove', path: '/metadata/labels/keep' }], status)).toEqual({
      ok: false,
      reason: 'patch does not apply: doc is missing path /metadata/labels/keep',
    });
  });

  it('refuses a patch that would leave two sidecars', () => {
    const pod = podWithoutVolumes();
    const { patch, status } = injected(pod);
    const sidecar = patch.find((op) => op.path === '/spec/containers/-')!;
    const verdict = preflight(pod, [...patch, sidecar], status);
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(/exactly one sidecar container, found 2/) });
  });

  it('refuses a status annotation that does not match what was done', () => {
    const pod = podWithoutVolumes();
    const { patch, status } = injected(pod);
    const verdict = preflight(pod, patch, { ...status, mounted: [] });
    expect(verdict).toEqual({ ok: false, reason: 'status annotation does not record what was done' });
  });
});
