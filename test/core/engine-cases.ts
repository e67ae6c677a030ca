/**
 * The table of expected engine outcomes over the pod fixtures in test/fixtures/pods (each a Pod as the
 * kube-apiserver passes it to a mutating webhook on CREATE: defaulted, token volume mounted, often without
 * metadata.name/namespace). The engine test loads each fixture, merges `context` over
 * `engineCaseDefaultContext`, runs the engine with the default config and checks `expect`.
 *
 * Warning patterns are topic words on purpose: the wording belongs to the engine.
 */
import type { InjectionContext, SidecarMode, SkipReason } from '../../src/core/types.js';

export interface EngineCase {
  /** Readable test name. */
  name: string;
  /** File name in test/fixtures/pods. */
  fixture: string;
  /** Merged over `engineCaseDefaultContext`. */
  context?: Partial<InjectionContext>;
  expect:
    | {
        action: 'inject';
        mode?: SidecarMode;
        /** App containers the status records as skipped (exactly these, in any order). */
        skippedContainers?: string[];
        /** Whether the status says the shared volume was created (false: an existing one was reused). */
        volumeCreated?: boolean;
        /** Whether the patched pod has `spec.shareProcessNamespace: true`. */
        shareProcessNamespace?: boolean;
        /** Whether the sidecar has resources (false when the pod sets pod-level `spec.resources`). */
        sidecarResources?: boolean;
        /** Each must match some warning. */
        warnings?: RegExp[];
      }
    | {
        action: 'update';
        /** App containers that get a mount on reinvocation (exactly these, in any order). */
        mountedAdded: string[];
      }
    | {
        action: 'skip';
        reason: SkipReason;
        /** Each must match some warning. */
        warnings?: RegExp[];
      };
}

/** What the test uses where a case's context says nothing. */
export const engineCaseDefaultContext: InjectionContext = {
  operation: 'CREATE',
  namespace: 'team-a',
  injectorNamespace: 'sidecar-injector',
};

/** Versions at which `nativeSidecar: auto` picks native (the feature can no longer be switched off). */
const NATIVE_CLUSTER: Partial<InjectionContext> = { apiServerVersion: '1.33', minKubeletVersion: '1.33' };
/** The API server is new enough, but one node's kubelet is not: classic. */
const OLD_KUBELET: Partial<InjectionContext> = { apiServerVersion: '1.33', minKubeletVersion: '1.31' };

const RUN_TO_COMPLETION = /run-to-completion|never complete|Job/i;
const PTRACE = /SYS_PTRACE/;
const SHARED_VOLUME = /shared-data/;

