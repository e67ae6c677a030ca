/**
 * The pure half of the cluster facts: what the namespace and node watches keep of each object, how a Pod
 * Security label reads, which kubelet is the oldest, and the facts one admission gets. No client library, no
 * I/O: `cluster-facts.ts` feeds these from the informers.
 */
import type { ClusterFacts } from '../admission/respond.js';
import { POD_SECURITY_LEVELS, type PodSecurityLevel } from '../core/types.js';
import { parseMinorVersion, type MinorVersion } from '../core/versions.js';
import { isRecord } from '../core/json.js';

export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';

/**
 * The level Pod Security admission enforces for these namespace labels; undefined when the label is absent
 * (the cluster default applies: `podSecurity.defaultLevel`).
 *
 * An invalid value (`Restricted`, `""`, `strict`) is read as `restricted`, exactly as Pod Security admission
 * reads it (`api.PolicyToEvaluate`: "if labels cannot be parsed correctly, restricted … is used"). The API
 * server refuses such labels on namespaces it validates, but one set before Pod Security was enabled stays;
 * and `restricted` is also the one reading under which our sidecar can never make a pod inadmissible.
 */
export function enforceLevel(labels: Readonly<Record<string, string>> | undefined): PodSecurityLevel | undefined {
  const value = labels?.[POD_SECURITY_ENFORCE_LABEL];
  if (value === undefined) return undefined;
  return (POD_SECURITY_LEVELS as readonly string[]).includes(value) ? (value as PodSecurityLevel) : 'restricted';
}

/** `v1.33.1`, `v1.31.4-eks-1`, `v1.30.2+k3s1`, `1.33+` → `1.33`, the form the engine's context carries. */
export function minorVersionOf(text: string | undefined): string | undefined {
  const version = parseMinorVersion(text);
  return version === undefined ? undefined : `${version.major}.${version.minor}`;
}

function older(a: MinorVersion, b: MinorVersion): boolean {
  return a.major < b.major || (a.major === b.major && a.minor < b.minor);
}

/**
 * The oldest kubelet among the nodes, as `major.minor`; undefined when it cannot be known, and the engine then
 * picks a classic sidecar:
 * - zero nodes: a cluster without nodes gives no evidence about the kubelets that will run the pod (nodes may
 *   join later, or the watch shows a cluster being built), so nothing may be assumed;
 * - any node without a readable version (a Node object whose kubelet has not reported status yet): that
 *   node could be older than all the others.
 */
export function oldestKubeletVersion(versions: Iterable<string | undefined>): string | undefined {
  let oldest: MinorVersion | undefined;
  for (const text of versions) {
    const version = parseMinorVersion(text);
    if (version === undefined) return undefined;
    if (oldest === undefined || older(version, oldest)) oldest = version;
  }
  return oldest === undefined ? undefined : `${oldest.major}.${oldest.minor}`;
}

/** What one namespace contributes to an admission, computed once per watch event, not per request. */
export interface NamespaceFacts {
  labels: Record<string, string>;
  level: PodSecurityLevel | undefined;
}

export function namespaceFactsOf(labels: Record<string, string> | undefined): NamespaceFacts {
  const own = labels ?? {};
  return { labels: own, level: enforceLevel(own) };
}

export interface ClusterVersions {
  /** `major.minor` of the API server, when known. */
  apiServerVersion: string | undefined;
  /** `major.minor` of the oldest kubelet, when known. */
  minKubeletVersion: string | undefined;
}

/** The facts for one request: a handful of references, no copying (this runs for every admission). */
export function clusterFactsFrom(namespace: NamespaceFacts, versions: ClusterVersions): ClusterFacts {
  return {
    namespaceLabels: namespace.labels,
    podSecurityLevel: namespace.level,
    apiServerVersion: versions.apiServerVersion,
    minKubeletVersion: versions.minKubeletVersion,
  };
}

/**
 * The objects the watches keep: just what the facts need, plus the name and resourceVersion the informer
 * itself uses. A Node object carries its image list and conditions (tens of KiB each): keeping whole nodes
 * of a large cluster would cost the webhook far more memory than everything else it holds.
 */
export interface SlimNamespace {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
}

export interface SlimNode {
  metadata: { name: string; resourceVersion?: string };
  status: { nodeInfo: { kubeletVersion?: string } };
}

function metadataOf(object: unknown): Record<string, unknown> {
  return isRecord(object) && isRecord(object.metadata) ? object.metadata : {};
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringMap(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const map: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === 'string') map[key] = item;
  return map;
}

function slimMetadata(object: unknown): { name: string; resourceVersion?: string } {
  const metadata = metadataOf(object);
  const resourceVersion = stringOf(metadata.resourceVersion);
  return { name: stringOf(metadata.name) ?? '', ...(resourceVersion === undefined ? {} : { resourceVersion }) };
}

/** Accepts the watch's plain JSON and the list's client-library models alike (both read as plain objects). */
export function slimNamespace(namespace: unknown): SlimNamespace {
  const labels = stringMap(metadataOf(namespace).labels);
  return { metadata: { ...slimMetadata(namespace), ...(labels === undefined ? {} : { labels }) } };
}

export function slimNode(node: unknown): SlimNode {
  const status = isRecord(node) && isRecord(node.status) ? node.status : {};
  const kubeletVersion = isRecord(status.nodeInfo) ? stringOf(status.nodeInfo.kubeletVersion) : undefined;
  return {
    metadata: slimMetadata(node),
    status: { nodeInfo: kubeletVersion === undefined ? {} : { kubeletVersion } },
  };
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 60_000 };

/**
 * Delay before retry number `attempt` (0-based): doubling up to the cap, scaled into [½, 1] by `random`
 * (0 ≤ random < 1) so replicas that lost the API server together do not come back in step.
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(base * (0.5 + random / 2));
}

/** A client-library error as one log field: the HTTP status and the API server's own message, no headers. */
export function errorSummary(err: unknown): { message: string; code?: number } {
  if (!isRecord(err) && !(err instanceof Error)) return { message: String(err) };
  const record = err as Record<string, unknown>;
  const code = typeof record.code === 'number' ? record.code : typeof record.statusCode === 'number' ? record.statusCode : undefined;
  const body = record.body;
  let message: string | undefined;
  if (isRecord(body) && typeof body.message === 'string') message = body.message;
  else if (typeof body === 'string' && body.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (isRecord(parsed) && typeof parsed.message === 'string') message = parsed.message;
    } catch {
      message = body.slice(0, 200);
    }
  }
  if (message === undefined) {
    const text = err instanceof Error ? err.message : typeof record.message === 'string' ? record.message : String(err);
    // ApiException's message starts `HTTP-Code: 403\nMessage: …\nBody: …\nHeaders: …`: keep the first two lines.
    message = text
      .split('\n')
      .filter((line) => !line.startsWith('Body:') && !line.startsWith('Headers:'))
      .join(' ')
      .trim();
  }
  return code === undefined ? { message } : { message, code };
}
