import { describe, expect, it } from 'vitest';
import {
  POD_SECURITY_ENFORCE_LABEL,
  backoffDelay,
  clusterFactsFrom,
  enforceLevel,
  errorSummary,
  minorVersionOf,
  namespaceFactsOf,
  oldestKubeletVersion,
  slimNamespace,
  slimNode,
} from '../../src/cluster/facts.js';

describe('minorVersionOf', () => {
  it.each([
    ['v1.33.1', '1.33'],
    ['v1.31.4-eks-1', '1.31'],
    ['v1.30.2+k3s1', '1.30'],
    ['v1.29.10-gke.1200000', '1.29'],
    ['1.33+', '1.33'],
    ['  v1.34.0  ', '1.34'],
    ['', undefined],
    ['latest', undefined],
    ['v1', undefined],
    [undefined, undefined],
  ])('%j → %j', (text, expected) => {
    expect(minorVersionOf(text)).toBe(expected);
  });
});

describe('oldestKubeletVersion', () => {
  it.each<[string, (string | undefined)[], string | undefined]>([
    ['one node', ['v1.33.1'], '1.33'],
    ['distribution suffixes', ['v1.31.4-eks-1', 'v1.30.2+k3s1'], '1.30'],
    ['mixed versions: the oldest minor wins, patch levels do not matter', ['v1.33.1', 'v1.32.9', 'v1.34.0'], '1.32'],
    ['compares numerically, not as text', ['v1.9.0', 'v1.10.0'], '1.9'],
    ['a major version counts before the minor', ['v2.0.0', 'v1.35.0'], '1.35'],
    ['the same minor on every node', ['v1.33.0', 'v1.33.5'], '1.33'],
    // A cluster without nodes gives no evidence: unknown, and the engine picks classic.
    ['zero nodes', [], undefined],
    // A node that has not reported its kubelet yet could be the oldest.
    ['a node without a version', ['v1.33.1', undefined], undefined],
    ['a node with an unreadable version', ['v1.33.1', 'unknown'], undefined],
    ['an empty version', ['', 'v1.34.0'], undefined],
  ])('%s', (_name, versions, expected) => {
    expect(oldestKubeletVersion(versions)).toBe(expected);
  });

  it('takes any iterable (the informer passes a Map’s values)', () => {
    const kubelets = new Map([
      ['a', 'v1.34.1'],
      ['b', 'v1.33.2'],
    ]);
    expect(oldestKubeletVersion(kubelets.values())).toBe('1.33');
  });
});

describe('enforceLevel', () => {
  it.each([
    ['privileged', 'privileged'],
    ['baseline', 'baseline'],
    ['restricted', 'restricted'],
    // Read exactly as Pod Security admission reads an invalid level: restricted.
    ['Restricted', 'restricted'],
    ['BASELINE', 'restricted'],
    ['', 'restricted'],
    [' baseline', 'restricted'],
    ['strict', 'restricted'],
  ])('%j → %s', (value, expected) => {
    expect(enforceLevel({ [POD_SECURITY_ENFORCE_LABEL]: value })).toBe(expected);
  });

  it('a missing label leaves the level to the configured default', () => {
    expect(enforceLevel({})).toBeUndefined();
    expect(enforceLevel(undefined)).toBeUndefined();
    expect(enforceLevel({ 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'baseline' })).toBeUndefined();
  });
});

describe('namespaceFactsOf and clusterFactsFrom', () => {
  it('keeps the labels and reads the level once', () => {
    const labels = { 'sidecar-injection': 'enabled', [POD_SECURITY_ENFORCE_LABEL]: 'baseline' };
    const facts = namespaceFactsOf(labels);
    expect(facts).toEqual({ labels, level: 'baseline' });
    expect(namespaceFactsOf(undefined)).toEqual({ labels: {}, level: undefined });
  });

  it('assembles the four facts, sharing the cached labels rather than copying them', () => {
    const namespace = namespaceFactsOf({ 'sidecar-injection': 'enabled' });
    const facts = clusterFactsFrom(namespace, { apiServerVersion: '1.33', minKubeletVersion: '1.32' });
    expect(facts).toEqual({
      namespaceLabels: { 'sidecar-injection': 'enabled' },
      podSecurityLevel: undefined,
      apiServerVersion: '1.33',
      minKubeletVersion: '1.32',
    });
    expect(facts.namespaceLabels).toBe(namespace.labels);
  });
});

