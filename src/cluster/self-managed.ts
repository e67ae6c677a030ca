/**
 * `serve --self-managed-certs`: the server keeps its own CA and serving certificate in a Secret.
 *
 *  - Before listening: `bootstrapCertificates` gets or creates the Secret (renewing it if due), so the server
 *    starts with a certificate and `/readyz` can never answer before one is in force.
 *  - While serving: `runSelfManagedCertificates` watches the Secret (every replica does) and puts each new serving
 *    pair in force through the certificate switch (src/tls/reload.ts); keeps every webhook entry's caBundle equal to
 *    the Secret's CA (+ the previous CA while one rotates); and renews on a timer armed for the next renewal time.
 *    Generating keys blocks the event loop for ~0.2 s per key: that happens at start-up and about twice a year.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  caBundleFor,
  servingPair,
  storedFromSecret,
  type Generators,
  type ServingIdentity,
} from '../tls/certificate-plan.js';
import type { CertificateLog, CertificateSwitch } from '../tls/reload.js';
import { bundleTrusts, kubernetesWebhookConfigurationApi, syncCaBundle, type WebhookConfigurationApi } from './ca-bundle.js';
import {
  ensureCertificates,
  kubernetesSecretStore,
  type EnsureOutcome,
  type SecretSnapshot,
  type SecretStore,
} from './certificate-secret.js';
import { errorLine } from '../error-line.js';

export interface SelfManagedDeps {
  store: SecretStore;
  webhooks: WebhookConfigurationApi;
  identity: ServingIdentity;
  now?: () => Date;
  generate?: Generators;
}

/** The cluster side of self-managed certificates, through client-node. */
export async function connectSelfManagedCertificates(options: {
  kubeConfig: KubeConfig;
  namespace: string;
  secretName: string;
  webhookConfigName: string;
  service: string;
}): Promise<SelfManagedDeps> {
  return {
    store: await kubernetesSecretStore(options.kubeConfig, options.namespace, options.secretName),
    webhooks: await kubernetesWebhookConfigurationApi(options.kubeConfig, options.webhookConfigName),
    identity: { service: options.service, namespace: options.namespace },
  };
}

/** Gets or creates (or renews) the Secret; resolves with what is in it. */
export function bootstrapCertificates(deps: SelfManagedDeps): Promise<EnsureOutcome> {
  return ensureCertificates(deps.store, {
    identity: deps.identity,
    caInBundle: async (ca) => bundleTrusts(await deps.webhooks.read(), ca),
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.generate === undefined ? {} : { generate: deps.generate }),
  });
}

export interface SelfManagedOptions extends SelfManagedDeps {
  /** The switch of the running server: every new serving pair from the Secret goes through it. */
  certificates: CertificateSwitch;
  /** What bootstrapCertificates returned. */
  initial: EnsureOutcome;
  log: CertificateLog;
  /** Look again at least this often, even with no renewal due (a wiped caBundle is repaired). Default 5 min. */
  resyncMs?: number;
  /** After a Secret change, wait a random delay up to this, so replicas do not all act at once. Default 2 s. */
  jitterMs?: number;
  /** After a failed reconcile. Default 30 s. */
  retryMs?: number;
  random?: () => number;
}

export interface SelfManagedCertificates {
  /** Runs one reconcile now (serialized with the timer's): renew if due, put the pair in force, sync caBundle. */
  reconcile(): Promise<void>;
  close(): void;
}

// setTimeout's limit (about 24.8 days); renewals are months apart, so a long wait is cut into resyncs anyway.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Puts the CA bundle into the webhook configuration: what is there now ('missing' without one), or undefined when that failed (logged). */
async function syncBundle(
  webhooks: WebhookConfigurationApi,
  bundle: string,
  lastBundle: string | undefined,
  log: CertificateLog,
  retryMs: number,
): Promise<string | undefined> {
  try {
    const synced = await syncCaBundle(webhooks, bundle);
    if (synced.result === 'patched') {
      log.info({ webhook: webhooks.description, entries: synced.changed }, 'caBundle updated');
    } else if (synced.result === 'missing' && lastBundle !== 'missing') {
      log.warn({ webhook: webhooks.description }, 'webhook configuration not found: caBundle not set');
    }
    return synced.result === 'missing' ? 'missing' : bundle;
  } catch (err) {
    log.warn({ webhook: webhooks.description, err: errorLine(err), retryInMs: retryMs }, 'caBundle not updated: will retry');
    return undefined;
  }
}

/**
 * When to look again. After a write the plan was made before the caBundle sync: look again soon, the next pass
 * settles. Writes that keep coming (two replicas configured differently would undo each other) back off.
 */
