/**
 * Self-managed certificates through the real client-node adapters, against a fake API server with the real
 * API server's conflict rules (test/cluster/fake-apiserver.ts): get-or-create races, renewal races
 * guarded by resourceVersion, the caBundle patch, and the controller every replica runs (watch → swap, timer →
 * renew, a CA rotation in two steps).
 */
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pemCertificates, syncCaBundle, kubernetesWebhookConfigurationApi } from '../../src/cluster/ca-bundle.js';
import {
  SecretConflictError,
  ensureCertificates,
  kubernetesSecretStore,
  secretMergePatch,
} from '../../src/cluster/certificate-secret.js';
import {
  bootstrapCertificates,
  connectSelfManagedCertificates,
  runSelfManagedCertificates,
  type SelfManagedCertificates,
  type SelfManagedDeps,
} from '../../src/cluster/self-managed.js';
import { CA_PROPAGATION_GRACE_MS, CA_ROTATED_AT_ANNOTATION } from '../../src/tls/certificate-plan.js';
import { renewalTime } from '../../src/tls/certificates.js';
import { createCertificateSwitch, type CertificateLog, type CertificateSwitch } from '../../src/tls/reload.js';
import { FakeApiServer } from './fake-apiserver.js';

const NAMESPACE = 'sidecar-injector';
const SECRET = 'sidecar-injector-tls';
const WEBHOOK = 'sidecar-injector';
const YEAR = 365 * 24 * 3600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function webhookConfiguration(caBundles: (string | undefined)[]): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK, resourceVersion: '1' },
    webhooks: caBundles.map((caBundle, i) => ({
      name: `entry${i}.sidecar-injector.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: {
        service: { name: 'sidecar-injector', namespace: NAMESPACE, path: '/mutate', port: 443 },
        ...(caBundle === undefined ? {} : { caBundle }),
      },
    })),
  };
}

function bundlesOf(fake: FakeApiServer): string[][] {
  const webhooks = (fake.webhookConfiguration?.webhooks ?? []) as { clientConfig: { caBundle?: string } }[];
  return webhooks.map((w) => pemCertificates(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')));
}

const body = (pem: string | undefined) => pemCertificates(pem ?? '')[0];

class LogRecorder implements CertificateLog {
  readonly lines: { level: 'info' | 'warn'; msg: string; fields: object }[] = [];
  info(fields: object, msg: string): void {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(fields: object, msg: string): void {
    this.lines.push({ level: 'warn', msg, fields });
  }
  messages(level?: 'info' | 'warn'): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.msg);
  }
}

let fake: FakeApiServer;
beforeEach(async () => {
  fake = new FakeApiServer();
  await fake.start();
});
afterEach(async () => {
  await fake.stop();
});

async function deps(now?: () => Date): Promise<SelfManagedDeps> {
  const connected = await connectSelfManagedCertificates({
    kubeConfig: fake.kubeConfig(),
    namespace: NAMESPACE,
    secretName: SECRET,
    webhookConfigName: WEBHOOK,
    service: 'sidecar-injector',
  });
  return now === undefined ? connected : { ...connected, now };
}

describe('get-or-create and renewal races', () => {
  it('two replicas starting at once end with one Secret, and both use it', async () => {
    const [a, b] = [await deps(), await deps()];
    const outcomes = await Promise.all([bootstrapCertificates(a), bootstrapCertificates(b)]);
    expect(outcomes.map((o) => o.action).sort()).toEqual(['adopted', 'created']);
    expect(outcomes[0]?.stored.tlsCert).toBe(outcomes[1]?.stored.tlsCert);
    expect(fake.secrets.size).toBe(1);
    expect(fake.count(`POST /api/v1/namespaces/${NAMESPACE}/secrets`)).toBe(2);

    const secret = fake.secrets.get(`${NAMESPACE}/${SECRET}`) as { type: string; metadata: { labels: object } };
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'sidecar-injector' });
    const data = fake.secretData(NAMESPACE, SECRET) ?? {};
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const cert = new X509Certificate(data['tls.crt'] ?? '');
    expect(cert.checkIssued(new X509Certificate(data['ca.crt'] ?? ''))).toBe(true);
    expect(cert.checkHost('sidecar-injector.sidecar-injector.svc', { subject: 'never' })).toBe('sidecar-injector.sidecar-injector.svc');
  });

  it('keeps a good Secret as it is, and renews a due one once even when two replicas try', async () => {
    const first = await bootstrapCertificates(await deps());
    expect((await bootstrapCertificates(await deps())).action).toBe('kept');
    expect(fake.count('PATCH')).toBe(0);

    const due = renewalTime(first.stored.tlsCert ?? '');
    const late = () => due;
    const outcomes = await Promise.all([bootstrapCertificates(await deps(late)), bootstrapCertificates(await deps(late))]);
    expect(outcomes.map((o) => o.action).sort()).toEqual(['adopted', 'renewed']);
    // Both wrote with the resourceVersion they read, as a merge patch: the second got 409 and took the first's.
    const patches = fake.requests.filter((r) => r.startsWith('PATCH'));
    expect(patches).toHaveLength(2);
    expect(patches.every((r) => r.endsWith('application/merge-patch+json'))).toBe(true);
    const data = fake.secretData(NAMESPACE, SECRET) ?? {};
    expect(data['tls.crt']).not.toBe(first.stored.tlsCert);
    expect(data['tls.crt']).toBe(outcomes[0]?.stored.tlsCert);
    expect(data['ca.crt']).toBe(first.stored.caCert);
  });

  it('leaves keys and labels it does not own alone, and deletes only its own stale keys', async () => {
    fake.putSecret(NAMESPACE, SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { labels: { team: 'platform' }, annotations: { note: 'keep me', [CA_ROTATED_AT_ANNOTATION]: 'x' } },
      type: 'Opaque',
      data: { extra: Buffer.from('mine').toString('base64'), 'ca-previous.crt': Buffer.from('junk').toString('base64') },
    });
    const outcome = await bootstrapCertificates(await deps());
    expect(outcome.action).toBe('renewed');
    const secret = fake.secrets.get(`${NAMESPACE}/${SECRET}`) as { type: string; metadata: { labels: object; annotations: object } };
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata.labels).toEqual({ team: 'platform' });
    expect(secret.metadata.annotations).toEqual({ note: 'keep me' });
    const data = fake.secretData(NAMESPACE, SECRET) ?? {};
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'ca.key', 'extra', 'tls.crt', 'tls.key']);
  });

  it('builds a merge patch with the resourceVersion and nulls for what goes away', () => {
    expect(secretMergePatch('42', { tlsCert: 'c', tlsKey: 'k' })).toEqual({
      metadata: { resourceVersion: '42', annotations: { [CA_ROTATED_AT_ANNOTATION]: null } },
      data: {
        'tls.crt': Buffer.from('c').toString('base64'),
        'tls.key': Buffer.from('k').toString('base64'),
        'ca.crt': null,
        'ca.key': null,
        'ca-previous.crt': null,
      },
    });
  });

  it('gives up with a clear error when every write loses', async () => {
    const store = await kubernetesSecretStore(fake.kubeConfig(), NAMESPACE, SECRET);
    const racing = {
      ...store,
      create: async () => {
        throw new SecretConflictError('lost');
      },
    };
    await expect(
      ensureCertificates(racing, { identity: { service: 'sidecar-injector', namespace: NAMESPACE }, caInBundle: async () => false, attempts: 2 }),
    ).rejects.toThrow(`Secret ${NAMESPACE}/${SECRET} changed under every one of 2 writes`);
  });
});

describe('caBundle', () => {
  it('patches every entry that differs, and writes nothing when all match', async () => {
    const api = await kubernetesWebhookConfigurationApi(fake.kubeConfig(), WEBHOOK);
    expect(await syncCaBundle(api, 'x')).toEqual({ result: 'missing' });
    const { stored } = await bootstrapCertificates(await deps());
    const ca = stored.caCert ?? '';
    fake.webhookConfiguration = webhookConfiguration([undefined, Buffer.from(ca).toString('base64'), Buffer.from('stale').toString('base64')]);

    expect(await syncCaBundle(api, ca)).toEqual({
      result: 'patched',
      entries: 3,
      changed: ['entry0.sidecar-injector.io', 'entry2.sidecar-injector.io'],
    });
    expect(bundlesOf(fake)).toEqual([[body(ca)], [body(ca)], [body(ca)]]);
    expect(fake.requests.filter((r) => r.startsWith('PATCH')).every((r) => r.endsWith('application/json-patch+json'))).toBe(true);
    expect(await syncCaBundle(api, ca)).toEqual({ result: 'unchanged', entries: 3 });
    expect(fake.count('PATCH')).toBe(1);
  });

  it('reads again when the entries moved between its read and its patch', async () => {
    const { stored } = await bootstrapCertificates(await deps());
    const ca = stored.caCert ?? '';
    fake.webhookConfiguration = webhookConfiguration([undefined, undefined]);
    const api = await kubernetesWebhookConfigurationApi(fake.kubeConfig(), WEBHOOK);
    let reads = 0;
    const shifting = {
      ...api,
      read: async () => {
        const entries = await api.read();
        // After the first read, someone reorders the entries: the patch's `test` fails, the API says 422.
        if (reads++ === 0) {
          const hooks = fake.webhookConfiguration?.webhooks as unknown[];
          fake.webhookConfiguration = { ...fake.webhookConfiguration, webhooks: [...hooks].reverse() };
        }
        return entries;
      },
    };
    expect(await syncCaBundle(shifting, ca)).toMatchObject({ result: 'patched' });
    expect(reads).toBe(2);
    expect(bundlesOf(fake)).toEqual([[body(ca)], [body(ca)]]);
  });
});

describe('the controller every replica runs', () => {
  const running: SelfManagedCertificates[] = [];
  afterEach(() => {
    for (const controller of running.splice(0)) controller.close();
  });

  function serverSwitch(initial: { cert: string; key: string }, log: CertificateLog): {
    certificates: CertificateSwitch;
    contexts: SecureContextOptions[];
  } {
    const contexts: SecureContextOptions[] = [];
    const certificates = createCertificateSwitch({ target: { setSecureContext: (o) => contexts.push(o) }, initial, log });
    return { certificates, contexts };
  }

  it('follows the Secret: swaps on a change by another replica, renews when due, recreates it when deleted', async () => {
    fake.webhookConfiguration = webhookConfiguration([undefined, undefined]);
    let clock = Date.now();
    const mine = await deps(() => new Date(clock));
    const initial = await bootstrapCertificates(mine);
    const log = new LogRecorder();
    const { certificates, contexts } = serverSwitch({ cert: initial.stored.tlsCert ?? '', key: initial.stored.tlsKey ?? '' }, log);
    const controller = runSelfManagedCertificates({ ...mine, certificates, initial, log, jitterMs: 0, resyncMs: 60_000 });
    running.push(controller);

    // First pass: the caBundle of both entries gets the CA.
    await waitFor('the caBundle', () => bundlesOf(fake).every((b) => b.length === 1 && b[0] === body(initial.stored.caCert)));
    expect(fake.requests.some((r) => r.includes('watch=true') && r.includes(`fieldSelector=metadata.name%3D${SECRET}`))).toBe(true);
    expect(contexts).toHaveLength(0);

    // Another replica renews (its clock says it is due): this one swaps through the watch.
    const other = await deps(() => renewalTime(initial.stored.tlsCert ?? ''));
    const renewed = await bootstrapCertificates(other);
    expect(renewed.action).toBe('renewed');
    await waitFor('the swap', () => contexts.some((c) => c.cert === renewed.stored.tlsCert));
    expect(certificates.pair().cert).toBe(renewed.stored.tlsCert);
    expect(contexts.at(-1)?.minVersion).toBe('TLSv1.2');

    // This replica's timer: once due, it renews itself (forced here by moving its clock), and swaps.
    clock = renewalTime(renewed.stored.tlsCert ?? '').getTime() + 1_000;
    await controller.reconcile();
    const own = fake.secretData(NAMESPACE, SECRET)?.['tls.crt'];
    expect(own).not.toBe(renewed.stored.tlsCert);
    await waitFor('its own renewal in force', () => certificates.pair().cert === own);
    expect(log.messages('info')).toContain('certificate Secret renewed');
    // Same CA: the caBundle was right all along and was written once.
    expect(fake.count('PATCH /apis/')).toBe(1);

    // Deleted: recreated (a new CA, since the old key went with it), put in force, caBundle follows.
    clock = Date.now();
    fake.deleteSecret(NAMESPACE, SECRET);
    await waitFor('the Secret again', () => fake.secretData(NAMESPACE, SECRET));
    const recreated = fake.secretData(NAMESPACE, SECRET) ?? {};
    await waitFor('the recreated pair in force', () => certificates.pair().cert === recreated['tls.crt']);
    await waitFor('the new CA in the caBundle', () => bundlesOf(fake).every((b) => b[0] === body(recreated['ca.crt'])));
    expect(log.messages('warn')).toContain('certificate Secret deleted: creating it again');
  });

  it('rides out a dropped watch and a compacted resourceVersion', async () => {
    fake.webhookConfiguration = webhookConfiguration([undefined]);
    const mine = await deps();
    const initial = await bootstrapCertificates(mine);
    const log = new LogRecorder();
    const { certificates } = serverSwitch({ cert: initial.stored.tlsCert ?? '', key: initial.stored.tlsKey ?? '' }, log);
    running.push(runSelfManagedCertificates({ ...mine, certificates, initial, log, jitterMs: 0, resyncMs: 60_000 }));
    await waitFor('a watch', () => fake.count('GET /api/v1/namespaces/sidecar-injector/secrets?') > 0);

    fake.dropWatches();
    fake.compact();
    const renewed = await bootstrapCertificates(await deps(() => renewalTime(initial.stored.tlsCert ?? '')));
    await waitFor('the swap after the watch came back', () => certificates.pair().cert === renewed.stored.tlsCert, 15_000);
  });

  it('rotates the CA in two steps: bundle first, serving certificate after the grace period', async () => {
    fake.webhookConfiguration = webhookConfiguration([undefined, undefined]);
    let clock = Date.now();
    const mine = await deps(() => new Date(clock));
    const initial = await bootstrapCertificates(mine);
    const oldCa = initial.stored.caCert ?? '';
    const log = new LogRecorder();
    const { certificates } = serverSwitch({ cert: initial.stored.tlsCert ?? '', key: initial.stored.tlsKey ?? '' }, log);
    const controller = runSelfManagedCertificates({ ...mine, certificates, initial, log, jitterMs: 0, resyncMs: 60_000 });
    running.push(controller);
    await waitFor('the caBundle', () => bundlesOf(fake).every((b) => b.length === 1));

    // Years later, the serving certificate freshly renewed and the CA two thirds into its life.
    clock += 6.7 * YEAR - 60_000;
    await controller.reconcile();
    const beforeRotation = fake.secretData(NAMESPACE, SECRET) ?? {};
    clock += 60_000;
    await controller.reconcile();
    const step1 = fake.secretData(NAMESPACE, SECRET) ?? {};
    expect(step1['ca.crt']).not.toBe(oldCa);
    expect(step1['ca-previous.crt']).toBe(oldCa);
    expect(step1['tls.crt']).toBe(beforeRotation['tls.crt']);
    await waitFor('both CAs in every caBundle', () =>
      bundlesOf(fake).every((b) => b.length === 2 && b[0] === body(step1['ca.crt']) && b[1] === body(oldCa)),
    );
    await controller.reconcile();
    expect(fake.secretData(NAMESPACE, SECRET)?.['tls.crt']).toBe(step1['tls.crt']);

    clock += CA_PROPAGATION_GRACE_MS;
    await controller.reconcile();
    const step2 = fake.secretData(NAMESPACE, SECRET) ?? {};
    expect(new X509Certificate(step2['tls.crt'] ?? '').checkIssued(new X509Certificate(step2['ca.crt'] ?? ''))).toBe(true);
    expect(step2['ca.crt']).toBe(step1['ca.crt']);
    await waitFor('the new serving certificate in force', () => certificates.pair().cert === step2['tls.crt']);
    // The old CA stays trusted: other replicas may serve the old certificate a moment longer.
    expect(bundlesOf(fake).every((b) => b.length === 2)).toBe(true);
  });
});
