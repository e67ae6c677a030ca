/**
 * Self-managed certificates against a real kube-apiserver (the envtest convention, via test/e2e/envtest.ts): runs
 * when KUBEBUILDER_ASSETS names a directory with kube-apiserver and etcd, or with a KUBECONFIG naming a cluster
 * (a disposable cluster). Skipped otherwise, with the reason in the suite's name.
 *
 * The replicas act as the injector's ServiceAccount (impersonated), with exactly the RBAC rules of
 * manifests/base/rbac.yaml, so this also proves those rules are enough: get-or-create, a watch by fieldSelector on
 * a Secret allowed by resourceNames only, updates, and the caBundle patch. Everything it creates carries a random
 * suffix and is deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { pemCertificates } from '../../src/cluster/ca-bundle.js';
import {
  bootstrapCertificates,
  connectSelfManagedCertificates,
  runSelfManagedCertificates,
  type SelfManagedCertificates,
} from '../../src/cluster/self-managed.js';
import { renewalTime } from '../../src/tls/certificates.js';
import { createCertificateSwitch, type CertificateSwitch } from '../../src/tls/reload.js';
import { e2eAvailability, startEnvtest, type Envtest } from '../e2e/envtest.js';
import { repoRoot } from '../support/fixtures.js';

const availability = e2eAvailability();
const suite = availability.available ? describe : describe.skip;
const suffix = randomBytes(3).toString('hex');
const NAMESPACE = `certs-${suffix}`;
const SECRET = 'sidecar-injector-tls';
const WEBHOOK = `sidecar-injector-certs-${suffix}`;
const CLUSTER_ROLE = `sidecar-injector-certs-${suffix}`;
const WAIT_MS = 20_000;
const quiet = { info: () => {}, warn: () => {} };

async function eventually<T>(what: string, read: () => T | Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

/** The same cluster, as `user` (the admin client may impersonate). */
function impersonating(admin: KubeConfig, user: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: admin.clusters,
    users: admin.users.map((u) => ({ ...u, impersonateUser: user })),
    contexts: admin.contexts,
    currentContext: admin.currentContext,
  });
  return kubeConfig;
}

/** The rules of the shipped Role and ClusterRole, the webhook configuration's name swapped for this test's. */
function shippedRules(): { role: V1PolicyRule[]; clusterRole: V1PolicyRule[] } {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'manifests', 'base', 'rbac.yaml'), 'utf8')).map(
    (doc) => doc.toJS() as { kind: string; rules?: V1PolicyRule[] },
  );
  const rulesOf = (kind: string) => docs.find((doc) => doc.kind === kind)?.rules ?? [];
  return {
    role: rulesOf('Role'),
    clusterRole: rulesOf('ClusterRole').map((rule) =>
      rule.resources?.includes('mutatingwebhookconfigurations') === true ? { ...rule, resourceNames: [WEBHOOK] } : rule,
    ),
  };
}