describe('slim objects', () => {
  it('keeps of a namespace its name, resourceVersion and string labels', () => {
    const namespace = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'team-a',
        resourceVersion: '42',
        uid: 'u',
        labels: { 'kubernetes.io/metadata.name': 'team-a', [POD_SECURITY_ENFORCE_LABEL]: 'restricted' },
        annotations: { big: 'x'.repeat(1000) },
        managedFields: [{ manager: 'kubectl' }],
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
    expect(slimNamespace(namespace)).toEqual({
      metadata: {
        name: 'team-a',
        resourceVersion: '42',
        labels: { 'kubernetes.io/metadata.name': 'team-a', [POD_SECURITY_ENFORCE_LABEL]: 'restricted' },
      },
    });
    expect(slimNamespace({ metadata: { name: 'bare' } })).toEqual({ metadata: { name: 'bare' } });
  });

  it('keeps of a node its name, resourceVersion and kubelet version', () => {
    const node = {
      metadata: { name: 'node-1', resourceVersion: '7', labels: { 'kubernetes.io/os': 'linux' } },
      spec: { podCIDR: '10.0.0.0/24' },
      status: {
        images: [{ names: ['busybox:1.37.0'], sizeBytes: 1 }],
        nodeInfo: { kubeletVersion: 'v1.33.1', kernelVersion: '6.1', osImage: 'Debian' },
      },
    };
    expect(slimNode(node)).toEqual({
      metadata: { name: 'node-1', resourceVersion: '7' },
      status: { nodeInfo: { kubeletVersion: 'v1.33.1' } },
    });
  });

  it('reads a node without status as one without a version', () => {
    expect(slimNode({ metadata: { name: 'new' } })).toEqual({ metadata: { name: 'new' }, status: { nodeInfo: {} } });
    expect(slimNode(null)).toEqual({ metadata: { name: '' }, status: { nodeInfo: {} } });
  });
});

describe('backoffDelay', () => {
  const backoff = { initialMs: 1_000, maxMs: 60_000 };
  it.each([
    [0, 0.999_999, 1_000],
    [1, 0.999_999, 2_000],
    [3, 0.999_999, 8_000],
    [6, 0.999_999, 60_000],
    [1_000, 0.999_999, 60_000],
    [0, 0, 500],
    [6, 0, 30_000],
  ])('attempt %i, random %d → %i ms', (attempt, random, expected) => {
    expect(backoffDelay(attempt, backoff, random)).toBe(expected);
  });
});

describe('errorSummary', () => {
  it('keeps the HTTP status and the API server’s message, not the headers', () => {
    const err = Object.assign(new Error('HTTP-Code: 403\nMessage: Unknown API Status Code!\nBody: {...}\nHeaders: {"audit-id":"x"}'), {
      code: 403,
      body: { kind: 'Status', message: 'namespaces is forbidden: User "system:serviceaccount:x:y" cannot list resource "namespaces"' },
    });
    expect(errorSummary(err)).toEqual({
      code: 403,
      message: 'namespaces is forbidden: User "system:serviceaccount:x:y" cannot list resource "namespaces"',
    });
  });

  it('reads a Status body sent as text, and errors without a body', () => {
    const err = Object.assign(new Error('HTTP-Code: 404\nMessage: x\nBody: "..."\nHeaders: {}'), {
      code: 404,
      body: JSON.stringify({ message: 'namespaces "gone" not found' }),
    });
    expect(errorSummary(err)).toEqual({ code: 404, message: 'namespaces "gone" not found' });
    expect(errorSummary(Object.assign(new Error('Internal Server Error'), { statusCode: 500 }))).toEqual({
      code: 500,
      message: 'Internal Server Error',
    });
    expect(errorSummary(new Error('connect ECONNREFUSED 127.0.0.1:6443'))).toEqual({ message: 'connect ECONNREFUSED 127.0.0.1:6443' });
    expect(errorSummary('plain')).toEqual({ message: 'plain' });
  });
});
