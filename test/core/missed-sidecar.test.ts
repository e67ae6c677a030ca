/**
 * The missed-sidecar rule over the pod fixtures, each turned into a pod as the API server stores it (name, uid,
 * node, status): missed, fine, stale, legitimately skipped. The expectations are written out by hand.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { STATUS_ANNOTATION } from '../../src/core/labels.js';
import {
  classifyMetadata,
  classifyStoredPod,
  controllerOf,
  podMetadata,
  type AuditContext,
  type PodVerdict,
} from '../../src/core/missed-sidecar.js';
import type { InjectorConfig, PodObject } from '../../src/core/types.js';
import { loadPodFixture, podFixtureFiles } from '../support/fixtures.js';

const ENABLED = { 'kubernetes.io/metadata.name': 'shop', 'sidecar-injection': 'enabled' };
const UNLABELLED = { 'kubernetes.io/metadata.name': 'shop' };
const CLASSIC: AuditContext = { injectorNamespace: 'sidecar-injector', apiServerVersion: '1.31', minKubeletVersion: '1.31' };
const NATIVE: AuditContext = { injectorNamespace: 'sidecar-injector', apiServerVersion: '1.33', minKubeletVersion: '1.33' };

/** The fixture as `kubectl get pod -o json` would show it once scheduled and running. */
function stored(file: string, namespace = 'shop', edit: (pod: PodObject) => void = () => {}): PodObject {
  const pod = structuredClone(loadPodFixture(file));
  pod.metadata = {
    ...pod.metadata,
    name: `${pod.metadata?.generateName ?? 'pod-'}x7k2p`,
    namespace,
    uid: '1f0c2b9e-3a4d-4c5e-8f6a-7b8c9d0e1f2a',
    resourceVersion: '48213',
    creationTimestamp: '2026-11-30T09:00:00Z',
  };
  pod.spec = { ...pod.spec!, nodeName: 'worker-2' };
  const running: PodObject = { ...pod, status: { phase: 'Running', podIP: '10.244.2.17', startTime: '2026-11-30T09:00:02Z' } };
  edit(running);
  return running;
}

interface Row {
  name: string;
  pod: () => PodObject;
  namespaceLabels?: Record<string, string>;
  context?: AuditContext;
  config?: Partial<InjectorConfig>;
  want: PodVerdict;
}

const rows: Row[] = [
  // --- missed ---------------------------------------------------------------------------------------------
  { name: 'Deployment pod in an enabled namespace, no sidecar', pod: () => stored('nginx-single.yaml'), want: { verdict: 'missed' } },
  { name: 'StatefulSet pod', pod: () => stored('statefulset-postgres.yaml'), want: { verdict: 'missed' } },
  { name: 'DaemonSet pod', pod: () => stored('daemonset-fluent-bit.yaml'), want: { verdict: 'missed' } },
  {
    name: 'pod opted in by label in an unlabelled namespace',
    pod: () => stored('opt-in-label.yaml'),
    namespaceLabels: UNLABELLED,
    want: { verdict: 'missed' },
  },
  { name: 'Job pod in a native cluster (a native sidecar would not block it)', pod: () => stored('job-db-migrate.yaml'), context: NATIVE, want: { verdict: 'missed' } },
  {
    name: 'Job pod, classic, with classicRunToCompletion: inject',
    pod: () => stored('job-db-migrate.yaml'),
    config: { classicRunToCompletion: 'inject' },
    want: { verdict: 'missed' },
  },
  // --- fine -----------------------------------------------------------------------------------------------
  { name: 'injected Deployment pod, same image and mode', pod: () => stored('already-injected.yaml'), want: { verdict: 'fine' } },
  { name: 'injected native Job pod in a native cluster', pod: () => stored('already-injected-native-job.yaml'), context: NATIVE, want: { verdict: 'fine' } },
  {
    name: 'injected pod, mode not comparable (auto without kubelet versions): only the image counts',
    pod: () => stored('already-injected-native-job.yaml'),
    context: { injectorNamespace: 'sidecar-injector' },
    want: { verdict: 'fine' },
  },
  {
    name: 'status annotation that does not parse: left alone, like the engine does',
    pod: () => stored('already-injected.yaml', 'shop', (p) => (p.metadata!.annotations![STATUS_ANNOTATION] = '{not json')),
    want: { verdict: 'fine' },
  },
  {
    name: 'injected pod in a namespace no longer enabled: fine, not stale',
    pod: () => stored('already-injected.yaml'),
    namespaceLabels: UNLABELLED,
    config: { sidecar: { ...defaultConfig().sidecar, image: 'busybox:1.38.0' } },
    want: { verdict: 'fine' },
  },
  // --- stale ----------------------------------------------------------------------------------------------
  {
    name: 'injected with an older image',
    pod: () => stored('already-injected.yaml'),
    config: { sidecar: { ...defaultConfig().sidecar, image: 'busybox:1.38.0' } },
    want: { verdict: 'stale', differences: ['image busybox:1.37.0, today busybox:1.38.0'] },
  },
  {
    name: 'injected classic, today native',
    pod: () => stored('already-injected.yaml'),
    context: NATIVE,
    want: { verdict: 'stale', differences: ['mode classic, today native'] },
  },
  {
    name: 'injected classic, nativeSidecar: always',
    pod: () => stored('already-injected.yaml'),
    context: { injectorNamespace: 'sidecar-injector' },
    config: { nativeSidecar: 'always' },
    want: { verdict: 'stale', differences: ['mode classic, today native'] },
  },
  // --- legitimately skipped ---------------------------------------------------------------------------------
  { name: 'pod opted out', pod: () => stored('opt-out-label.yaml'), want: { verdict: 'skipped', reason: 'pod-opted-out' } },
  { name: 'Windows pod', pod: () => stored('windows-iis.yaml'), want: { verdict: 'skipped', reason: 'windows-pod' } },
  { name: 'a container already named like the sidecar', pod: () => stored('sidecar-name-clash.yaml'), want: { verdict: 'skipped', reason: 'name-clash' } },
  { name: 'Job pod, classic', pod: () => stored('job-db-migrate.yaml'), want: { verdict: 'skipped', reason: 'run-to-completion' } },
  { name: 'CronJob pod, classic', pod: () => stored('cronjob-report.yaml'), want: { verdict: 'skipped', reason: 'run-to-completion' } },
  { name: 'kubectl run --restart=Never, classic', pod: () => stored('kubectl-run-restart-never.yaml'), want: { verdict: 'skipped', reason: 'run-to-completion' } },
  {
    name: 'kube-system, even labelled enabled',
    pod: () => stored('kube-system-coredns.yaml', 'kube-system'),
    namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system', 'sidecar-injection': 'enabled' },
    want: { verdict: 'skipped', reason: 'excluded-namespace' },
  },
  {
    name: "the injector's own pods",
    pod: () => stored('nginx-single.yaml', 'sidecar-injector'),
    namespaceLabels: { 'kubernetes.io/metadata.name': 'sidecar-injector', 'sidecar-injection': 'enabled' },
    want: { verdict: 'skipped', reason: 'excluded-namespace' },
  },
  {
    name: 'a namespace of the configuration excludedNamespaces',
    pod: () => stored('nginx-single.yaml'),
    config: { excludedNamespaces: ['shop'] },
    want: { verdict: 'skipped', reason: 'excluded-namespace' },
  },
  { name: 'unlabelled pod in an unlabelled namespace', pod: () => stored('nginx-single.yaml'), namespaceLabels: UNLABELLED, want: { verdict: 'skipped', reason: 'namespace-not-enabled' } },
  {
    name: 'pod opted in inside a namespace labelled disabled',
    pod: () => stored('opt-in-label.yaml'),
    namespaceLabels: { 'sidecar-injection': 'disabled' },
    want: { verdict: 'skipped', reason: 'namespace-not-enabled' },
  },
];

