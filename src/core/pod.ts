/** Narrowing and read-only accessors over the raw pod JSON. */
import type { Container, PodObject, PodSpecWithResources } from './types.js';

export interface InjectablePod extends PodObject {
  spec: PodSpecWithResources & { containers: Container[] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isContainerList(value: unknown): value is Container[] {
  return Array.isArray(value) && value.every((c) => isRecord(c) && typeof c.name === 'string');
}

/**
 * A pod the engine can work on: an object with `spec.containers` (named), and well-typed optional arrays and maps
 * where the patch will touch them. Anything else is not a pod the API server would send, and gets no patch.
 */
export function isInjectablePod(value: unknown): value is InjectablePod {
  if (!isRecord(value) || !isRecord(value.spec)) return false;
  const spec = value.spec;
  if (!isContainerList(spec.containers) || spec.containers.length === 0) return false;
  if (spec.initContainers !== undefined && !isContainerList(spec.initContainers)) return false;
  if (spec.volumes !== undefined && !(Array.isArray(spec.volumes) && spec.volumes.every(isRecord))) return false;
  if (spec.volumes !== undefined && !spec.volumes.every((v) => typeof v.name === 'string')) return false;
  // Names identify containers and volumes in everything we add and record; the API server rejects duplicates.
  const names = [...spec.containers, ...(spec.initContainers ?? [])].map((c) => c.name);
  if (new Set(names).size !== names.length) return false;
  const volumeNames = (spec.volumes ?? []).map((v) => v.name);
  if (new Set(volumeNames).size !== volumeNames.length) return false;
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    // The API server calls mutating webhooks before it validates the pod: malformed mounts can reach us.
    if (!isListOf(container.volumeMounts, (m) => typeof m.name === 'string' && typeof m.mountPath === 'string')) return false;
    if (!isListOf(container.volumeDevices, (d) => typeof d.name === 'string' && typeof d.devicePath === 'string')) return false;
  }
  const metadata = value.metadata;
  if (metadata !== undefined) {
    if (!isRecord(metadata)) return false;
    if (metadata.annotations !== undefined && !isStringMap(metadata.annotations)) return false;
    if (metadata.labels !== undefined && !isStringMap(metadata.labels)) return false;
  }
  return true;
}

/** Absent, or an array of objects that each pass the check. */
function isListOf(value: unknown, check: (item: Record<string, unknown>) => boolean): boolean {
  return value === undefined || (Array.isArray(value) && value.every((item) => isRecord(item) && check(item)));
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((v) => typeof v === 'string');
}

export function annotationsOf(pod: PodObject): Record<string, string> {
  return pod.metadata?.annotations ?? {};
}

export function labelsOf(pod: PodObject): Record<string, string> {
  return pod.metadata?.labels ?? {};
}

/** `/pod-data/` and `/pod-data` are the same mount point. */
export function normaliseMountPath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/** The volume (or raw block device) a container already has at that path: a second mount there is invalid. */
export function mountAtPath(container: Container, mountPath: string): { name: string } | undefined {
  const wanted = normaliseMountPath(mountPath);
  return (
    container.volumeMounts?.find((m) => normaliseMountPath(m.mountPath) === wanted) ??
    container.volumeDevices?.find((d) => normaliseMountPath(d.devicePath) === wanted)
  );
}

/**
 * Windows pods say so in `spec.os` (1.25+) or, in older manifests, only through the node selector; neither the
 * busybox sidecar nor process-namespace sharing exists there.
 */
export function isWindowsPod(pod: InjectablePod): boolean {
  return pod.spec.os?.name === 'windows' || pod.spec.nodeSelector?.['kubernetes.io/os'] === 'windows';
}

export function mountsVolume(container: Container, volumeName: string): boolean {
  return container.volumeMounts?.some((m) => m.name === volumeName) ?? false;
}

/** Human name for log lines and warnings: pods from controllers have only `generateName`. */
export function podDisplayName(pod: PodObject): string {
  return pod.metadata?.name ?? (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : '<unnamed>');
}
