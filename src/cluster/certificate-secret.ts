/**
 * The self-managed certificate Secret: get-or-create and renew (`ensureCertificates`, over any `SecretStore`),
 * and the client-node adapter (`kubernetesSecretStore`).
 *
 * Replicas coordinate through the API server alone, no leader election: a create that finds the Secret already
 * there (409 AlreadyExists) and an update whose resourceVersion is stale (409 Conflict) both mean another replica
 * won; we read again and use theirs.
 */
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import {
  FORGE_GENERATORS,
  issueCertificates,
  planCertificates,
  secretFieldsFor,
  storedFromSecret,
  type CertificatePlan,
  type Generators,
  type ServingIdentity,
  type StoredCertificates,
} from '../tls/certificate-plan.js';
import { apiStatus } from './ca-bundle.js';

/** The Secret as read: its resourceVersion, data (base64-decoded) and annotations. */
export interface SecretSnapshot {
  resourceVersion: string;
  data: Record<string, string>;
  annotations: Record<string, string>;
}

/** Another writer got there first: the Secret already exists, or changed since it was read. */
export class SecretConflictError extends Error {}

export interface SecretStore {
  /** `namespace/name`, for logs. */
  readonly description: string;
  read(): Promise<SecretSnapshot | undefined>;
  /** Throws `SecretConflictError` when the Secret already exists. */
  create(stored: StoredCertificates): Promise<SecretSnapshot>;
  /** Writes our keys only, guarded by `previous.resourceVersion`; throws `SecretConflictError` when it is stale. */
  update(previous: SecretSnapshot, stored: StoredCertificates): Promise<SecretSnapshot>;
  /**
   * Calls `onChange` with the Secret now and after every change (undefined: it does not exist), until the returned
   * function is called. Errors are reported and the watch starts again.
   */
  watch(onChange: (secret: SecretSnapshot | undefined) => void, onError: (err: unknown) => void): () => void;
}

export interface EnsureOptions {
  identity: ServingIdentity;
  now?: () => Date;
  /** Whether every webhook entry's caBundle trusts this CA (asked only while a CA rotation waits for it). */
  caInBundle(caCertPem: string): Promise<boolean>;
  generate?: Generators;
  /** Reads and writes before giving up when every write loses a race. Default 5. */
  attempts?: number;
}

export interface EnsureOutcome {
  secret: SecretSnapshot;
  stored: StoredCertificates;
  /** kept: ours was fine; created / renewed: we wrote; adopted: another replica wrote, we took theirs. */
  action: 'kept' | 'created' | 'renewed' | 'adopted';
  /** Why we wrote. */
  reason?: string;
  /** The plan for what is now in the Secret (after a write: for what we wrote). */
  plan: CertificatePlan;
}

/** Reads the Secret and creates or renews it when the plan says so; resolves with what is in force. */
export async function ensureCertificates(store: SecretStore, options: EnsureOptions): Promise<EnsureOutcome> {
  const now = options.now ?? (() => new Date());
  const attempts = options.attempts ?? 5;
  let lostRace = false;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const secret = await store.read();
    const stored = secret === undefined ? undefined : storedFromSecret(secret.data, secret.annotations);
    const plan = await planWithBundle(stored, options, now());
    if (plan.action === 'keep' && secret !== undefined && stored !== undefined) {
      return { secret, stored, action: lostRace ? 'adopted' : 'kept', plan };
    }
    if (plan.action === 'keep') throw new Error('unreachable: nothing stored yet the plan keeps it');
    const next = issueCertificates(stored, plan, options.identity, now(), options.generate ?? FORGE_GENERATORS);
    try {
      const written = secret === undefined ? await store.create(next) : await store.update(secret, next);
      const writtenStored = storedFromSecret(written.data, written.annotations);
      return {
        secret: written,
        stored: writtenStored,
        action: secret === undefined ? 'created' : 'renewed',
        reason: plan.reason,
        plan: await planWithBundle(writtenStored, options, now()),
      };
    } catch (err) {
      if (!(err instanceof SecretConflictError)) throw err;
      lostRace = true;
    }
  }
  throw new Error(`Secret ${store.description} changed under every one of ${attempts} writes`);
}

