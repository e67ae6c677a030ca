/**
 * One pass over the cluster's pods with the missed-sidecar rule (src/core/missed-sidecar.ts): every pod of every
 * enabled namespace, and every pod labelled `sidecar-injection=enabled` in a namespace without the label.
 *
 * Cheap by construction: pods are read as metadata only, page by page, which decides injected, opted-out and
 * excluded pods. Only pods that are selected and carry no status annotation need their spec (Windows, name clash,
 * run-to-completion): those are read in full, one by one when few, else by listing their namespace again in full.
 */
import type { Namespace, Pod } from 'kubernetes-types/core/v1.js';
import type { OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { KubeApi } from '../cluster/check-api.js';
import { SELECTION_LABEL } from '../core/labels.js';
import { classifyMetadata, classifyStoredPod, controllerOf, podMetadata, type AuditContext, type PodVerdict } from '../core/missed-sidecar.js';
import { excludedNamespaceList, namespaceSelected } from '../core/selection.js';
import type { InjectorConfig } from '../core/types.js';
import { eachPodPage, getObject, type ListFailure, type RequestCounter } from './list-pods.js';

/** Above this many pods waiting for their spec in one namespace, one full list beats a GET each. */
const GET_EACH_LIMIT = 5;

export interface ScanInput {
  api: KubeApi;
  /** Every namespace, with its labels. */
  namespaces: readonly Namespace[];
  config: InjectorConfig;
  context: AuditContext;
  /** `--namespace`: only this one. */
  namespace?: string;
  /** `--selector`: only pods matching this label selector. */
  selector?: string;
  pageSize?: number;
}

export interface MissedPod {
  namespace: string;
  name: string;
  owner?: OwnerReference;
  /** RFC 3339, as the API server wrote it. */
  created?: string;
}

export interface ScanResult {
  /** Pods looked at (metadata pass). */
  scanned: number;
  missed: MissedPod[];
  missedByNamespace: Record<string, number>;
  staleByNamespace: Record<string, number>;
  /** A few stale pods with what differs, for the report. */
  staleExamples: { namespace: string; name: string; differences: string[] }[];
  /** Legitimately skipped, by reason. */
  skipped: Record<string, number>;
  requests: number;
}

export type ScanOutcome = { ok: true; result: ScanResult } | ({ ok: false } & ListFailure);

const STALE_EXAMPLES = 5;

interface Pass {
  input: ScanInput;
  counter: RequestCounter;
  result: ScanResult;
  labelsOf: Map<string, Record<string, string>>;
  /** Namespace → names of pods whose spec is needed, with the selector that listed them. */
  pending: Map<string, { selector: string | undefined; names: Set<string> }>;
}

function nameOf(namespace: Namespace): string {
  return namespace.metadata?.name ?? '';
}

function joinSelectors(...parts: (string | undefined)[]): string | undefined {
  const present = parts.filter((p): p is string => p !== undefined && p !== '');
  return present.length === 0 ? undefined : present.join(',');
}

function record(pass: Pass, pod: Pod, namespace: string, verdict: PodVerdict): void {
  const { result } = pass;
  const name = pod.metadata?.name ?? '';
  if (verdict.verdict === 'missed') {
    const owner = controllerOf(pod.metadata);
    const created = pod.metadata?.creationTimestamp;
    result.missed.push({ namespace, name, ...(owner === undefined ? {} : { owner }), ...(created === undefined ? {} : { created }) });
    result.missedByNamespace[namespace] = (result.missedByNamespace[namespace] ?? 0) + 1;
  } else if (verdict.verdict === 'stale') {
    result.staleByNamespace[namespace] = (result.staleByNamespace[namespace] ?? 0) + 1;
    if (result.staleExamples.length < STALE_EXAMPLES) result.staleExamples.push({ namespace, name, differences: verdict.differences });
  } else if (verdict.verdict === 'skipped') {
    result.skipped[verdict.reason] = (result.skipped[verdict.reason] ?? 0) + 1;
  }
}

/** The metadata pass over one listing; `accept` filters out pods another listing covers. */
async function metadataPass(pass: Pass, namespace: string | undefined, selector: string | undefined, accept: (ns: string) => boolean): Promise<ListFailure | undefined> {
  const { input } = pass;
  return eachPodPage(
    input.api,
    { ...(namespace === undefined ? {} : { namespace }), ...(selector === undefined ? {} : { labelSelector: selector }), metadataOnly: true, ...(input.pageSize === undefined ? {} : { pageSize: input.pageSize }) },
    pass.counter,
    (items) => {
      for (const pod of items) {
        const ns = pod.metadata?.namespace ?? namespace ?? '';
        if (!accept(ns)) continue;
        pass.result.scanned += 1;
        const verdict = classifyMetadata(podMetadata(pod.metadata, ns), pass.labelsOf.get(ns) ?? {}, input.config, input.context);
        if (verdict.verdict !== 'needs-spec') {
          record(pass, pod, ns, verdict);
          continue;
        }
        const entry = pass.pending.get(ns) ?? { selector, names: new Set<string>() };
        entry.names.add(pod.metadata?.name ?? '');
        pass.pending.set(ns, entry);
      }
    },
  );
}

/** The spec pass: the pods the metadata could not decide, read in full. */
async function specPass(pass: Pass): Promise<ListFailure | undefined> {
  const { input } = pass;
  for (const [namespace, { selector, names }] of pass.pending) {
    const labels = pass.labelsOf.get(namespace) ?? {};
    const judge = (pod: Pod): void => record(pass, pod, namespace, classifyStoredPod(pod, labels, input.config, input.context));
    if (names.size <= GET_EACH_LIMIT) {
      for (const name of names) {
        const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
        const one = await getObject<Pod>(input.api, path, false, pass.counter);
        if ('error' in one) return one;
        if ('found' in one) judge(one.found);
      }
      continue;
    }
    const failure = await eachPodPage(
      input.api,
      { namespace, ...(selector === undefined ? {} : { labelSelector: selector }), metadataOnly: false, ...(input.pageSize === undefined ? {} : { pageSize: input.pageSize }) },
      pass.counter,
      (items) => {
        // Pods created since the metadata pass are left for the next run; deleted ones simply do not come back.
        for (const pod of items) if (names.has(pod.metadata?.name ?? '')) judge(pod);
      },
    );
    if (failure !== undefined) return failure;
  }
  return undefined;
}

export async function scanPods(input: ScanInput): Promise<ScanOutcome> {
  const pass: Pass = {
    input,
    counter: { requests: 0 },
    result: { scanned: 0, missed: [], missedByNamespace: {}, staleByNamespace: {}, staleExamples: [], skipped: {}, requests: 0 },
    labelsOf: new Map(input.namespaces.map((ns) => [nameOf(ns), ns.metadata?.labels ?? {}])),
    pending: new Map(),
  };
  const excluded = excludedNamespaceList(input.context.injectorNamespace, input.config.excludedNamespaces);
  const wanted = (ns: string): boolean => input.namespace === undefined || ns === input.namespace;
  const enabled = input.namespaces.map(nameOf).filter((ns) => wanted(ns) && namespaceSelected(excluded, ns, pass.labelsOf.get(ns) ?? {}));
  for (const ns of enabled.sort()) {
    const failure = await metadataPass(pass, ns, input.selector, () => true);
    if (failure !== undefined) return { ok: false, ...failure };
  }
  // Pod opt-in only counts in namespaces without the label; a label selector keeps this list short.
  const unlabelled = input.namespaces.some((ns) => wanted(nameOf(ns)) && ns.metadata?.labels?.[SELECTION_LABEL] === undefined && !excluded.includes(nameOf(ns)));
  if (unlabelled) {
    const optedIn = (ns: string): boolean => pass.labelsOf.get(ns)?.[SELECTION_LABEL] === undefined && !excluded.includes(ns) && wanted(ns);
    const failure = await metadataPass(pass, input.namespace, joinSelectors(`${SELECTION_LABEL}=enabled`, input.selector), optedIn);
    if (failure !== undefined) return { ok: false, ...failure };
  }
  const failure = await specPass(pass);
  if (failure !== undefined) return { ok: false, ...failure };
  pass.result.requests = pass.counter.requests;
  return { ok: true, result: pass.result };
}
