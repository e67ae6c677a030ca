/**
 * Types shared by the injection engine and its adapters. The pod is the raw JSON the API server sent,
 * typed with `kubernetes-types`; nothing here is a client-library model.
 */
import type { Container, Pod, PodSpec, ResourceRequirements, Volume } from 'kubernetes-types/core/v1.js';

/** `kubernetes-types` 1.30 predates pod-level resources (Kubernetes 1.32). */
export interface PodSpecWithResources extends PodSpec {
  resources?: ResourceRequirements;
}

export interface PodObject extends Pod {
  spec?: PodSpecWithResources;
}

export type { Container, Volume };

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];

/** How the sidecar is placed: appended to `spec.containers`, or first in `initContainers` with `restartPolicy: Always`. */
export type SidecarMode = 'classic' | 'native';

export interface SidecarConfig {
  name: string;
  image: string;
  command: string[];
  args: string[];
  /** Requests and limits are both set to these (equal, so a Guaranteed pod stays Guaranteed). */
  resources: { cpu: string; memory: string };
  mountPath: string;
}

export interface InjectorConfig {
  sidecar: SidecarConfig;
  /** Where every app container mounts the shared volume. */
  appMountPath: string;
  volume: { name: string; source: Omit<Volume, 'name'> };
  shareProcessNamespace: boolean;
  nativeSidecar: 'auto' | 'always' | 'never';
  /** In classic mode a sidecar never exits, so a Job's pod would never complete. */
  classicRunToCompletion: 'skip' | 'inject';
  /** Added to the namespaces that are always excluded; never replaces them. */
  excludedNamespaces: string[];
  /** Regular expressions (anchored) an image override must match. */
  allowedImages: string[];
  /** `closed`: our own faults answer `allowed: false`. */
  failure: 'open' | 'closed';
  podSecurity: { defaultLevel: PodSecurityLevel };
}

/** What the engine knows of the world; the adapters learn it from the request, the cluster or CLI flags. */
export interface InjectionContext {
  operation: string;
  namespace: string;
  /** The injector's own namespace: never injected. */
  injectorNamespace: string;
  /**
   * Labels of the pod's namespace. Undefined in the webhook without cluster access: the API server already
   * evaluated the namespaceSelector of the entry that called us.
   */
  namespaceLabels?: Record<string, string>;
  /** The namespace's `pod-security.kubernetes.io/enforce` level; undefined: unlabelled, use the config default. */
  podSecurityLevel?: PodSecurityLevel;
  /** `major.minor` of the API server and of the oldest kubelet, when known. Decide `nativeSidecar: auto`. */
  apiServerVersion?: string;
  minKubeletVersion?: string;
}

/** One RFC 6902 operation as the engine emits it. */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** What the status annotation records: exactly what was added, so `uninject` can take it away again. */
export interface InjectionStatus {
  version: 1;
  mode: SidecarMode;
  sidecar: string;
  image: string;
  volume: { name: string; created: boolean };
  /** App containers we added a mount to. */
  mounted: string[];
  /** App containers left alone, with why. */
  skipped: { container: string; reason: string }[];
  mountPath: string;
  /** True when we set `shareProcessNamespace` (it was not already true). */
  shareProcessNamespace: boolean;
  /** True when we set the default-container annotation. */
  defaultContainer: boolean;
  podSecurityLevel: PodSecurityLevel;
  /** What the Pod Security level took away from the full sidecar. */
  reduced: string[];
}

export type SkipReason =
  | 'operation-not-create'
  | 'not-a-pod'
  | 'excluded-namespace'
  | 'namespace-not-enabled'
  | 'pod-opted-out'
  | 'windows-pod'
  | 'already-injected'
  | 'name-clash'
  | 'run-to-completion';

export type Decision =
  /** A fresh injection: sidecar, volume, mounts, annotations. */
  | { action: 'inject' }
  /** Reinvocation: already injected, mounts added for app containers that appeared since. */
  | { action: 'update' }
  | { action: 'skip'; reason: SkipReason }
  /** Our own fault (the pre-flight check failed): no patch. */
  | { action: 'error'; reason: string };

export interface InjectionResult {
  decision: Decision;
  /** Empty unless the decision is inject or update. */
  patch: PatchOperation[];
  /** Human-readable, for AdmissionReview `warnings`. */
  warnings: string[];
  /** The status annotation the patched pod carries (inject/update). */
  status?: InjectionStatus;
}
