/**
 * The pre-flight self-check: apply the patch to a copy of the pod and verify what we promise. The API server
 * rejects a pod whose patch does not apply even with `failurePolicy: Ignore`, so a patch that fails here is
 * never sent.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { STATUS_ANNOTATION } from './labels.js';
import { mountsVolume } from './pod.js';
import { parseStatus, isStatusError } from './status.js';
import type { InjectionStatus, PatchOperation, PodObject } from './types.js';

const { applyPatch } = fastJsonPatch;

function unescapeSegment(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * A copy of the pod in which every object or array on the path of an operation is fresh (shallow-copied), and
 * everything else is shared with the original. Applying the patch to it in place leaves the original untouched,
 * at a fraction of the cost of a deep copy of a large pod.
 */
function copyAlongPaths(pod: PodObject, patch: readonly PatchOperation[]): PodObject {
  const fresh = new Set<unknown>();
  const shallow = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object' || fresh.has(value)) return value;
    const copy = Array.isArray(value) ? [...(value as unknown[])] : { ...(value as Record<string, unknown>) };
    fresh.add(copy);
    return copy;
  };
  const root = shallow(pod) as Record<string, unknown>;
  for (const operation of patch) {
    const segments = operation.path.split('/').slice(1, -1).map(unescapeSegment);
    let node: Record<string, unknown> | unknown[] = root;
    for (const segment of segments) {
      const container = node as Record<string, unknown>;
      if (!Object.prototype.hasOwnProperty.call(container, segment)) break;
      const child = shallow(container[segment]);
      container[segment] = child;
      if (child === null || typeof child !== 'object') break;
      node = child as Record<string, unknown>;
    }
  }
  return root as PodObject;
}

/** Returns the patched pod, or the first broken promise. */
export function preflight(
  pod: PodObject,
  patch: readonly PatchOperation[],
  expected: InjectionStatus,
): { ok: true; pod: PodObject } | { ok: false; reason: string } {
  let patched: PodObject;
  try {
    // validate=true checks every path against the document, as the API server does.
    patched = applyPatch(copyAlongPaths(pod, patch), patch as Operation[], true, true).newDocument;
  } catch (error) {
    return { ok: false, reason: `patch does not apply: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
  const reason = brokenPromise(patched, expected);
  return reason === undefined ? { ok: true, pod: patched } : { ok: false, reason };
}

function brokenPromise(pod: PodObject, expected: InjectionStatus): string | undefined {
  const spec = pod.spec;
  if (!spec) return 'patched pod has no spec';
  const containers = spec.containers ?? [];
  const initContainers = spec.initContainers ?? [];
  const sidecars = [...containers, ...initContainers].filter((c) => c.name === expected.sidecar);
  if (sidecars.length !== 1) return `expected exactly one ${expected.sidecar} container, found ${sidecars.length}`;
  const sidecar = sidecars[0]!;
  if (expected.mode === 'native' && !(initContainers.includes(sidecar) && sidecar.restartPolicy === 'Always')) {
    return 'native sidecar is not an init container with restartPolicy Always';
  }
  if (expected.mode === 'classic' && !containers.includes(sidecar)) return 'classic sidecar is not in spec.containers';
  const volumes = (spec.volumes ?? []).filter((v) => v.name === expected.volume.name);
  if (volumes.length !== 1) return `expected exactly one ${expected.volume.name} volume, found ${volumes.length}`;
  if (!mountsVolume(sidecar, expected.volume.name)) return 'sidecar does not mount the shared volume';
  const skipped = new Set(expected.skipped.map((s) => s.container));
  for (const container of containers) {
    if (container === sidecar || skipped.has(container.name)) continue;
    if (!mountsVolume(container, expected.volume.name)) return `container ${container.name} does not mount the shared volume`;
  }
  const names = [...containers, ...initContainers].map((c) => c.name);
  if (new Set(names).size !== names.length) return 'container names are not unique';
  const recorded = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (recorded === undefined || isStatusError(parseStatus(recorded))) return 'status annotation missing or unreadable';
  return undefined;
}
