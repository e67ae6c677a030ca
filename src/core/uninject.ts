/**
 * Removes exactly what the status annotation records, and nothing else: a volume or `shareProcessNamespace` that
 * was there before injection stays. Arrays and maps the injection created and left empty are removed again.
 */
import { DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION } from './labels.js';
import { cleanPath, readPod } from './pod.js';
import { isStatusError, parseStatus } from './status.js';
import type { Container, PodObject } from './types.js';

export type UninjectResult =
  | { outcome: 'removed'; pod: PodObject }
  | { outcome: 'not-injected'; pod: PodObject }
  | { outcome: 'error'; reason: string };

function withoutOurMount(container: Container, volumeName: string, mountPath: string): Container {
  const mounts = (container.volumeMounts ?? []).filter(
    (m) => !(m.name === volumeName && cleanPath(m.mountPath) === cleanPath(mountPath)),
  );
  const { volumeMounts: _dropped, ...rest } = container;
  return mounts.length > 0 ? { ...rest, volumeMounts: mounts } : rest;
}

/**
 * The pod without what its status records. The input is never changed; the result shares with it every part it
 * does not change (no deep copy: a pod can hold 3 MiB of containers).
 */
export function uninjectPod(object: unknown): UninjectResult {
  const read = readPod(object);
  if (!read.ok) return { outcome: 'error', reason: `not a pod the injector can read: ${read.problem}` };
  const input = read.pod;
  const statusText = input.metadata?.annotations?.[STATUS_ANNOTATION];
  if (statusText === undefined) return { outcome: 'not-injected', pod: input };
  const status = parseStatus(statusText);
  if (isStatusError(status)) return { outcome: 'error', reason: status.error };

  const spec = { ...input.spec };
  const mounted = new Set(status.mounted);
  if (status.mode === 'native') {
    const remaining = (spec.initContainers ?? []).filter((c) => c.name !== status.sidecar);
    if (remaining.length > 0) spec.initContainers = remaining;
    else delete spec.initContainers;
  }
  spec.containers = spec.containers
    .filter((c) => status.mode === 'native' || c.name !== status.sidecar)
    .map((c) => (mounted.has(c.name) ? withoutOurMount(c, status.volume.name, status.mountPath) : c));
  if (status.volume.created) {
    const volumes = (spec.volumes ?? []).filter((v) => v.name !== status.volume.name);
    if (volumes.length > 0) spec.volumes = volumes;
    else delete spec.volumes;
  }
  if (status.shareProcessNamespace) delete spec.shareProcessNamespace;

  const annotations = { ...input.metadata?.annotations };
  delete annotations[STATUS_ANNOTATION];
  if (status.defaultContainer) delete annotations[DEFAULT_CONTAINER_ANNOTATION];
  const metadata = { ...input.metadata };
  if (hasKeys(annotations)) metadata.annotations = annotations;
  else delete metadata.annotations;
  const pod: PodObject = { ...input, spec };
  // Injection creates `metadata` on a bare pod template; take it away again when nothing else is in it.
  if (hasKeys(metadata)) pod.metadata = metadata;
  else delete pod.metadata;
  return { outcome: 'removed', pod };
}

/** Without listing every key: a map can hold 100,000 annotations. */
function hasKeys(value: object): boolean {
  for (const _key in value) return true;
  return false;
}