describe('the missed-sidecar rule', () => {
  it.each(rows)('$name', (row) => {
    const config = { ...defaultConfig(), ...row.config };
    const verdict = classifyStoredPod(row.pod(), row.namespaceLabels ?? ENABLED, config, row.context ?? CLASSIC);
    expect(verdict).toEqual(row.want);
  });

  it('what only a stored pod has (node, status, uid, timestamps) never changes the verdict', () => {
    for (const file of podFixtureFiles()) {
      for (const context of [CLASSIC, NATIVE]) {
        const admitted = loadPodFixture(file);
        admitted.metadata = { ...admitted.metadata, namespace: 'shop' };
        const asStored = stored(file);
        expect(classifyStoredPod(asStored, ENABLED, defaultConfig(), context), file).toEqual(
          classifyStoredPod(admitted, ENABLED, defaultConfig(), context),
        );
      }
    }
  });

  it('metadata alone decides injected, opted-out and excluded pods; a selected pod without status needs the spec', () => {
    const config = defaultConfig();
    const meta = (file: string, namespace = 'shop') => podMetadata(stored(file, namespace).metadata);
    expect(classifyMetadata(meta('already-injected.yaml'), ENABLED, config, CLASSIC)).toEqual({ verdict: 'fine' });
    expect(classifyMetadata(meta('opt-out-label.yaml'), ENABLED, config, CLASSIC)).toEqual({ verdict: 'skipped', reason: 'pod-opted-out' });
    expect(classifyMetadata(meta('nginx-single.yaml', 'kube-system'), ENABLED, config, CLASSIC)).toEqual({
      verdict: 'skipped',
      reason: 'excluded-namespace',
    });
    expect(classifyMetadata(meta('windows-iis.yaml'), ENABLED, config, CLASSIC)).toEqual({ verdict: 'needs-spec' });
  });

  it('the controller of a pod, or none for a bare pod', () => {
    expect(controllerOf(stored('nginx-single.yaml').metadata)).toBeUndefined();
    expect(controllerOf(stored('statefulset-postgres.yaml').metadata)).toMatchObject({ kind: 'StatefulSet', controller: true });
    expect(controllerOf(stored('job-db-migrate.yaml').metadata)).toMatchObject({ kind: 'Job', name: 'schema-migrate-v42' });
    // An owner that is not the controller (e.g. a garbage-collection parent) does not make a pod managed.
    const adopted = stored('nginx-single.yaml', 'shop', (p) => {
      p.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }];
    });
    expect(controllerOf(adopted.metadata)).toBeUndefined();
  });
});