export const engineCases: EngineCase[] = [
  // --- a plain pod, and who gets injected -------------------------------------------------------------
  {
    name: 'single nginx container: full classic injection',
    fixture: 'nginx-single.yaml',
    expect: {
      action: 'inject',
      mode: 'classic',
      skippedContainers: [],
      volumeCreated: true,
      shareProcessNamespace: true,
      sidecarResources: true,
    },
  },
  {
    name: 'UPDATE is never injected',
    fixture: 'nginx-single.yaml',
    context: { operation: 'UPDATE' },
    expect: { action: 'skip', reason: 'operation-not-create' },
  },
  {
    name: 'kube-system is always excluded',
    fixture: 'nginx-single.yaml',
    context: { namespace: 'kube-system' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: 'kube-public is always excluded',
    fixture: 'nginx-single.yaml',
    context: { namespace: 'kube-public' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: 'kube-node-lease is always excluded',
    fixture: 'nginx-single.yaml',
    context: { namespace: 'kube-node-lease' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: "the injector's own namespace is excluded",
    fixture: 'nginx-single.yaml',
    context: { namespace: 'sidecar-injector' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: 'a non-default injector namespace (POD_NAMESPACE) is excluded too',
    fixture: 'nginx-single.yaml',
    context: { namespace: 'platform-tools', injectorNamespace: 'platform-tools' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: 'namespace without the selection label, pod without opt-in: not enabled',
    fixture: 'nginx-single.yaml',
    context: { namespaceLabels: {} },
    expect: { action: 'skip', reason: 'namespace-not-enabled' },
  },
  {
    name: 'namespace with unrelated labels only: not enabled',
    fixture: 'nginx-single.yaml',
    context: { namespaceLabels: { 'kubernetes.io/metadata.name': 'team-a', team: 'a' } },
    expect: { action: 'skip', reason: 'namespace-not-enabled' },
  },
  {
    name: 'namespace labelled disabled, pod without label: not enabled',
    fixture: 'nginx-single.yaml',
    context: { namespaceLabels: { 'sidecar-injection': 'disabled' } },
    expect: { action: 'skip', reason: 'namespace-not-enabled' },
  },
  {
    name: 'namespace labelled enabled: injected',
    fixture: 'nginx-single.yaml',
    context: { namespaceLabels: { 'kubernetes.io/metadata.name': 'team-a', 'sidecar-injection': 'enabled' } },
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'explicit privileged Pod Security level: full sidecar',
    fixture: 'nginx-single.yaml',
    context: { podSecurityLevel: 'privileged' },
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'baseline Pod Security level: injected without SYS_PTRACE (warning)',
    fixture: 'nginx-single.yaml',
    context: { podSecurityLevel: 'baseline' },
    expect: { action: 'inject', warnings: [PTRACE] },
  },
  {
    name: 'API server and every kubelet at 1.33: native sidecar',
    fixture: 'nginx-single.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'inject', mode: 'native', shareProcessNamespace: true },
  },
  {
    name: 'API server and kubelets beyond 1.33: native sidecar',
    fixture: 'nginx-single.yaml',
    context: { apiServerVersion: '1.34', minKubeletVersion: '1.33' },
    expect: { action: 'inject', mode: 'native' },
  },
  {
    name: 'API server 1.33 but a kubelet at 1.31: classic sidecar',
    fixture: 'nginx-single.yaml',
    context: OLD_KUBELET,
    expect: { action: 'inject', mode: 'classic' },
  },

  // --- controller-created pods and container layouts --------------------------------------------------
  {
    name: 'Deployment pod (no name, no namespace) with app + log shipper: both mounted',
    fixture: 'deployment-web-log-shipper.yaml',
    expect: {
      action: 'inject',
      mode: 'classic',
      skippedContainers: [],
      volumeCreated: true,
      shareProcessNamespace: true,
    },
  },
  {
    name: 'three app containers: all mounted',
    fixture: 'deployment-three-containers.yaml',
    expect: { action: 'inject', mode: 'classic', skippedContainers: [], volumeCreated: true },
  },
  {
    name: 'classic init container (db-migrate): injected, init container untouched',
    fixture: 'init-db-migrate.yaml',
    expect: { action: 'inject', mode: 'classic', skippedContainers: [] },
  },
  {
    name: 'classic init container, native cluster: native sidecar',
    fixture: 'init-db-migrate.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'inject', mode: 'native' },
  },
  {
    name: 'existing native sidecar (istio-proxy) and default-container set by Istio: injected',
    fixture: 'istio-native-sidecar.yaml',
    context: { namespace: 'bookinfo' },
    expect: { action: 'inject', mode: 'classic', skippedContainers: [], shareProcessNamespace: true },
  },
  {
    name: 'existing native sidecar (istio-proxy), native cluster: native sidecar',
    fixture: 'istio-native-sidecar.yaml',
    context: { namespace: 'bookinfo', ...NATIVE_CLUSTER },
    expect: { action: 'inject', mode: 'native' },
  },
  {
    name: 'StatefulSet pod with a claim volume and an exporter',
    fixture: 'statefulset-postgres.yaml',
    context: { namespace: 'data' },
    expect: { action: 'inject', mode: 'classic', skippedContainers: [], volumeCreated: true },
  },
  {
    name: 'DaemonSet pod with hostPath volumes and controller tolerations',
    fixture: 'daemonset-fluent-bit.yaml',
    context: { namespace: 'logging' },
    expect: { action: 'inject', mode: 'classic', volumeCreated: true },
  },

  // --- run-to-completion pods ---------------------------------------------------------------------------
  {
    name: 'Job pod (restartPolicy Never), classic: skipped with a warning',
    fixture: 'job-db-migrate.yaml',
    expect: { action: 'skip', reason: 'run-to-completion', warnings: [RUN_TO_COMPLETION] },
  },
  {
    name: 'Job pod, native cluster: native sidecar lets the Job complete',
    fixture: 'job-db-migrate.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'inject', mode: 'native', volumeCreated: true },
  },
  {
    name: 'Job pod, API server 1.33 but a kubelet at 1.31: classic, so skipped',
    fixture: 'job-db-migrate.yaml',
    context: OLD_KUBELET,
    expect: { action: 'skip', reason: 'run-to-completion', warnings: [RUN_TO_COMPLETION] },
  },
  {
    name: 'Indexed Job pod (restartPolicy OnFailure), classic: skipped',
    fixture: 'job-indexed-onfailure.yaml',
    expect: { action: 'skip', reason: 'run-to-completion', warnings: [RUN_TO_COMPLETION] },
  },
  {
    name: 'Indexed Job pod, native cluster: native sidecar',
    fixture: 'job-indexed-onfailure.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'inject', mode: 'native' },
  },
  {
    name: 'CronJob-spawned Job pod, classic: skipped',
    fixture: 'cronjob-report.yaml',
    expect: { action: 'skip', reason: 'run-to-completion', warnings: [RUN_TO_COMPLETION] },
  },
  {
    name: 'CronJob-spawned Job pod, cluster at 1.34 with kubelets at 1.33: native sidecar',
    fixture: 'cronjob-report.yaml',
    context: { apiServerVersion: '1.34', minKubeletVersion: '1.33' },
    expect: { action: 'inject', mode: 'native' },
  },
  {
    name: 'bare pod from kubectl run --restart=Never, classic: skipped',
    fixture: 'kubectl-run-restart-never.yaml',
    expect: { action: 'skip', reason: 'run-to-completion', warnings: [RUN_TO_COMPLETION] },
  },
  {
    name: 'bare pod from kubectl run --restart=Never, native cluster: native sidecar',
    fixture: 'kubectl-run-restart-never.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'inject', mode: 'native' },
  },

  // --- volumes --------------------------------------------------------------------------------------------
  {
    name: 'configMap, secret, PVC, hostPath and downwardAPI volumes: shared volume added',
    fixture: 'volumes-mixed.yaml',
    expect: { action: 'inject', mode: 'classic', volumeCreated: true, skippedContainers: [] },
  },
  {
    name: 'no spec.volumes at all (automountServiceAccountToken false): volumes created',
    fixture: 'no-volumes-no-automount.yaml',
    expect: { action: 'inject', mode: 'classic', volumeCreated: true, skippedContainers: [] },
  },
  {
    name: 'pre-declared shared-data tmpfs with sizeLimit: reused as is (warning)',
    fixture: 'shared-data-emptydir-memory.yaml',
    expect: { action: 'inject', volumeCreated: false, skippedContainers: [], warnings: [SHARED_VOLUME] },
  },
  {
    name: 'existing shared-data that is a PVC: reused as is, never duplicated (warning)',
    fixture: 'shared-data-pvc.yaml',
    expect: { action: 'inject', volumeCreated: false, skippedContainers: [], warnings: [SHARED_VOLUME] },
  },
  {
    name: 'shared-data already mounted by nginx at another path: reused, nginx also mounts it at /pod-data',
    fixture: 'shared-data-mounted-elsewhere.yaml',
    expect: { action: 'inject', volumeCreated: false, skippedContainers: [], warnings: [SHARED_VOLUME] },
  },
  {
    name: 'a container already mounting something at /pod-data is skipped (warning, recorded)',
    fixture: 'mounts-pod-data.yaml',
    expect: {
      action: 'inject',
      mode: 'classic',
      skippedContainers: ['exporter'],
      volumeCreated: true,
      warnings: [/pod-data|exporter/],
    },
  },

  // --- conflicts and process namespace --------------------------------------------------------------
  {
    name: 'own container named sidecar without status: name clash, no patch (warning)',
    fixture: 'sidecar-name-clash.yaml',
    expect: { action: 'skip', reason: 'name-clash', warnings: [/sidecar/] },
  },
  {
    name: 'hostPID pod: injected without shareProcessNamespace (warning)',
    fixture: 'host-pid.yaml',
    expect: { action: 'inject', mode: 'classic', shareProcessNamespace: false, warnings: [/hostPID/] },
  },
  {
    name: 'shareProcessNamespace already true: kept',
    fixture: 'share-process-namespace.yaml',
    expect: { action: 'inject', mode: 'classic', shareProcessNamespace: true, skippedContainers: [] },
  },
  {
    name: 'Windows pod: skipped',
    fixture: 'windows-iis.yaml',
    expect: { action: 'skip', reason: 'windows-pod' },
  },

  // --- metadata shapes ------------------------------------------------------------------------------------
  {
    name: 'no labels at all: injected through the namespace',
    fixture: 'no-labels.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'no labels at all, namespace not enabled: nothing opts it in',
    fixture: 'no-labels.yaml',
    context: { namespaceLabels: {} },
    expect: { action: 'skip', reason: 'namespace-not-enabled' },
  },
  {
    name: 'no metadata.annotations key: injected (annotations created whole)',
    fixture: 'no-annotations.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: "annotation and label keys with '/': injected",
    fixture: 'annotations-escaping.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: "annotation keys with '~' and a literal '~1': injected",
    fixture: 'annotations-tilde.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'existing default-container annotation (not the first container): injected',
    fixture: 'default-container-set.yaml',
    expect: { action: 'inject', mode: 'classic', skippedContainers: [] },
  },
  {
    name: 'metadata.namespace kube-system, request namespace kube-system: excluded',
    fixture: 'kube-system-coredns.yaml',
    context: { namespace: 'kube-system' },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },
  {
    name: 'metadata.namespace kube-system but request namespace team-a: the request namespace decides',
    fixture: 'kube-system-coredns.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },

  // --- opt-in and opt-out labels ------------------------------------------------------------------------
  {
    name: 'pod label disabled (namespace selector already matched): opted out',
    fixture: 'opt-out-label.yaml',
    expect: { action: 'skip', reason: 'pod-opted-out' },
  },
  {
    name: 'pod label disabled in an enabled namespace: opted out',
    fixture: 'opt-out-label.yaml',
    context: { namespaceLabels: { 'sidecar-injection': 'enabled' } },
    expect: { action: 'skip', reason: 'pod-opted-out' },
  },
  {
    name: 'pod label enabled (selector already matched): injected',
    fixture: 'opt-in-label.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'pod label enabled in an unlabelled namespace: injected',
    fixture: 'opt-in-label.yaml',
    context: { namespaceLabels: { 'kubernetes.io/metadata.name': 'team-a' } },
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'pod label enabled in an enabled namespace: injected',
    fixture: 'opt-in-label.yaml',
    context: { namespaceLabels: { 'sidecar-injection': 'enabled' } },
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'pod label enabled in a namespace labelled disabled: the namespace blocks opt-in',
    fixture: 'opt-in-label.yaml',
    context: { namespaceLabels: { 'sidecar-injection': 'disabled' } },
    expect: { action: 'skip', reason: 'namespace-not-enabled' },
  },
  {
    name: 'pod label enabled in kube-system: still excluded',
    fixture: 'opt-in-label.yaml',
    context: { namespace: 'kube-system', namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
    expect: { action: 'skip', reason: 'excluded-namespace' },
  },

  // --- resources and Pod Security ------------------------------------------------------------------------
  {
    name: 'pod-level spec.resources: sidecar gets no resources of its own',
    fixture: 'pod-level-resources.yaml',
    expect: { action: 'inject', mode: 'classic', sidecarResources: false, skippedContainers: [] },
  },
  {
    name: 'Guaranteed QoS pod: sidecar requests = limits keep it Guaranteed',
    fixture: 'guaranteed-qos.yaml',
    expect: { action: 'inject', mode: 'classic', sidecarResources: true, skippedContainers: [] },
  },
  {
    name: 'GPU pod (nvidia.com/gpu): injected with the usual sidecar resources',
    fixture: 'gpu-inference.yaml',
    expect: { action: 'inject', mode: 'classic', sidecarResources: true },
  },
  {
    name: 'restricted-compliant app, default (privileged) level: full sidecar',
    fixture: 'restricted-app.yaml',
    expect: { action: 'inject', mode: 'classic', shareProcessNamespace: true },
  },
  {
    name: 'restricted-compliant app in a restricted namespace: sidecar reduced (warning)',
    fixture: 'restricted-app.yaml',
    context: { podSecurityLevel: 'restricted' },
    expect: { action: 'inject', mode: 'classic', warnings: [PTRACE] },
  },
  {
    name: 'restricted-compliant app in a baseline namespace: no SYS_PTRACE (warning)',
    fixture: 'restricted-app.yaml',
    context: { podSecurityLevel: 'baseline' },
    expect: { action: 'inject', mode: 'classic', warnings: [PTRACE] },
  },
  {
    name: 'restricted namespace on a native cluster: reduced native sidecar',
    fixture: 'restricted-app.yaml',
    context: { podSecurityLevel: 'restricted', ...NATIVE_CLUSTER },
    expect: { action: 'inject', mode: 'native', warnings: [PTRACE] },
  },

  // --- everyday pod features ------------------------------------------------------------------------------
  {
    name: 'hostNetwork pod: injected',
    fixture: 'host-network-ingress.yaml',
    context: { namespace: 'ingress-nginx' },
    expect: { action: 'inject', mode: 'classic', shareProcessNamespace: true },
  },
  {
    name: 'large env with secretKeyRef, fieldRef, resourceFieldRef and envFrom: injected',
    fixture: 'large-env.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'probes of every kind and lifecycle hooks: injected',
    fixture: 'probes-lifecycle.yaml',
    expect: { action: 'inject', mode: 'classic', skippedContainers: [] },
  },
  {
    name: 'topology spread, affinity, nodeSelector, priorityClassName: injected',
    fixture: 'topology-affinity-priority.yaml',
    expect: { action: 'inject', mode: 'classic' },
  },
  {
    name: 'imagePullSecrets and digest-pinned private images: injected',
    fixture: 'image-pull-secrets.yaml',
    expect: { action: 'inject', mode: 'classic', skippedContainers: [] },
  },

  // --- already injected and reinvocation ---------------------------------------------------------------
  {
    name: 'already injected (status annotation), nothing new: no patch',
    fixture: 'already-injected.yaml',
    expect: { action: 'skip', reason: 'already-injected' },
  },
  {
    name: 'already injected in native mode (Job pod on a native cluster): no patch',
    fixture: 'already-injected-native-job.yaml',
    context: NATIVE_CLUSTER,
    expect: { action: 'skip', reason: 'already-injected' },
  },
  {
    name: 'reinvocation after Vault added vault-agent: only its mount is added',
    fixture: 'reinvocation-vault-agent.yaml',
    expect: { action: 'update', mountedAdded: ['vault-agent'] },
  },
];
