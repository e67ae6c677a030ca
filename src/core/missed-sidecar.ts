/**
 * The missed-sidecar rule: given a pod as the API server stores it and its namespace's labels, is it a pod that
 * should carry the sidecar but does not? Pure. It asks the engine itself what it would decide for the pod as a
 * CREATE, so the rule cannot drift from what the webhook does: opted-out pods, excluded namespaces, Windows pods,
 * a name clash, run-to-completion pods in classic mode are skipped by the engine and so never count as missed.
 *
 * What only a stored pod has (nodeName, status, uid, resourceVersion…) is dropped before asking: the webhook
 * never saw it. A pod that carries our status annotation is fine even when an older configuration injected it;
 * it is `stale` when the image or mode it records is not what today's configuration would give it.
 */
import type { ObjectMeta, OwnerReference } from 'kubernetes-types/meta/v1.js';
import { computeInjection } from './engine.js';
import { STATUS_ANNOTATION } from './labels.js';
import { selectionSkip } from './selection.js';
import { isStatusError, parseStatus } from './status.js';
import type { InjectionContext, InjectorConfig, PodObject, SkipReason } from './types.js';

/** What the auditor knows of the cluster besides the pod and its namespace. */
export interface AuditContext {
  injectorNamespace: string;
  /** Decide `nativeSidecar: auto` as the webhook would; unknown versions make the engine choose classic. */
  apiServerVersion?: string;
  minKubeletVersion?: string;
}

export type PodVerdict =
  /** Selected, no sidecar: the webhook was not called or failed open when the pod was created. */
  | { verdict: 'missed' }
  /** Carries our sidecar as today's configuration would add it. */
  | { verdict: 'fine' }
  /** Carries our sidecar, but today's configuration would give it another image or mode. */
  | { verdict: 'stale'; differences: string[] }
  /** Legitimately without the sidecar: the engine would skip it (or refuse it: `engine-refused`) today too. */
  | { verdict: 'skipped'; reason: SkipReason | 'engine-refused' };

/** Only the metadata was read: decided, or the spec is needed (the pod is selected and not yet injected). */
export type MetadataVerdict = PodVerdict | { verdict: 'needs-spec' };

/** The metadata the rule reads: what a PartialObjectMetadataList returns. */
export interface PodMetadata {
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function podMetadata(metadata: ObjectMeta | undefined, namespace?: string): PodMetadata {
  return { namespace: metadata?.namespace ?? namespace ?? '', labels: metadata?.labels ?? {}, annotations: metadata?.annotations ?? {} };
}

function engineContext(namespace: string, namespaceLabels: Record<string, string>, context: AuditContext): InjectionContext {
  return {
    operation: 'CREATE',
    namespace,
    injectorNamespace: context.injectorNamespace,
    namespaceLabels,
    ...(context.apiServerVersion === undefined ? {} : { apiServerVersion: context.apiServerVersion }),
    ...(context.minKubeletVersion === undefined ? {} : { minKubeletVersion: context.minKubeletVersion }),
  };
}

/** Whether the mode `auto` would pick is known; when not, a recorded mode is not compared. */
function modeKnown(config: InjectorConfig, context: AuditContext): boolean {
  return config.nativeSidecar !== 'auto' || (context.apiServerVersion !== undefined && context.minKubeletVersion !== undefined);
}

/**
 * An injected pod: compare what its status records with what the engine would add today. Image and mode depend
 * only on the annotations, the configuration and the versions, so a one-container stand-in spec is enough to ask.
 */
function injectedVerdict(meta: PodMetadata, statusText: string, namespaceLabels: Record<string, string>, config: InjectorConfig, context: AuditContext): PodVerdict {
  const recorded = parseStatus(statusText);
  // Unreadable: the engine leaves such a pod alone too; nothing a restart would change.
  if (isStatusError(recorded)) return { verdict: 'fine' };
  const { [STATUS_ANNOTATION]: _recorded, ...annotations } = meta.annotations;
  const standIn: PodObject = {
    metadata: { labels: meta.labels, annotations },
    spec: { containers: [{ name: `${config.sidecar.name}-stand-in`, image: 'stand-in' }] },
  };
  const today = computeInjection(standIn, config, engineContext(meta.namespace, namespaceLabels, context)).status;
  if (today === undefined) return { verdict: 'fine' };
  const differences: string[] = [];
  if (today.image !== recorded.image) differences.push(`image ${recorded.image}, today ${today.image}`);
  if (modeKnown(config, context) && today.mode !== recorded.mode) differences.push(`mode ${recorded.mode}, today ${today.mode}`);
  return differences.length === 0 ? { verdict: 'fine' } : { verdict: 'stale', differences };
}

/** The rule on metadata alone: what it can decide without the spec (most pods), else `needs-spec`. */
export function classifyMetadata(meta: PodMetadata, namespaceLabels: Record<string, string>, config: InjectorConfig, context: AuditContext): MetadataVerdict {
  const statusText = meta.annotations[STATUS_ANNOTATION];
  if (statusText !== undefined) return injectedVerdict(meta, statusText, namespaceLabels, config, context);
  const skip = selectionSkip({
    namespace: meta.namespace,
    injectorNamespace: context.injectorNamespace,
    excludedNamespaces: config.excludedNamespaces,
    podLabels: meta.labels,
    namespaceLabels,
  });
  return skip === undefined ? { verdict: 'needs-spec' } : { verdict: 'skipped', reason: skip };
}

/** The pod as the webhook would have received it on CREATE: no node, no status, no server-set metadata. */
export function asCreated(pod: PodObject): PodObject {
  const metadata = pod.metadata ?? {};
  const { nodeName: _nodeName, ...spec } = pod.spec ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(metadata.name === undefined ? {} : { name: metadata.name }),
      ...(metadata.generateName === undefined ? {} : { generateName: metadata.generateName }),
      ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }),
      ...(metadata.labels === undefined ? {} : { labels: metadata.labels }),
      ...(metadata.annotations === undefined ? {} : { annotations: metadata.annotations }),
      ...(metadata.ownerReferences === undefined ? {} : { ownerReferences: metadata.ownerReferences }),
    },
    spec: spec as NonNullable<PodObject['spec']>,
  };
}

/** The whole rule, for a full pod as stored. */
export function classifyStoredPod(pod: PodObject, namespaceLabels: Record<string, string>, config: InjectorConfig, context: AuditContext): PodVerdict {
  const meta = podMetadata(pod.metadata);
  const first = classifyMetadata(meta, namespaceLabels, config, context);
  if (first.verdict !== 'needs-spec') return first;
  const result = computeInjection(asCreated(pod), config, engineContext(meta.namespace, namespaceLabels, context));
  switch (result.decision.action) {
    case 'inject':
      return { verdict: 'missed' };
    case 'update':
      return { verdict: 'fine' };
    case 'skip':
      return { verdict: 'skipped', reason: result.decision.reason };
    case 'error':
      return { verdict: 'skipped', reason: 'engine-refused' };
  }
}

/** The pod's controller (the ownerReference with `controller: true`), or undefined for a bare pod. */
export function controllerOf(metadata: ObjectMeta | undefined): OwnerReference | undefined {
  return (metadata?.ownerReferences ?? []).find((ref) => ref.controller === true);
}
