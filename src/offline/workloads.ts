/**
 * Where pods live inside workload objects. A pod template has `metadata` and `spec` just like a pod, so the
 * engine's patch applies to it unchanged.
 */
import type { PodObject } from '../core/types.js';
import { isRecord } from '../core/json.js';

type JsonObject = Record<string, unknown>;

/** Path from the object to its pod template, by kind; `[]` for a Pod itself. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export const WORKLOAD_KINDS: readonly string[] = Object.keys(TEMPLATE_PATHS);

export interface PodSite {
  /** e.g. `Deployment web` or `List[2] Pod debug`. */
  label: string;
  namespace: string | undefined;
  pod: PodObject;
  replace(pod: PodObject): void;
}

function objectLabel(object: JsonObject): string {
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : typeof metadata.generateName === 'string' ? `${metadata.generateName}*` : '<unnamed>';
  return `${typeof object.kind === 'string' ? object.kind : '<no kind>'} ${name}`;
}

function namespaceOf(object: JsonObject): string | undefined {
  const metadata = isRecord(object.metadata) ? object.metadata : undefined;
  return typeof metadata?.namespace === 'string' ? metadata.namespace : undefined;
}

/** Every pod or pod template in the object (items of a `List` included); other kinds have none. */
export function podSites(object: unknown, prefix = ''): PodSite[] {
  if (!isRecord(object) || typeof object.kind !== 'string') return [];
  if (object.kind === 'List' || (object.kind.endsWith('List') && Array.isArray(object.items))) {
    const items = Array.isArray(object.items) ? object.items : [];
    return items.flatMap((item, index) => podSites(item, `${prefix}${object.kind as string}[${index}] `));
  }
  const path = TEMPLATE_PATHS[object.kind];
  if (path === undefined) return [];
  let parent: JsonObject | undefined;
  let key: string | undefined;
  let node: unknown = object;
  for (const segment of path) {
    if (!isRecord(node)) return [];
    parent = node;
    key = segment;
    node = node[segment];
  }
  if (!isRecord(node)) return [];
  const holder = parent;
  const holderKey = key;
  return [
    {
      label: `${prefix}${objectLabel(object)}`,
      namespace: namespaceOf(object),
      pod: node as PodObject,
      replace: (pod) => {
        if (holder && holderKey) holder[holderKey] = pod;
        else {
          for (const k of Object.keys(object)) delete object[k];
          Object.assign(object, pod);
        }
      },
    },
  ];
}
