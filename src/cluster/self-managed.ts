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

export function runSelfManagedCertificates(options: SelfManagedOptions): SelfManagedCertificates {
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const resyncMs = options.resyncMs ?? 5 * 60_000;
  const jitterMs = options.jitterMs ?? 2_000;
  const retryMs = options.retryMs ?? 30_000;
  const source = `Secret ${options.store.description}`;
  const { log } = options;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  let lastBundle: string | undefined;
  let lastVersion = options.initial.secret.resourceVersion;
  // Counts Secret versions the watch delivered: a reconcile that saw one arrive while it ran holds an older read.
  let watchedVersions = 0;
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
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reconcile(), Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    timer.unref();
  };

  const reconcileOnce = async (): Promise<void> => {
    if (closed) return;
    const versionsAtStart = watchedVersions;
    let outcome: EnsureOutcome;
    try {
      outcome = await bootstrapCertificates(options);
    } catch (err) {
      log.warn({ source, err: errorLine(err), retryInMs: retryMs }, 'certificate Secret not reconciled: will retry');
      schedule(retryMs);
      return;
    }
    if (closed) return;
    if (outcome.action !== 'kept') {
      log.info({ source, action: outcome.action, reason: outcome.reason }, `certificate Secret ${outcome.action}`);
    }
    if (watchedVersions === versionsAtStart) {
      lastVersion = outcome.secret.resourceVersion;
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

  const stopWatch = options.store.watch(
    (secret) => {
      if (closed) return;
      if (secret === undefined) {
        log.warn({ source }, 'certificate Secret deleted: creating it again');
        lastVersion = '';
        watchedVersions += 1;
        schedule(random() * jitterMs);
        return;
      }
      if (secret.resourceVersion === lastVersion) return;
      lastVersion = secret.resourceVersion;
      watchedVersions += 1;
      // The new pair goes into force now; renewal checks and the caBundle follow after a jittered delay.
      apply(secret);
      schedule(random() * jitterMs);
    },
    (err) => log.warn({ source, err: errorLine(err) }, 'watch of the certificate Secret failed: restarting it'),
  );

  void reconcile();

  return {
    reconcile,
    close: () => {
      closed = true;
      clearTimeout(timer);
      stopWatch();
    },
  };
}

