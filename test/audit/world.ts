/**
 * A cluster of pods in the fake API server for the audit, `check` and `repair` tests: namespaces, nodes, owners
 * (ReplicaSets pointing at Deployments, a Job, a ReplicaSet of an Argo Rollout), pods missed, injected (fine or
 * stale), skipped, and a webhook that injects dry-run pods with the real engine (or none, as one failing open).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { computeInjection } from '../../src/core/engine.js';
import { defaultConfig } from '../../src/core/defaults.js';
import { STATUS_ANNOTATION } from '../../src/core/labels.js';
import { FakeApiServer } from '../cluster/fake-apiserver.js';
import { applyToCopy } from '../support/pod-assertions.js';
import { loadPodFixture } from '../support/fixtures.js';

export const CREATED = '2026-11-28T09:00:00Z';

/** The status a classic injection by the default configuration records. */
export const CLASSIC_STATUS = JSON.stringify({
  version: 1,
  mode: 'classic',
  sidecar: 'sidecar',
  image: 'busybox:1.37.0',
  volume: { name: 'shared-data', created: true },
  mounted: ['app'],
  skipped: [],
  mountPath: '/pod-data',
  shareProcessNamespace: true,
  defaultContainer: true,
  podSecurityLevel: 'privileged',
  reduced: [],
});

export interface PodSpecInput {
  namespace: string;
  name: string;
  owner?: { apiVersion: string; kind: string; name: string };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  created?: string;
  fixture?: string;
}

const fixtures = new Map<string, ReturnType<typeof loadPodFixture>>();

/** A running pod as stored, from a fixture's spec. */
export function storedPod(input: PodSpecInput): Record<string, unknown> {
  const file = input.fixture ?? 'nginx-single.yaml';
  const fixture = fixtures.get(file) ?? loadPodFixture(file);
  fixtures.set(file, fixture);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      uid: `uid-${input.namespace}-${input.name}`,
      creationTimestamp: input.created ?? CREATED,
      labels: { ...(fixture.metadata?.labels ?? {}), ...input.labels },
      ...(input.annotations === undefined ? {} : { annotations: input.annotations }),
      ...(input.owner === undefined ? {} : { ownerReferences: [{ ...input.owner, uid: `uid-${input.owner.name}`, controller: true, blockOwnerDeletion: true }] }),
    },
    spec: { ...fixture.spec, nodeName: 'worker-1' },
    status: { phase: 'Running', podIP: '10.244.1.5' },
  };
}

function owned(kind: string, name: string, namespace: string, owner?: { apiVersion: string; kind: string; name: string }): Record<string, unknown> {
  return {
    apiVersion: kind === 'Job' ? 'batch/v1' : 'apps/v1',
    kind,
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      ...(owner === undefined ? {} : { ownerReferences: [{ ...owner, uid: `uid-${owner.name}`, controller: true }] }),
    },
    spec: { template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } } },
  };
}

/** The dry-run admission of a webhook that works: the real engine's patch, applied. */
export function injectingWebhook(pod: Record<string, unknown>, namespace: string): Record<string, unknown> {
  const result = computeInjection(pod, defaultConfig(), { operation: 'CREATE', namespace, injectorNamespace: 'sidecar-injector' });
  return result.patch.length === 0 ? pod : (applyToCopy(pod, result.patch) as Record<string, unknown>);
}

/** How many pods of each kind the world holds (for the assertions). */
export const WORLD = { fineInBatch: 520, missedWeb: 3 } as const;

