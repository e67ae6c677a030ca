/**
 * The pre-flight self-check: apply the patch to a copy of the pod and verify what we promise. The API server
 * rejects a pod whose patch does not apply even with `failurePolicy: Ignore`, so a patch that fails here is
 * never sent.
 */
import { STATUS_ANNOTATION } from './labels.js';
import { mountsVolume } from './pod.js';
import { serialiseStatus } from './status.js';
import type { InjectionStatus, PatchOperation, PodObject } from './types.js';

function unescapeSegment(segment: string): string {
  return segment.indexOf('~') === -1 ? segment : segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

type JsonContainer = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is JsonContainer {
  return value !== null && typeof value === 'object';
}

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

/** The index an operation may address in an array of this length (`-` appends), or undefined when out of range. */
function arrayIndex(segment: string, length: number, appendAllowed: boolean): number | undefined {
  if (segment === '-') return appendAllowed ? length : undefined;
  if (!ARRAY_INDEX.test(segment)) return undefined;
  const index = Number(segment);
  return index < length || (appendAllowed && index === length) ? index : undefined;
}

/**
 * A shallow copy that stays fast to extend: V8 gives a spread copy of a parsed object a map outside the transition
 * tree, so adding `volumeMounts` to 100,000 such copies costs ~6× more than to `Object.assign` copies. Assign would
 * set the prototype from an own `__proto__` key, though: such (rare) objects are spread.
 */
function copyObject(value: Record<string, unknown>): Record<string, unknown> {
  return hasOwn(value, '__proto__') ? { ...value } : Object.assign({}, value);
}

function hasOwn(node: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(node, key);
}

/**
 * Applies the patch to a copy of the pod, judging it the way the API server does: every operation's parent path
 * must exist (an array index in range), or the patch "does not apply". Copy-on-write: every object or array on
 * those paths is shallow-copied once, everything else is shared with the original, which is never touched — a
 * pod may hold 100,000 containers and the patch one operation for each. Operations apply in order, as RFC 6902
 * and the API server apply them; values are inserted as they are.
 */
function applyToCopy(pod: PodObject, patch: readonly PatchOperation[]): { ok: true; pod: PodObject } | { ok: false; reason: string } {
  const fresh = new Set<unknown>();
  const writable = (value: JsonContainer): JsonContainer => {
    if (fresh.has(value)) return value;
    const copy = Array.isArray(value) ? value.slice() : copyObject(value);
    fresh.add(copy);
    return copy;
  };
  const root = writable(pod as Record<string, unknown>);
  for (const operation of patch) {
    const segments = operation.path.split('/');
    if (segments[0] !== '' || segments.length < 2) return { ok: false, reason: `invalid path ${operation.path}` };
    let node: JsonContainer = root;
    for (let i = 1; i < segments.length - 1; i++) {
      const segment = unescapeSegment(segments[i]!);
      if (Array.isArray(node)) {
        const index = arrayIndex(segment, node.length, false);
        const child = index === undefined ? undefined : node[index];
        if (!isContainer(child)) return { ok: false, reason: `doc is missing path ${operation.path}` };
        node[index!] = node = writable(child);
      } else {
        const child = hasOwn(node, segment) ? node[segment] : undefined;
        if (!isContainer(child)) return { ok: false, reason: `doc is missing path ${operation.path}` };
        node[segment] = node = writable(child);
      }
    }
    const refused = applyAt(node, unescapeSegment(segments.at(-1)!), operation);
    if (refused !== undefined) return { ok: false, reason: refused };
  }
  return { ok: true, pod: root as PodObject };
}

/** One RFC 6902 operation on its (already writable) parent; why it does not apply, if it does not. */
function applyAt(node: JsonContainer, key: string, operation: PatchOperation): string | undefined {
  if (Array.isArray(node)) {
    const index = arrayIndex(key, node.length, operation.op === 'add');
    if (index === undefined) return `index out of range in ${operation.path}`;
    if (operation.op === 'add') node.splice(index, 0, operation.value);
    else if (operation.op === 'replace') node[index] = operation.value;
    else node.splice(index, 1);
    return undefined;
  }
  if (operation.op !== 'add' && !hasOwn(node, key)) return `doc is missing path ${operation.path}`;
  if (operation.op === 'remove') delete node[key];
  // JSON's `__proto__` is a plain member; assigning it would set the prototype instead. (Assignment otherwise:
  // defining properties one by one would turn 100,000 copied containers into slow dictionary objects.)
  else if (key === '__proto__') Object.defineProperty(node, key, { value: operation.value, writable: true, enumerable: true, configurable: true });
  else node[key] = operation.value;
  return undefined;
}

/** Returns the patched pod, or the first broken promise. */
export function preflight(
  pod: PodObject,
  patch: readonly PatchOperation[],
  expected: InjectionStatus,
): { ok: true; pod: PodObject } | { ok: false; reason: string } {
  const applied = applyToCopy(pod, patch);
  if (!applied.ok) return { ok: false, reason: `patch does not apply: ${applied.reason}` };
  const reason = brokenPromise(applied.pod, expected);
  return reason === undefined ? { ok: true, pod: applied.pod } : { ok: false, reason };
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
