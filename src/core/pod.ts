/** Narrowing and read-only accessors over the raw pod JSON. */
import type { Container, PodObject, PodSpecWithResources } from './types.js';
import { isRecord } from './json.js';

export interface InjectablePod extends PodObject {
  spec: PodSpecWithResources & { containers: Container[] };
}

/**
 * The pod, narrowed, or what makes it no pod the engine can work on. A pod the engine can work on: an object with
 * `spec.containers` (named), and well-typed optional arrays and maps where the patch will touch them. Anything
 * else is not a pod the API server would send, and gets no patch.
 */
export function readPod(value: unknown): { ok: true; pod: InjectablePod } | { ok: false; problem: string } {
  const problem = podProblem(value);
  return problem === undefined ? { ok: true, pod: value as InjectablePod } : { ok: false, problem };
}

/**
 * An optional field left out. JSON `null` is absent too: the API server decodes it so (`annotations: null` becomes
 * no annotations), and manifests say it (`annotations:` with nothing under it, in YAML).
 */
function absent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

function what(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** `metadata.labels.app`, or `metadata.labels["app.kubernetes.io/name"]` where a dot would mislead. */
function field(parent: string, key: string): string {
  if (/^[A-Za-z_][\w-]*$/.test(key)) return `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key)}]`;
}

/**
 * Why `value` is not a pod the engine can work on, naming the field (`metadata.labels.app is not a string`), or
 * undefined. One pass over containers, mounts and volumes with one set of names: a pod may hold 100,000 of them.
 */
export function podProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return `the object is ${what(value)}, not a pod`;
  const spec = value.spec;
  if (!isRecord(spec)) return absent(spec) ? 'spec is missing' : `spec is ${what(spec)}, not an object`;
  if (spec.containers === undefined) return 'spec.containers is missing';
  if (!Array.isArray(spec.containers)) return `spec.containers is ${what(spec.containers)}, not a list`;
  if (spec.containers.length === 0) return 'spec.containers is empty';
  // Names identify containers and volumes in everything we add and record; the API server rejects duplicates.
  const names = new Set<string>();
  return (
    containersProblem('spec.containers', spec.containers, names) ??
    (absent(spec.initContainers) ? undefined : containersProblem('spec.initContainers', spec.initContainers, names)) ??
    (absent(spec.volumes) ? undefined : volumesProblem(spec.volumes)) ??
    metadataProblem(value.metadata)
  );
}

function containersProblem(path: string, list: unknown, names: Set<string>): string | undefined {
  if (!Array.isArray(list)) return `${path} is ${what(list)}, not a list`;
  for (let i = 0; i < list.length; i++) {
    const container: unknown = list[i];
    if (!isRecord(container)) return `${path}[${i}] is ${what(container)}, not an object`;
    if (typeof container.name !== 'string') return `${path}[${i}].name is not a string`;
    if (names.has(container.name)) return `container name "${container.name}" is used twice`;
    names.add(container.name);
    // The API server calls mutating webhooks before it validates the pod: malformed mounts can reach us. (The
    // field's name is spelled out only for a problem: building it for each of 100,000 containers costs.)
    if (listProblem(container.volumeMounts, 'mountPath') !== undefined) {
      return listProblem(container.volumeMounts, 'mountPath', `${path}[${i}].volumeMounts`);
    }
    if (listProblem(container.volumeDevices, 'devicePath') !== undefined) {
      return listProblem(container.volumeDevices, 'devicePath', `${path}[${i}].volumeDevices`);
    }
  }
  return undefined;
}

/** Absent, or a list of objects each with a string `name` and a string under `pathKey`. */
function listProblem(value: unknown, pathKey: 'mountPath' | 'devicePath', path = 'list'): string | undefined {
  if (absent(value)) return undefined;
  if (!Array.isArray(value)) return `${path} is ${what(value)}, not a list`;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isRecord(item)) return `${path}[${i}] is ${what(item)}, not an object`;
    if (typeof item.name !== 'string') return `${path}[${i}].name is not a string`;
    if (typeof item[pathKey] !== 'string') return `${path}[${i}].${pathKey} is not a string`;
  }
  return undefined;
}

function volumesProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return `spec.volumes is ${what(value)}, not a list`;
  const names = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const volume: unknown = value[i];
    if (!isRecord(volume)) return `spec.volumes[${i}] is ${what(volume)}, not an object`;
    if (typeof volume.name !== 'string') return `spec.volumes[${i}].name is not a string`;
    if (names.has(volume.name)) return `volume name "${volume.name}" is used twice`;
    names.add(volume.name);
  }
  return undefined;
}

function metadataProblem(metadata: unknown): string | undefined {
  if (absent(metadata)) return undefined;
  if (!isRecord(metadata)) return `metadata is ${what(metadata)}, not an object`;
  return stringMapProblem('metadata.annotations', metadata.annotations) ?? stringMapProblem('metadata.labels', metadata.labels);
}

/** Without listing the keys first (`Object.values`): a map may hold 100,000 annotations. */
function stringMapProblem(path: string, value: unknown): string | undefined {
  if (absent(value)) return undefined;
  if (!isRecord(value)) return `${path} is not a map of strings`;
  for (const key in value) {
    if (typeof value[key] !== 'string') return `${field(path, key)} is not a string`;
  }
  return undefined;
}

export function annotationsOf(pod: PodObject): Record<string, string> {
  return pod.metadata?.annotations ?? {};
}

export function labelsOf(pod: PodObject): Record<string, string> {
  return pod.metadata?.labels ?? {};
}

/**
 * The path as the kubelet resolves it (Go's `path.Clean`): repeated slashes collapsed, `.` dropped, `..` resolved
 * (never above the root), no trailing slash. `/pod-data/`, `//pod-data` and `/x/../pod-data/.` are one mount point.
 */
export function cleanPath(path: string): string {
  // Most paths are clean already: skip the split for them (this runs for every mount of every container).
  if (path.startsWith('/') && path.length > 1 && !path.endsWith('/') && !path.includes('//') && !path.includes('/.')) return path;
  const rooted = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') parts.push(part);
    else if (parts.length > 0 && parts.at(-1) !== '..') parts.pop();
    else if (!rooted) parts.push('..');
  }
  const joined = parts.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** The volume (or raw block device) a container already has at that path: a second mount there is invalid. */
export function mountAtPath(container: Container, mountPath: string): { name: string } | undefined {
  const wanted = cleanPath(mountPath);
  return (
    container.volumeMounts?.find((m) => cleanPath(m.mountPath) === wanted) ??
    container.volumeDevices?.find((d) => cleanPath(d.devicePath) === wanted)
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
  const mounts = container.volumeMounts;
  if (mounts === undefined || mounts === null) return false;
  for (const mount of mounts) if (mount.name === volumeName) return true;
  return false;
}

/** Human name for log lines and warnings: pods from controllers have only `generateName`. */
export function podDisplayName(pod: PodObject): string {
  return pod.metadata?.name ?? (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : '<unnamed>');
}
