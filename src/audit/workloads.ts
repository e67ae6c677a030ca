/**
 * Missed pods grouped by the workload that owns them (a Deployment through its ReplicaSet, a CronJob through its
 * Job, a StatefulSet, a DaemonSet, or the bare pod), and how each is repaired: `kubectl rollout restart` for the
 * kinds that have a rollout, a reason for the rest (nothing here ever deletes a pod).
 */
import type { ObjectMeta, OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { KubeApi } from '../cluster/check-api.js';
import { controllerOf } from '../core/missed-sidecar.js';
import { getObject, type RequestCounter } from './list-pods.js';
import type { MissedPod } from './scan.js';

/** Kinds `kubectl rollout restart` handles, with their API path segment. */
export const RESTARTABLE = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' } as const;
export type RestartableKind = keyof typeof RESTARTABLE;

export interface Workload {
  namespace: string;
  kind: string;
  name: string;
  /** Missed pods of this workload. */
  pods: number;
  /** Names of those pods (a few, for the report). */
  podNames: string[];
  /** Creation time of the oldest missed pod. */
  oldest?: string;
  /** The command that repairs it, for the kinds `repair` restarts. */
  fix?: string;
  /** Why `repair` leaves it alone. */
  reason?: string;
}

const POD_NAMES = 5;

export function isRestartable(kind: string): kind is RestartableKind {
  return Object.hasOwn(RESTARTABLE, kind);
}

export function restartCommand(kind: RestartableKind, name: string, namespace: string): string {
  return `kubectl rollout restart ${kind.toLowerCase()}/${name} -n ${namespace}`;
}

/** Why a workload of this kind is not restarted. */
export function notRestartedBecause(kind: string, name: string, namespace: string): string {
  switch (kind) {
    case 'Pod':
      return `a bare pod has no controller to recreate it, and repair never deletes pods: recreate it yourself (kubectl delete pod ${name} -n ${namespace}, then create it again)`;
    case 'Job':
      return 'a Job\'s pods run to completion and repair never deletes them: the Job\'s next pods (a retry, a rerun) are injected';
    case 'CronJob':
      return 'the CronJob\'s next run is injected; repair never deletes the pods of a running Job';
    case 'ReplicaSet':
      return 'a ReplicaSet without a Deployment has no rollout to restart: scale it to 0 and back, or delete its pods';
    default:
      return `repair cannot restart a ${kind}: restart it by its own means (its controller decides how)`;
  }
}

/** Where to read the owner of an intermediate controller (ReplicaSet → Deployment, Job → CronJob). */
function parentPath(ref: OwnerReference, namespace: string): string | undefined {
  const ns = encodeURIComponent(namespace);
  const name = encodeURIComponent(ref.name);
  if (ref.kind === 'ReplicaSet' && ref.apiVersion.startsWith('apps/')) return `/apis/apps/v1/namespaces/${ns}/replicasets/${name}`;
  if (ref.kind === 'Job' && ref.apiVersion.startsWith('batch/')) return `/apis/batch/v1/namespaces/${ns}/jobs/${name}`;
  return undefined;
}

interface Resolved {
  kind: string;
  name: string;
  /** Set when the owner chain could not be read: the workload is shown as what is known. */
  problem?: string;
}

async function resolveOwner(api: KubeApi, pod: MissedPod, counter: RequestCounter, cache: Map<string, Resolved>): Promise<Resolved> {
  const ref = pod.owner;
  if (ref === undefined) return { kind: 'Pod', name: pod.name };
  const path = parentPath(ref, pod.namespace);
  if (path === undefined) return { kind: ref.kind, name: ref.name };
  const cached = cache.get(path);
  if (cached !== undefined) return cached;
  const one = await getObject<{ metadata?: ObjectMeta }>(api, path, true, counter);
  let resolved: Resolved;
  if ('found' in one) {
    const parent = controllerOf(one.found.metadata);
    resolved = parent === undefined ? { kind: ref.kind, name: ref.name } : { kind: parent.kind, name: parent.name };
  } else if ('gone' in one) {
    resolved = { kind: ref.kind, name: ref.name, problem: `its ${ref.kind} ${ref.name} no longer exists` };
  } else {
    resolved = { kind: ref.kind, name: ref.name, problem: one.error };
  }
  cache.set(path, resolved);
  return resolved;
}

/** Groups missed pods by owning workload: one metadata read per ReplicaSet or Job, sorted by namespace, kind, name. */
export async function groupByWorkload(api: KubeApi, missed: readonly MissedPod[], counter: RequestCounter): Promise<Workload[]> {
  const cache = new Map<string, Resolved>();
  const groups = new Map<string, Workload>();
  for (const pod of missed) {
    const owner = await resolveOwner(api, pod, counter, cache);
    const key = `${pod.namespace}/${owner.kind}/${owner.name}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { namespace: pod.namespace, kind: owner.kind, name: owner.name, pods: 0, podNames: [] };
      if (owner.problem !== undefined) group.reason = `the owner could not be resolved: ${owner.problem}`;
      else if (isRestartable(owner.kind)) group.fix = restartCommand(owner.kind, owner.name, pod.namespace);
      else group.reason = notRestartedBecause(owner.kind, owner.name, pod.namespace);
      groups.set(key, group);
    }
    group.pods += 1;
    if (group.podNames.length < POD_NAMES) group.podNames.push(pod.name);
    if (pod.created !== undefined && (group.oldest === undefined || pod.created < group.oldest)) group.oldest = pod.created;
  }
  return [...groups.values()].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name),
  );
}

/** `3d`, `5h`, `12m`, `40s`: kubectl's way of showing an age. */
export function age(since: string | undefined, now: Date): string {
  if (since === undefined) return 'unknown age';
  const seconds = Math.max(0, Math.floor((now.getTime() - Date.parse(since)) / 1000));
  if (seconds >= 2 * 86400) return `${Math.floor(seconds / 86400)}d`;
  if (seconds >= 2 * 3600) return `${Math.floor(seconds / 3600)}h`;
  if (seconds >= 120) return `${Math.floor(seconds / 60)}m`;
  return `${seconds}s`;
}
