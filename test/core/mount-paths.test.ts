/**
 * Mount paths compare as the kubelet resolves them (Go's path.Clean): a container that already mounts something
 * at `//pod-data` or `/pod-data/.` is using `/pod-data`, and a second mount there would hide one of the two.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { cleanPath } from '../../src/core/pod.js';
import type { InjectionContext, PodObject } from '../../src/core/types.js';
import { uninjectPod } from '../../src/core/uninject.js';
import { applyToCopy, expectInjectedInvariants } from '../support/pod-assertions.js';

const context: InjectionContext = { operation: 'CREATE', namespace: 'apps', injectorNamespace: 'sidecar-injector' };

describe('cleanPath, as Go’s path.Clean', () => {
  // Go's own table (src/path/path_test.go).
  it.each([
    ['', '.'],
    ['abc', 'abc'],
    ['abc/def', 'abc/def'],
    ['a/b/c', 'a/b/c'],
    ['.', '.'],
    ['..', '..'],
    ['../..', '../..'],
    ['../../abc', '../../abc'],
    ['/abc', '/abc'],
    ['/', '/'],
    ['abc/', 'abc'],
    ['abc/def/', 'abc/def'],
    ['a/b/c/', 'a/b/c'],
    ['./', '.'],
    ['../', '..'],
    ['../../', '../..'],
    ['/abc/', '/abc'],
    ['abc//def//ghi', 'abc/def/ghi'],
    ['//abc', '/abc'],
    ['///abc', '/abc'],
    ['//abc//', '/abc'],
    ['abc//', 'abc'],
    ['abc/./def', 'abc/def'],
    ['/./abc/def', '/abc/def'],
    ['abc/.', 'abc'],
    ['abc/def/ghi/../jkl', 'abc/def/jkl'],
    ['abc/def/../ghi/../jkl', 'abc/jkl'],
    ['abc/def/..', 'abc'],
    ['abc/def/../..', '.'],
    ['/abc/def/../..', '/'],
    ['abc/def/../../..', '..'],
    ['/abc/def/../../..', '/'],
    ['abc/def/../../../ghi/jkl/../../../mno', '../../mno'],
    ['abc/./../def', 'def'],
    ['abc//./../def', 'def'],
    ['abc/../../././../def', '../../def'],
    ['/pod-data/.hidden', '/pod-data/.hidden'],
    ['/pod-data/..x', '/pod-data/..x'],
  ])('%j → %j', (path, clean) => {
    expect(cleanPath(path)).toBe(clean);
  });
});

function podMountingAt(mountPath: string): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: {
      containers: [
        { name: 'db', image: 'postgres:16.4', volumeMounts: [{ name: 'data', mountPath }] },
        { name: 'web', image: 'nginx:1.27.3' },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

describe('a container already using the mount path under another spelling', () => {
  it.each(['/pod-data', '/pod-data/', '//pod-data', '/pod-data/.', '/pod-data//', '/./pod-data', '/x/../pod-data', '/../pod-data'])(
    '%s: skipped, recorded, and not given a second mount there',
    (mountPath) => {
      const original = podMountingAt(mountPath);
      const result = computeInjection(original, defaultConfig(), context);
      const patched = applyToCopy(original, result.patch);
      const status = expectInjectedInvariants(patched);
      expect(status.skipped).toEqual([{ container: 'db', reason: '/pod-data is already used by volume data' }]);
      expect(status.mounted).toEqual(['web']);
      expect(patched.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'data', mountPath }]);
    },
  );

  it.each(['/pod-data2', '/pod-data/sub', '/pod', '/pod-data/..'])('%s is another path: the container is mounted', (mountPath) => {
    const result = computeInjection(podMountingAt(mountPath), defaultConfig(), context);
    expect(result.status?.mounted).toEqual(['db', 'web']);
  });

  it('uninject recognises our mount under the spelling the status records', () => {
    const config = defaultConfig();
    config.appMountPath = '/pod-data/';
    const original = podMountingAt('/elsewhere');
    const patched = applyToCopy(original, computeInjection(original, config, context).patch);
    patched.spec!.containers[1]!.volumeMounts = [{ name: 'shared-data', mountPath: '//pod-data/.' }];
    const removed = uninjectPod(patched);
    expect(removed.outcome).toBe('removed');
    expect(removed.outcome === 'removed' && removed.pod.spec?.containers.map((c) => c.volumeMounts)).toEqual([
      [{ name: 'data', mountPath: '/elsewhere' }],
      undefined,
    ]);
  });
});