async function planWithBundle(
  stored: StoredCertificates | undefined,
  options: EnsureOptions,
  now: Date,
): Promise<CertificatePlan> {
  const context = { identity: options.identity, now, caInBundle: false };
  const plan = planCertificates(stored, context);
  // Only a CA rotation waiting for the bundle needs the webhook configuration read.
  if (plan.action !== 'keep' || plan.waitingFor !== 'ca-bundle' || stored?.caCert === undefined) return plan;
  return planCertificates(stored, { ...context, caInBundle: await options.caInBundle(stored.caCert) });
}

/**
 * The merge patch that writes our keys and annotation (null deletes), leaving everything else on the Secret as it
 * is. Its resourceVersion makes it a conditional update: a stale one gets 409 Conflict.
 */
export function secretMergePatch(resourceVersion: string, stored: StoredCertificates): object {
  const fields = secretFieldsFor(stored);
  return {
    metadata: { resourceVersion, annotations: fields.annotations },
    data: Object.fromEntries(
      Object.entries(fields.data).map(([key, value]) => [key, value === null ? null : base64(value)]),
    ),
  };
}

/** The whole Secret for a create. */
export function secretForCreate(namespace: string, name: string, stored: StoredCertificates): V1Secret {
  const fields = secretFieldsFor(stored);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'sidecar-injector', 'app.kubernetes.io/managed-by': 'sidecar-injector' },
      annotations: withoutNulls(fields.annotations),
    },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(withoutNulls(fields.data)).map(([key, value]) => [key, base64(value)])),
  };
}

/** What we need of a Secret, from client-node's model or a watch event's raw JSON (same field names). */
export function secretSnapshot(secret: V1Secret): SecretSnapshot {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, 'base64').toString('utf8');
  return {
    resourceVersion: secret.metadata?.resourceVersion ?? '',
    data,
    annotations: { ...(secret.metadata?.annotations ?? {}) },
  };
}

