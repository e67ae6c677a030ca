import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { parseConfig } from '../../src/config/parse.js';
import { readOverrides } from '../../src/core/overrides.js';
import type { InjectionContext, PodObject } from '../../src/core/types.js';
import { applyToCopy, sidecarOf, statusOf } from '../support/pod-assertions.js';

const context: InjectionContext = { operation: 'CREATE', namespace: 'web', injectorNamespace: 'sidecar-injector' };
const allowed = defaultConfig().allowedImages;

/** The first reference pod: nginx serving /app, which the defaults reproduce with one annotation. */
function nginxPod(annotations: Record<string, string>): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'web', annotations },
    spec: {
      containers: [{ name: 'nginx', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }],
      restartPolicy: 'Always',
    },
  };
}

describe('per-pod override annotations', () => {
  it.each([
    ['busybox:1.36.1', true],
    ['busybox', false],
    ['docker.io/library/busybox:1.37.0-musl', true],
    [`busybox@sha256:${'a'.repeat(64)}`, true],
    ['busybox:1.37.0@sha256:' + 'b'.repeat(64), true],
    ['evil.example.com/busybox:1.37.0', false],
    ['busyboxx:1', false],
    ['alpine:3.20', false],
    ['busybox:latest; rm -rf /', false],
  ])('image %s allowed=%s', (image, ok) => {
    const { overrides, warnings } = readOverrides({ 'sidecar-injector.io/image': image }, allowed);
    expect(overrides.image).toBe(ok ? image : undefined);
    expect(warnings.length).toBe(ok ? 0 : 1);
  });

  it.each([
    ['sidecar-injector.io/app-mount-path', '/app', 'appMountPath', '/app'],
    ['sidecar-injector.io/app-mount-path', 'relative/path', 'appMountPath', undefined],
    ['sidecar-injector.io/app-mount-path', '/a/../etc', 'appMountPath', undefined],
    ['sidecar-injector.io/app-mount-path', '/', 'appMountPath', undefined],
    ['sidecar-injector.io/native-sidecar', 'true', 'nativeSidecar', true],
    ['sidecar-injector.io/native-sidecar', 'yes', 'nativeSidecar', undefined],
    ['sidecar-injector.io/share-process-namespace', 'false', 'shareProcessNamespace', false],
    ['sidecar-injector.io/cpu', '100m', 'cpu', '100m'],
    ['sidecar-injector.io/cpu', '0.5', 'cpu', '0.5'],
    ['sidecar-injector.io/cpu', '1e3', 'cpu', '1e3'],
    ['sidecar-injector.io/cpu', '50 m', 'cpu', undefined],
    ['sidecar-injector.io/cpu', '0', 'cpu', undefined],
    ['sidecar-injector.io/memory', '64Mi', 'memory', '64Mi'],
    ['sidecar-injector.io/memory', 'lots', 'memory', undefined],
  ] as const)('%s=%s', (key, value, field, parsed) => {
    const { overrides, warnings } = readOverrides({ [key]: value }, allowed);
    expect(overrides[field]).toBe(parsed);
    expect(warnings).toHaveLength(parsed === undefined ? 1 : 0);
  });

  it('reproduces the first reference pod with app-mount-path /app', () => {
    const pod = nginxPod({ 'sidecar-injector.io/app-mount-path': '/app' });
    const result = computeInjection(pod, defaultConfig(), context);
    const patched = applyToCopy(pod, result.patch);
    expect(patched.spec?.volumes).toEqual([{ name: 'shared-data', emptyDir: {} }]);
    expect(patched.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'shared-data', mountPath: '/app' }]);
    const sidecar = sidecarOf(patched);
    expect(sidecar.volumeMounts).toEqual([{ name: 'shared-data', mountPath: '/pod-data' }]);
    expect(sidecar.args?.join(' ')).toContain('Hello from the side container');
    expect(sidecar.args?.join(' ')).toContain('/pod-data/index.html');
    expect(statusOf(patched).mountPath).toBe('/app');
  });

  it('applies image and resource overrides and warns about the bad ones only', () => {
    const pod = nginxPod({
      'sidecar-injector.io/image': 'busybox:1.36.1',
      'sidecar-injector.io/cpu': '50m',
      'sidecar-injector.io/memory': 'plenty',
    });
    const result = computeInjection(pod, defaultConfig(), context);
    const sidecar = sidecarOf(applyToCopy(pod, result.patch));
    expect(sidecar.image).toBe('busybox:1.36.1');
    expect(sidecar.resources).toEqual({ requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '50m', memory: '32Mi' } });
    expect(result.warnings).toEqual([expect.stringContaining('sidecar-injector.io/memory')]);
  });

  it('opts out of process-namespace sharing', () => {
    const pod = nginxPod({ 'sidecar-injector.io/share-process-namespace': 'false' });
    const patched = applyToCopy(pod, computeInjection(pod, defaultConfig(), context).patch);
    expect(patched.spec?.shareProcessNamespace).toBeUndefined();
    expect(statusOf(patched).shareProcessNamespace).toBe(false);
  });

  it.each([
    [{}, 'classic'],
    [{ 'sidecar-injector.io/native-sidecar': 'true' }, 'native'],
    [{ 'sidecar-injector.io/native-sidecar': 'false' }, 'classic'],
  ] as const)('native-sidecar override %j gives %s', (annotations, mode) => {
    const pod = nginxPod(annotations);
    const result = computeInjection(pod, defaultConfig(), context);
    expect(statusOf(applyToCopy(pod, result.patch)).mode).toBe(mode);
  });

  it('refuses a native override on an API server older than 1.29', () => {
    const pod = nginxPod({ 'sidecar-injector.io/native-sidecar': 'true' });
    const result = computeInjection(pod, defaultConfig(), { ...context, apiServerVersion: 'v1.27.3' });
    expect(result.status?.mode).toBe('classic');
    expect(result.warnings.join(' ')).toMatch(/1\.27/);
  });
});

