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

/** RFC 6901's array index: `0`, or digits without a leading zero. A loop: it runs once per operation. */
function isArrayIndex(segment: string): boolean {
  const { length } = segment;
  if (length === 0 || (length > 1 && segment.charCodeAt(0) === 48)) return false;
  for (let i = 0; i < length; i++) {
    const code = segment.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

/** The index an operation may address in an array of this length (`-` appends), or undefined when out of range. */
function arrayIndex(segment: string, length: number, appendAllowed: boolean): number | undefined {
  if (segment === '-') return appendAllowed ? length : undefined;
  if (!isArrayIndex(segment)) return undefined;
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
 * The maps whose keys are the user's, unbounded (100,000 annotations fit in 3 MiB): extended without a copy. Not
 * other objects: an overlay's original becomes a prototype, which V8 makes slow to read, and the 100,000
 * containers that each gain `volumeMounts` would all become one.
 */
const USER_MAPS: ReadonlySet<string> = new Set(['/metadata/annotations', '/metadata/labels']);

/**
 * Applies the patch to a copy of the pod, judging it the way the API server does: every operation's parent path
 * must exist (an array index in range), or the patch "does not apply". Copy-on-write (see CopyOnWrite): the
 * original is never touched — a pod may hold 100,000 containers and the patch one operation for each, or 100,000
 * annotations and the patch two more. Operations apply in order, as RFC 6902 and the API server apply them;
 * values are inserted as they are. The patched pod is a view to read (it holds overlays), never to serialise.
 */
function applyToCopy(pod: PodObject, patch: readonly PatchOperation[]): { ok: true; pod: PodObject } | { ok: false; reason: string } {
  const copy = new CopyOnWrite(pod as Record<string, unknown>);
  for (const operation of patch) {
    const { path } = operation;
    if (!path.startsWith('/')) return { ok: false, reason: `invalid path ${path}` };
    const cut = path.lastIndexOf('/');
    const key = unescapeSegment(path.slice(cut + 1));
    const parentPath = path.slice(0, cut);
    const userMap = operation.op === 'add' && parentPath.startsWith('/metadata/') && USER_MAPS.has(parentPath);
    const parent = copy.nodeAt(parentPath, userMap ? key : undefined);
    if (parent === undefined) return { ok: false, reason: `doc is missing path ${path}` };
    const keepsPaths = operation.op === 'add' && (Array.isArray(parent) ? key === '-' || key === String(parent.length) : !hasOwn(parent, key));
    const refused = applyAt(parent, key, operation);
    if (refused !== undefined) return { ok: false, reason: refused };
    // Anything but a new member or an appended element can move or replace what a remembered path points to.
    if (!keepsPaths) copy.forgetPaths();
  }
  return { ok: true, pod: copy.root as PodObject };
}

/**
 * A view of the pod that copies what is written to. Objects and arrays on a written path are shallow-copied once;
 * an object that only gains members it did not have, when the caller allows it (see USER_MAPS), becomes an
 * overlay instead, an object whose prototype is the original: reads see both, and nothing is copied. An overlay
 * that is written to otherwise, or walked through, is turned into a real copy first.
 */
class CopyOnWrite {
  readonly root: JsonContainer;
  private readonly fresh = new Set<unknown>();
  /** Overlay → the original it extends. */
  private readonly overlays = new Map<unknown, Record<string, unknown>>();
  /** Consecutive operations share their path up to the last two segments (`/spec/containers`): walked once. */
  private rememberedPath: string | undefined;
  private rememberedNode: JsonContainer | undefined;

  constructor(pod: Record<string, unknown>) {
    this.root = this.writable(pod);
  }

  forgetPaths(): void {
    this.rememberedPath = this.rememberedNode = undefined;
  }

  /**
   * The writable node at `path` ('' is the root), or undefined when it does not exist. `addedKey`: the operation
   * only adds that member to the node, which may then be an overlay.
   */
  nodeAt(path: string, addedKey?: string): JsonContainer | undefined {
    if (path === '') return this.root;
    const cut = path.lastIndexOf('/');
    const above = path.slice(0, cut);
    let node: JsonContainer | undefined;
    if (above === this.rememberedPath) {
      node = this.rememberedNode;
    } else {
      node = this.root;
      for (let start = 1; node !== undefined && start <= cut; ) {
        const end = path.indexOf('/', start);
        node = this.child(node, path.slice(start, end));
        start = end + 1;
      }
      this.rememberedPath = above;
      this.rememberedNode = node;
    }
    return node === undefined ? undefined : this.child(node, path.slice(cut + 1), addedKey);
  }

  /** The child at one raw (escaped) segment, made writable and stored back when it had to be copied. */
  private child(node: JsonContainer, raw: string, addedKey?: string): JsonContainer | undefined {
    const segment = unescapeSegment(raw);
    let child: unknown;
    let index: number | undefined;
    if (Array.isArray(node)) {
      index = arrayIndex(segment, node.length, false);
      child = index === undefined ? undefined : node[index];
    } else {
      child = this.owns(node, segment) ? node[segment] : undefined;
    }
    if (!isContainer(child)) return undefined;
    const copy = this.writable(child, addedKey);
    if (copy !== child) {
      if (Array.isArray(node)) node[index!] = copy;
      else node[segment] = copy;
    }
    return copy;
  }

  /** An own member of the node, or of the original an overlay extends. */
  private owns(node: Record<string, unknown>, key: string): boolean {
    if (hasOwn(node, key)) return true;
    const original = this.overlays.get(node);
    return original !== undefined && hasOwn(original, key);
  }

  private writable(value: JsonContainer, addedKey?: string): JsonContainer {
    if (this.fresh.has(value)) return value;
    // Most patches make no overlay at all: no lookup then, for each of 100,000 containers.
    const extended = this.overlays.size === 0 ? undefined : this.overlays.get(value);
    const original = extended ?? value;
    if (addedKey !== undefined && !Array.isArray(original) && !hasOwn(original, addedKey)) {
      if (extended !== undefined) return value;
      const overlay = Object.create(original) as Record<string, unknown>;
      this.overlays.set(overlay, original);
      return overlay;
    }
    const copy = Array.isArray(original) ? original.slice() : copyObject(original);
    // An overlay's own members: what earlier operations added.
    if (extended !== undefined) for (const key of Object.keys(value)) setMember(copy as Record<string, unknown>, key, (value as Record<string, unknown>)[key]);
    this.fresh.add(copy);
    return copy;
  }
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
  else setMember(node, key, operation.value);
  return undefined;
}

/**
 * JSON's `__proto__` is a plain member; assigning it would set the prototype instead. (Assignment otherwise:
 * defining properties one by one would turn 100,000 copied containers into slow dictionary objects.)
 */
function setMember(node: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true });
  else node[key] = value;
}

/** Whether the patch applies to the pod and keeps every promise; the first broken one if not. */
export function preflight(
  pod: PodObject,
  patch: readonly PatchOperation[],
  expected: InjectionStatus,
): { ok: true } | { ok: false; reason: string } {
  const applied = applyToCopy(pod, patch);
  if (!applied.ok) return { ok: false, reason: `patch does not apply: ${applied.reason}` };
  const reason = brokenPromise(applied.pod, expected);
  return reason === undefined ? { ok: true } : { ok: false, reason };
}

function brokenPromise(pod: PodObject, expected: InjectionStatus): string | undefined {
  const spec = pod.spec;
  if (!spec) return 'patched pod has no spec';
  const containers = spec.containers ?? [];
  const initContainers = spec.initContainers ?? [];
  const skipped = new Set(expected.skipped.map((s) => s.container));
  const sidecars: { init: boolean; container: (typeof containers)[number] }[] = [];
  // One pass over each list: the sidecar, and every app container's mount. (Names need no check here: the engine
  // takes only pods with unique names, and the one container the patch adds is counted below.)
  for (const container of initContainers) {
    if (container.name === expected.sidecar) sidecars.push({ init: true, container });
  }
  let unmounted: string | undefined;
  for (const container of containers) {
    if (container.name === expected.sidecar) sidecars.push({ init: false, container });
    else if (unmounted === undefined && !skipped.has(container.name) && !mountsVolume(container, expected.volume.name)) {
      unmounted = container.name;
    }
  }
  if (sidecars.length !== 1) return `expected exactly one ${expected.sidecar} container, found ${sidecars.length}`;
  const sidecar = sidecars[0]!;
  if (expected.mode === 'native' && !(sidecar.init && sidecar.container.restartPolicy === 'Always')) {
    return 'native sidecar is not an init container with restartPolicy Always';
  }
  if (expected.mode === 'classic' && sidecar.init) return 'classic sidecar is not in spec.containers';
  const volumes = (spec.volumes ?? []).filter((v) => v.name === expected.volume.name);
  if (volumes.length !== 1) return `expected exactly one ${expected.volume.name} volume, found ${volumes.length}`;
  if (!mountsVolume(sidecar.container, expected.volume.name)) return 'sidecar does not mount the shared volume';
  if (unmounted !== undefined) return `container ${unmounted} does not mount the shared volume`;
  if (pod.metadata?.annotations?.[STATUS_ANNOTATION] !== serialiseStatus(expected)) return 'status annotation does not record what was done';
  return undefined;
}