export interface SecretStoreOptions {
  /** Server-side timeout of one watch request; the watch then starts again from where it was. Default 300. */
  watchTimeoutSeconds?: number;
  /** Backoff after a failed read or watch, doubling up to `maxBackoffMs`. Defaults 1 s and 30 s. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * The adapter over client-node (loaded here, on the self-managed path only). The watch is on one Secret, by
 * fieldSelector `metadata.name=<name>`, so RBAC limited to that name by resourceNames allows it.
 */
export async function kubernetesSecretStore(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  options: SecretStoreOptions = {},
): Promise<SecretStore> {
  const k8s = await import('@kubernetes/client-node');
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const description = `${namespace}/${name}`;

  const read = async (): Promise<SecretSnapshot | undefined> => {
    try {
      return secretSnapshot(await api.readNamespacedSecret({ name, namespace }));
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  };

  const watch = (onChange: (secret: SecretSnapshot | undefined) => void, onError: (err: unknown) => void): (() => void) =>
    watchSecret({ k8s, kubeConfig, namespace, name, description, read, options }, onChange, onError);

  return {
    description,
    read,
    async create(stored) {
      try {
        return secretSnapshot(await api.createNamespacedSecret({ namespace, body: secretForCreate(namespace, name, stored) }));
      } catch (err) {
        if (apiStatus(err) === 409) throw new SecretConflictError(`Secret ${description} already exists`);
        throw err;
      }
    },
    async update(previous, stored) {
      try {
        const body = secretMergePatch(previous.resourceVersion, stored);
        return secretSnapshot(await api.patchNamespacedSecret({ name, namespace, body }, mergePatch));
      } catch (err) {
        // 409: changed since read; 404: deleted since read. Either way: read again.
        const status = apiStatus(err);
        if (status === 409 || status === 404) throw new SecretConflictError(`Secret ${description} changed (${status})`);
        throw err;
      }
    },
    watch,
  };
}

interface SecretWatchTarget {
  k8s: typeof import('@kubernetes/client-node');
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  description: string;
  read: () => Promise<SecretSnapshot | undefined>;
  options: SecretStoreOptions;
}

interface WatchState {
  closed: boolean;
  controller?: AbortController | undefined;
  resourceVersion?: string | undefined;
}

/** One watch request from `state.resourceVersion`; resolves when it ends, with the error if it failed. */
function watchOnce(
  watcher: InstanceType<SecretWatchTarget['k8s']['Watch']>,
  target: SecretWatchTarget,
  state: WatchState,
  onChange: (secret: SecretSnapshot | undefined) => void,
): Promise<unknown> {
  return new Promise((resolve) => {
    const query = {
      fieldSelector: `metadata.name=${target.name}`,
      allowWatchBookmarks: true,
      timeoutSeconds: target.options.watchTimeoutSeconds ?? 300,
      ...(state.resourceVersion === undefined ? {} : { resourceVersion: state.resourceVersion }),
    };
    const onEvent = (type: string, object: unknown): void => {
      if (type === 'ERROR') {
        // 410 Gone: our resourceVersion is too old. Start over from a fresh read.
        state.resourceVersion = undefined;
        const status = object as { code?: number; message?: string } | undefined;
        resolve(
          status?.code === 410
            ? undefined
            : new Error(`watch of Secret ${target.description}: ${status?.code ?? ''} ${status?.message ?? 'error event'}`),
        );
        state.controller?.abort();
        return;
      }
      const secret = object as V1Secret;
      if (secret.metadata?.resourceVersion !== undefined) state.resourceVersion = secret.metadata.resourceVersion;
      if (type === 'BOOKMARK') return;
      onChange(type === 'DELETED' ? undefined : secretSnapshot(secret));
    };
    watcher.watch(`/api/v1/namespaces/${target.namespace}/secrets`, query, onEvent, (err: unknown) => resolve(err ?? undefined)).then(
      (started) => {
        state.controller = started;
        if (state.closed) started.abort();
      },
      (err: unknown) => resolve(err),
    );
  });
}

/** Reads, then watches from what was read; reads again after a 410 or an error, with backoff. Returns the stop. */
function watchSecret(
  target: SecretWatchTarget,
  onChange: (secret: SecretSnapshot | undefined) => void,
  onError: (err: unknown) => void,
): () => void {
  const watcher = new target.k8s.Watch(target.kubeConfig);
  const backoffMs = target.options.backoffMs ?? 1_000;
  const maxBackoffMs = target.options.maxBackoffMs ?? 30_000;
  const state: WatchState = { closed: false };
  let wake: (() => void) | undefined;
  let delay = backoffMs;

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const backOff = async (): Promise<void> => {
    await pause(delay);
    delay = Math.min(delay * 2, maxBackoffMs);
  };

  const loop = async (): Promise<void> => {
    while (!state.closed) {
      if (state.resourceVersion === undefined) {
        try {
          const current = await target.read();
          if (state.closed) return;
          state.resourceVersion = current?.resourceVersion;
          onChange(current);
        } catch (err) {
          if (state.closed) return;
          onError(err);
          await backOff();
          continue;
        }
      }
      const started = Date.now();
      const err = await watchOnce(watcher, target, state, onChange);
      if (state.closed) return;
      if (err !== undefined) {
        onError(err);
        state.resourceVersion = undefined;
      }
      // A watch that fails or ends at once must not turn into a busy loop against the API server.
      if (err !== undefined || Date.now() - started < 1_000) await backOff();
      else delay = backoffMs;
    }
  };
  void loop();
  return () => {
    state.closed = true;
    state.controller?.abort();
    wake?.();
  };
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function withoutNulls(record: Record<string, string | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(record)) if (value !== null) out[key] = value;
  return out;
}