suite(`self-managed certificates against a real API server${availability.available ? '' : ` (${availability.reason})`}`, () => {
  let envtest: Envtest;
  let admin: KubeConfig;
  let injector: KubeConfig;
  let controller: SelfManagedCertificates | undefined;
  let certificates: CertificateSwitch;
  const contexts: SecureContextOptions[] = [];

  const replica = (now?: () => Date) =>
    connectSelfManagedCertificates({
      kubeConfig: injector,
      namespace: NAMESPACE,
      secretName: SECRET,
      webhookConfigName: WEBHOOK,
      service: 'sidecar-injector',
    }).then((deps) => (now === undefined ? deps : { ...deps, now }));
  const readSecret = () => admin.makeApiClient(CoreV1Api).readNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
  const readWebhook = () => admin.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: WEBHOOK });
  const decode = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');

  beforeAll(async () => {
    envtest = await startEnvtest();
    admin = envtest.kubeConfig;
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'sidecar-injector' } } });
    const rules = shippedRules();
    const subjects = [{ kind: 'ServiceAccount', name: 'sidecar-injector', namespace: NAMESPACE }];
    await rbac.createNamespacedRole({ namespace: NAMESPACE, body: { metadata: { name: 'sidecar-injector' }, rules: rules.role } });
    await rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: { metadata: { name: 'sidecar-injector' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sidecar-injector' }, subjects },
    });
    await rbac.createClusterRole({ body: { metadata: { name: CLUSTER_ROLE }, rules: rules.clusterRole } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: CLUSTER_ROLE }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CLUSTER_ROLE }, subjects },
    });
    // Two entries that match no pod (a label nobody sets), pointing at a Service that does not exist: harmless
    // even on an existing cluster.
    await admin.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: WEBHOOK },
        webhooks: ['namespace', 'pod'].map((entry) => ({
          name: `${entry}.certs-${suffix}.sidecar-injector.io`,
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          namespaceSelector: { matchLabels: { 'certs-test': suffix } },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'] }],
          clientConfig: { service: { name: 'sidecar-injector', namespace: NAMESPACE, path: '/mutate', port: 443 } },
        })),
      },
    });
    injector = impersonating(admin, `system:serviceaccount:${NAMESPACE}:sidecar-injector`);
  }, 120_000);

  afterAll(async () => {
    controller?.close();
    if (admin !== undefined) {
      await admin.makeApiClient(AdmissionregistrationV1Api).deleteMutatingWebhookConfiguration({ name: WEBHOOK }).catch(() => undefined);
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      await rbac.deleteClusterRoleBinding({ name: CLUSTER_ROLE }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: CLUSTER_ROLE }).catch(() => undefined);
      await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    }
    await envtest?.stop();
  }, 60_000);

  it('two replicas starting at once end with one Secret, and both use it', async () => {
    const outcomes = await Promise.all([bootstrapCertificates(await replica()), bootstrapCertificates(await replica())]);
    expect(outcomes.map((o) => o.action).sort()).toEqual(['adopted', 'created']);
    const secret = await readSecret();
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    for (const outcome of outcomes) expect(outcome.stored.tlsCert).toBe(decode(secret.data?.['tls.crt']));
  });

  it('patches the caBundle of every entry, and writes nothing more while it is right', async () => {
    const mine = await replica();
    const initial = await bootstrapCertificates(mine);
    expect(initial.action).toBe('kept');
    certificates = createCertificateSwitch({
      target: { setSecureContext: (options) => contexts.push(options) },
      initial: { cert: initial.stored.tlsCert ?? '', key: initial.stored.tlsKey ?? '' },
      log: quiet,
    });
    controller = runSelfManagedCertificates({ ...mine, certificates, initial, log: quiet, jitterMs: 0 });
    const ca = pemCertificates(initial.stored.caCert ?? '');
    const patched = await eventually('the caBundle', readWebhook, (config) =>
      (config.webhooks ?? []).every((w) => JSON.stringify(pemCertificates(decode(w.clientConfig.caBundle))) === JSON.stringify(ca)),
    );
    await controller.reconcile();
    expect((await readWebhook()).metadata?.resourceVersion).toBe(patched.metadata?.resourceVersion);
  });

  it('a forced renewal updates the Secret (guarded by resourceVersion) and the watching replica swaps to it', async () => {
    const before = await readSecret();
    const due = renewalTime(decode(before.data?.['tls.crt']));
    const renewed = await bootstrapCertificates(await replica(() => due));
    expect(renewed.action).toBe('renewed');
    const after = await readSecret();
    expect(after.metadata?.resourceVersion).not.toBe(before.metadata?.resourceVersion);
    expect(decode(after.data?.['tls.crt'])).toBe(renewed.stored.tlsCert);
    expect(decode(after.data?.['ca.crt'])).toBe(decode(before.data?.['ca.crt']));
    await eventually('the swap', () => certificates.pair().cert, (cert) => cert === renewed.stored.tlsCert);
    expect(contexts.at(-1)?.cert).toBe(renewed.stored.tlsCert);
  });
});
