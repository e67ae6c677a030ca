/**
 * Pods read page by page (`limit`/`continue`), as metadata only (a PartialObjectMetadataList: no spec, no status)
 * or in full. A page is handed to the caller and dropped, so memory stays at one page whatever the cluster size.
 */
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { METADATA_ACCEPT, METADATA_LIST_ACCEPT, replyMessage, type KubeApi } from '../cluster/check-api.js';
import { errorLine } from '../error-line.js';

export const DEFAULT_PAGE_SIZE = 500;

/** Why pods could not be read; `forbidden` when RBAC said no (the report names the permission). */
export interface ListFailure {
  error: string;
  forbidden: boolean;
}

export interface PodQuery {
  /** Undefined: every namespace (`/api/v1/pods`). */
  namespace?: string;
  labelSelector?: string;
  metadataOnly: boolean;
  pageSize?: number;
}

/** Counts the requests made, for the figures `check` and the bench report. */
export interface RequestCounter {
  requests: number;
}

function podsPath(query: PodQuery, continueToken: string | undefined): string {
  const base = query.namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(query.namespace)}/pods`;
  const params = new URLSearchParams();
  params.set('limit', String(query.pageSize ?? DEFAULT_PAGE_SIZE));
  if (query.labelSelector !== undefined && query.labelSelector !== '') params.set('labelSelector', query.labelSelector);
  if (continueToken !== undefined) params.set('continue', continueToken);
  return `${base}?${params.toString()}`;
}

function where(query: PodQuery): string {
  return query.namespace === undefined ? 'in any namespace' : `in namespace ${query.namespace}`;
}

/** Calls `onPage` with each page's items, in order; a failure stops the listing. */
export async function eachPodPage(
  api: KubeApi,
  query: PodQuery,
  counter: RequestCounter,
  onPage: (items: readonly Pod[]) => void,
): Promise<ListFailure | undefined> {
  let continueToken: string | undefined;
  do {
    let reply;
    try {
      counter.requests += 1;
      reply = await api.request('GET', podsPath(query, continueToken), undefined, query.metadataOnly ? { accept: METADATA_LIST_ACCEPT } : {});
    } catch (err) {
      return { error: `cannot list pods ${where(query)}: ${errorLine(err)}`, forbidden: false };
    }
    if (reply.status !== 200) {
      // 410 Gone: the continue token outlived the API server's compaction window; a fresh run starts over.
      return { error: `cannot list pods ${where(query)}: ${replyMessage(reply)}`, forbidden: reply.status === 403 };
    }
    const body = reply.body as { items?: Pod[] | null; metadata?: { continue?: string } };
    onPage(body.items ?? []);
    continueToken = body.metadata?.continue || undefined;
  } while (continueToken !== undefined);
  return undefined;
}

export type OneObject<T> = { found: T } | { gone: true } | ListFailure;

/** One object by path (a pod in full, a ReplicaSet's metadata…); 404 is `gone`. */
export async function getObject<T>(api: KubeApi, path: string, metadataOnly: boolean, counter: RequestCounter): Promise<OneObject<T>> {
  try {
    counter.requests += 1;
    const reply = await api.request('GET', path, undefined, metadataOnly ? { accept: METADATA_ACCEPT } : {});
    if (reply.status === 200) return { found: reply.body as T };
    if (reply.status === 404) return { gone: true };
    return { error: `cannot read ${path}: ${replyMessage(reply)}`, forbidden: reply.status === 403 };
  } catch (err) {
    return { error: `cannot read ${path}: ${errorLine(err)}`, forbidden: false };
  }
}

export type { ObjectMeta };