export async function startWorld(): Promise<FakeApiServer> {
  const api = new FakeApiServer();
  await api.start();
  api.put('namespaces', { name: 'shop', labels: { 'sidecar-injection': 'enabled' } });
  api.put('namespaces', { name: 'batch', labels: { 'sidecar-injection': 'enabled' } });
  api.put('namespaces', { name: 'team-a' });
  api.put('namespaces', { name: 'quiet', labels: { 'sidecar-injection': 'disabled' } });
  api.put('namespaces', { name: 'kube-system', labels: { 'sidecar-injection': 'enabled' } });
  api.put('namespaces', { name: 'sidecar-injector' });
  api.put('nodes', { name: 'worker-1', kubeletVersion: 'v1.31.4' });
  api.gitVersion = 'v1.31.4';

  const deploy = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' };
  api.putObject('/apis/apps/v1/namespaces/shop/replicasets/web-7d9f8c6b5', owned('ReplicaSet', 'web-7d9f8c6b5', 'shop', deploy));
  api.putObject('/apis/apps/v1/namespaces/shop/deployments/web', owned('Deployment', 'web', 'shop'));
  api.putObject('/apis/apps/v1/namespaces/shop/statefulsets/db', owned('StatefulSet', 'db', 'shop'));
  const rollout = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'canary' };
  api.putObject('/apis/apps/v1/namespaces/shop/replicasets/canary-5c4d', owned('ReplicaSet', 'canary-5c4d', 'shop', rollout));
  api.putObject('/apis/batch/v1/namespaces/shop/jobs/migrate', owned('Job', 'migrate', 'shop'));

  const rs = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8c6b5' };
  for (let i = 0; i < WORLD.missedWeb; i += 1) {
    api.putPod(storedPod({ namespace: 'shop', name: `web-7d9f8c6b5-m${i}`, owner: rs, labels: { app: 'web' }, created: `2026-11-2${i}T09:00:00Z` }));
  }
  api.putPod(storedPod({ namespace: 'shop', name: 'web-7d9f8c6b5-ok', owner: rs, labels: { app: 'web' }, annotations: { [STATUS_ANNOTATION]: CLASSIC_STATUS } }));
  api.putPod(storedPod({ namespace: 'shop', name: 'db-0', owner: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db' }, labels: { app: 'db' }, fixture: 'statefulset-postgres.yaml' }));
  api.putPod(storedPod({ namespace: 'shop', name: 'canary-5c4d-a', owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'canary-5c4d' }, labels: { app: 'canary' } }));
  // A Job pod in classic mode: legitimately skipped (a classic sidecar would keep it from completing).
  api.putPod(storedPod({ namespace: 'shop', name: 'migrate-x1', owner: { apiVersion: 'batch/v1', kind: 'Job', name: 'migrate' }, fixture: 'job-db-migrate.yaml' }));
  api.putPod(storedPod({ namespace: 'shop', name: 'win-1', fixture: 'windows-iis.yaml' }));
  api.putPod(storedPod({ namespace: 'shop', name: 'out-1', labels: { 'sidecar-injection': 'disabled' } }));
  // Opted in by label in an unlabelled namespace: a bare pod, missed.
  api.putPod(storedPod({ namespace: 'team-a', name: 'debug-me', labels: { 'sidecar-injection': 'enabled', app: 'debug' } }));
  api.putPod(storedPod({ namespace: 'team-a', name: 'not-opted', labels: { app: 'other' } }));
  api.putPod(storedPod({ namespace: 'quiet', name: 'q', labels: { 'sidecar-injection': 'enabled' } }));
  api.putPod(storedPod({ namespace: 'kube-system', name: 'coredns-1', fixture: 'kube-system-coredns.yaml' }));
  // More than one page of injected pods, one of them with an older image: stale.
  for (let i = 0; i < WORLD.fineInBatch; i += 1) {
    const status = i === 7 ? CLASSIC_STATUS.replace('busybox:1.37.0', 'busybox:1.36.1') : CLASSIC_STATUS;
    api.putPod(storedPod({ namespace: 'batch', name: `worker-${String(i).padStart(4, '0')}`, annotations: { [STATUS_ANNOTATION]: status } }));
  }
  return api;
}

export function kubeConfigFor(api: FakeApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'jane', token: 'token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'jane' }],
    currentContext: 'fake',
  });
  return kc;
}