describe('nativeSidecar: auto', () => {
  it.each([
    [undefined, undefined, 'classic'],
    ['v1.33.1', undefined, 'classic'],
    ['v1.33.1', 'v1.32.9', 'classic'],
    ['v1.33.1', 'v1.33.0', 'native'],
    ['1.34+', 'v1.34.2-eks-1', 'native'],
    ['v2.0.0', 'v1.33.0', 'native'],
  ])('api %s, oldest kubelet %s → %s', (apiServerVersion, minKubeletVersion, mode) => {
    const pod = nginxPod({});
    const ctx: InjectionContext = { ...context };
    if (apiServerVersion) ctx.apiServerVersion = apiServerVersion;
    if (minKubeletVersion) ctx.minKubeletVersion = minKubeletVersion;
    expect(computeInjection(pod, defaultConfig(), ctx).status?.mode).toBe(mode);
  });
});

describe('the image annotation is held to the rule of the configured image: pinned', () => {
  it.each([
    ['busybox', false],
    ['busybox:latest', false],
    ['docker.io/library/busybox:latest', false],
    ['registry.local:5000/busybox', false],
    ['busybox:1.36.1', true],
    ['busybox:latest@sha256:' + 'c'.repeat(64), true],
    [`busybox@sha256:${'d'.repeat(64)}`, true],
  ])('%s: accepted=%s', (image, ok) => {
    const { overrides, warnings } = readOverrides({ 'sidecar-injector.io/image': image }, ['.*']);
    expect(overrides.image).toBe(ok ? image : undefined);
    expect(warnings).toEqual(ok ? [] : [`annotation sidecar-injector.io/image ignored: image "${image}" must be pinned to a tag or digest other than latest`]);
  });

  it.each([['busybox'], ['busybox:latest'], ['registry.local:5000/busybox']])('the configuration refuses %s as well', (image) => {
    const result = parseConfig(`sidecar: { image: "${image}" }`);
    expect(result).toEqual({ ok: false, error: 'sidecar.image: must be pinned to a tag or digest other than latest' });
  });
});
