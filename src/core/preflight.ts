/**
 * The pre-flight self-check: apply the patch to a copy of the pod and verify what we promise. The API server
 * rejects a pod whose patch does not apply even with `failurePolicy: Ignore`, so a patch that fails here is
 * never sent.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { STATUS_ANNOTATION } from './labels.js';
import { mountsVolume } from './pod.js';
import { serialiseStatus } from './status.js';
import type { InjectionStatus, PatchOperation, PodObject } from './types.js';

const { applyOperation } = fastJsonPatch;

function unescapeSegment(segment: string): string {
  return segment.indexOf('~') === -1 ? segment : segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

type JsonContainer = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is JsonContainer {
  return value !== null && typeof value === 'object';
}

/** The index an operation may address in an array of this length (`-` appends), or undefined when out of range. */
function arrayIndex(segment: string, length: number, appendAllowed: boolean): number | undefined {
  if (segment === '-') return appendAllowed ? length : undefined;
  if (!/^(0|[1-9]\d*)$/.test(segment)) return undefined;
  const index = Number(segment);
  return index < length || (appendAllowed && index === length) ? index : undefined;
}

/**
 * Prepares the pod for the patch the way the API server judges it: every operation's parent path must exist (an
 * array index in range), or the patch "does not apply". Every object or array on those paths is shallow-copied,
 * everything else is shared with the original, so the patch can then be applied in place without touching the
 * original — at a fraction of the cost of a deep copy of a large pod.
 */
function copyAlongPaths(pod: PodObject, patch: readonly PatchOperation[]): { ok: true; copy: PodObject } | { ok: false; reason: string } {
  const fresh = new Set<unknown>();
  const shallow = (value: JsonContainer): JsonContainer => {
    if (fresh.has(value)) return value;
    const copy = Array.isArray(value) ? [...value] : { ...value };
    fresh.add(copy);
    return copy;
  };
  const root = shallow(pod as Record<string, unknown>);
  for (const operation of patch) {
    const segments = operation.path.split('/');
    if (segments[0] !== '' || segments.length < 2) return { ok: false, reason: `invalid path ${operation.path}` };
    let node: JsonContainer = root;
    for (let i = 1; i < segments.length - 1; i++) {
      const segment = unescapeSegment(segments[i]!);
      let child: unknown;
      if (Array.isArray(node)) {
        const index = arrayIndex(segment, node.length, false);
        child = index === undefined ? undefined : node[index];
        if (!isContainer(child)) return { ok: false, reason: `doc is missing path ${operation.path}` };
        node[index!] = node = shallow(child);
      } else {
        child = Object.prototype.hasOwnProperty.call(node, segment) ? node[segment] : undefined;
        if (!isContainer(child)) return { ok: false, reason: `doc is missing path ${operation.path}` };
        node[segment] = node = shallow(child);
      }
    }
    const last = unescapeSegment(segments.at(-1)!);
    if (Array.isArray(node) && arrayIndex(last, node.length, operation.op === 'add') === undefined) {
      return { ok: false, reason: `index out of range in ${operation.path}` };
    }
    if (!Array.isArray(node) && operation.op !== 'add' && !Object.prototype.hasOwnProperty.call(node, last)) {
      return { ok: false, reason: `doc is missing path ${operation.path}` };
    }
  }
  return { ok: true, copy: root as PodObject };
}

/** Returns the patched pod, or the first broken promise. */
export function preflight(
  pod: PodObject,
  patch: readonly PatchOperation[],
  expected: InjectionStatus,
): { ok: true; pod: PodObject } | { ok: false; reason: string } {
  const prepared = copyAlongPaths(pod, patch);
  if (!prepared.ok) return { ok: false, reason: `patch does not apply: ${prepared.reason}` };
  const patched = prepared.copy;
  try {
    // Paths were checked above, as the API server checks them; fast-json-patch applies each operation in place.
    for (const operation of patch) applyOperation(patched, operation as Operation, false, true, true);
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
  if (pod.metadata?.annotations?.[STATUS_ANNOTATION] !== serialiseStatus(expected)) return 'status annotation does not record what was done';
  return undefined;
}