function nextReconcileMs(outcome: EnsureOutcome, consecutiveWrites: number, now: Date, limits: { resyncMs: number; retryMs: number }): number {
  if (consecutiveWrites > 0) return Math.min(1_000 * 2 ** (consecutiveWrites - 1), limits.retryMs);
  const next = outcome.plan.action === 'keep' ? outcome.plan.nextCheck.getTime() - now.getTime() : 0;
  return Math.min(next, limits.resyncMs);
}

/** What the watch and the reconcile loop share: a Secret version the watch saw makes an older read stale. */
interface WatchState {
  closed: boolean;
  lastVersion: string;
  /** Counts Secret versions the watch delivered: a reconcile that saw one arrive while it ran holds an older read. */
  watchedVersions: number;
}

interface ReconcileLoop {
  reconcile(): Promise<void>;
  /** The next reconcile in `delayMs` (replacing any planned one). */
  schedule(delayMs: number): void;
  /** Puts the pair a Secret holds in force (or says why it cannot). */
  apply(secret: SecretSnapshot): void;
  stop(): void;
}

/** Reconciles one at a time (get-or-create, renew, caBundle), then plans the next look. */
function reconcileLoop(options: SelfManagedOptions, state: WatchState, source: string): ReconcileLoop {
  const now = options.now ?? (() => new Date());
  const resyncMs = options.resyncMs ?? 5 * 60_000;
  const retryMs = options.retryMs ?? 30_000;
  const { log } = options;
  let timer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  let lastBundle: string | undefined;
  let consecutiveWrites = 0;

  const apply = (secret: SecretSnapshot): void => {
    const pair = servingPair(storedFromSecret(secret.data, secret.annotations));
    if (pair === undefined) {
      options.certificates.reject('the Secret holds no tls.crt and tls.key', source);
      return;
    }
    options.certificates.apply(pair, source);
  };

  const schedule = (delayMs: number): void => {
    if (state.closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reconcile(), Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    timer.unref();
  };

  const reconcileOnce = async (): Promise<void> => {
    if (state.closed) return;
    const versionsAtStart = state.watchedVersions;
    let outcome: EnsureOutcome;
    try {
      outcome = await bootstrapCertificates(options);
    } catch (err) {
      log.warn({ source, err: errorLine(err), retryInMs: retryMs }, 'certificate Secret not reconciled: will retry');
      schedule(retryMs);
      return;
    }
    if (state.closed) return;
    if (outcome.action !== 'kept') {
      log.info({ source, action: outcome.action, reason: outcome.reason }, `certificate Secret ${outcome.action}`);
    }
    if (state.watchedVersions === versionsAtStart) {
      state.lastVersion = outcome.secret.resourceVersion;
      apply(outcome.secret);
    }

    const synced = await syncBundle(options.webhooks, caBundleFor(outcome.stored, now()), lastBundle, log, retryMs);
    if (synced === undefined) {
      schedule(retryMs);
      return;
    }
    lastBundle = synced;

    const wrote = outcome.action === 'created' || outcome.action === 'renewed';
    consecutiveWrites = wrote ? consecutiveWrites + 1 : 0;
    schedule(nextReconcileMs(outcome, consecutiveWrites, now(), { resyncMs, retryMs }));
  };

  const reconcile = (): Promise<void> => {
    chain = chain.then(reconcileOnce, reconcileOnce);
    return chain;
  };

  return { reconcile, schedule, apply, stop: () => clearTimeout(timer) };
}

export function runSelfManagedCertificates(options: SelfManagedOptions): SelfManagedCertificates {
  const random = options.random ?? Math.random;
  const jitterMs = options.jitterMs ?? 2_000;
  const source = `Secret ${options.store.description}`;
  const { log } = options;
  const state: WatchState = { closed: false, lastVersion: options.initial.secret.resourceVersion, watchedVersions: 0 };
  const loop = reconcileLoop(options, state, source);

  const stopWatch = options.store.watch(
    (secret) => {
      if (state.closed) return;
      if (secret === undefined) {
        log.warn({ source }, 'certificate Secret deleted: creating it again');
        state.lastVersion = '';
        state.watchedVersions += 1;
        loop.schedule(random() * jitterMs);
        return;
      }
      if (secret.resourceVersion === state.lastVersion) return;
      state.lastVersion = secret.resourceVersion;
      state.watchedVersions += 1;
      // The new pair goes into force now; renewal checks and the caBundle follow after a jittered delay.
      loop.apply(secret);
      loop.schedule(random() * jitterMs);
    },
    (err) => log.warn({ source, err: errorLine(err) }, 'watch of the certificate Secret failed: restarting it'),
  );

  void loop.reconcile();

  return {
    reconcile: loop.reconcile,
    close: () => {
      state.closed = true;
      loop.stop();
      stopWatch();
    },
  };
}

