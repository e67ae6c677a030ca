/**
 * `sidecar-injector check`: the pure diagnosis over real-looking Kubernetes objects (table-driven), the flags, the
 * report shapes, the whole command over a fake API, and the thin adapter against real local TLS servers.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Namespace, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildReport, renderText } from '../../src/cli/check-report.js';
import { parseCheckFlags, runCheck, type CheckDeps } from '../../src/cli/check.js';
import { kubeApi, parseWarningHeader, probeCertificateChain, type ApiReply, type KubeApi } from '../../src/cluster/check-api.js';
import { CHECKS, diagnose, exitCodeFor, type CheckId, type CheckResult, type CheckStatus } from '../../src/cluster/diagnose.js';
import { dryRunTarget, excludedNamespaces, probePod, webhookEndpoint, type CheckFacts } from '../../src/cluster/check-targets.js';
import { readCaBundle, verifyServedChain } from '../../src/tls/chain.js';
import { generateDevCertificates, type CertificateBundle } from '../../src/tls/certificates.js';
import { computeInjection } from '../../src/core/engine.js';
import { defaultConfig } from '../../src/core/defaults.js';
import { applyToCopy } from '../support/pod-assertions.js';
import { FakeApiServer } from '../cluster/fake-apiserver.js';
import { repoRoot } from '../support/fixtures.js';
import { injectorNamespace } from '../../src/runtime/namespace.js';

const NOW = new Date();
const DAY_MS = 24 * 60 * 60 * 1000;
const b64 = (text: string): string => Buffer.from(text).toString('base64');

let certs: CertificateBundle;
let otherCerts: CertificateBundle;
beforeAll(() => {
  certs = generateDevCertificates({ service: 'sidecar-injector', namespace: 'sidecar-injector' });
  otherCerts = generateDevCertificates({ service: 'sidecar-injector', namespace: 'sidecar-injector' });
});

// ------------------------------------------------------------------------------------------------------------
// Objects as the API server returns them.

/** The shipped configuration, as the API server stores it after the CA was written into it. */
function shippedWebhookConfiguration(caBundle: string | null = b64(certs.ca.cert)): MutatingWebhookConfiguration {
  const config = parse(readFileSync(join(repoRoot, 'manifests', 'base', 'mutatingwebhookconfiguration.yaml'), 'utf8')) as MutatingWebhookConfiguration;
  config.metadata = { ...config.metadata, uid: '0d5f6e1c-6a57-4b8e-9d1e-3c1d2b0a9f11', resourceVersion: '4711', generation: 2 };
  for (const webhook of config.webhooks ?? []) {
    if (caBundle !== null) webhook.clientConfig.caBundle = caBundle;
  }
  return config;
}

function urlWebhookConfiguration(url: string, caBundle: string | null = b64(certs.ca.cert)): MutatingWebhookConfiguration {
  const config = shippedWebhookConfiguration(caBundle);
  for (const webhook of config.webhooks ?? []) {
    webhook.clientConfig = { url, ...(caBundle === null ? {} : { caBundle }) };
  }
  return config;
}

const service: Service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'sidecar-injector', namespace: 'sidecar-injector', labels: { 'app.kubernetes.io/name': 'sidecar-injector' } },
  spec: {
    type: 'ClusterIP',
    clusterIP: '10.96.112.7',
    clusterIPs: ['10.96.112.7'],
    selector: { 'app.kubernetes.io/name': 'sidecar-injector' },
    ports: [
      { name: 'https', port: 443, protocol: 'TCP', targetPort: 'https' },
      { name: 'metrics', port: 9090, protocol: 'TCP', targetPort: 'metrics' },
    ],
  },
};

function endpointSlice(ready: (boolean | undefined)[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'sidecar-injector-x7k2p',
      namespace: 'sidecar-injector',
      generateName: 'sidecar-injector-',
      labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', 'kubernetes.io/service-name': 'sidecar-injector' },
    },
    addressType: 'IPv4',
    endpoints: ready.map((r, i) => ({
      addresses: [`10.244.1.${10 + i}`],
      ...(r === undefined ? {} : { conditions: { ready: r, serving: r, terminating: !r } }),
      nodeName: `worker-${i}`,
      targetRef: { kind: 'Pod', name: `sidecar-injector-6d9c7b5f4-${i}`, namespace: 'sidecar-injector' },
    })),
    ports: [{ name: 'https', port: 8443, protocol: 'TCP' }],
  };
}

function namespace(name: string, labels: Record<string, string> = {}): Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

const clusterNamespaces: Namespace[] = [
  namespace('default'),
  namespace('kube-system'),
  namespace('kube-public'),
  namespace('sidecar-injector', { 'sidecar-injection': 'disabled', 'pod-security.kubernetes.io/enforce': 'restricted' }),
  namespace('shop', { 'sidecar-injection': 'enabled' }),
  namespace('batch', { 'sidecar-injection': 'disabled' }),
];

function tlsSecret(cert: string): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: 'sidecar-injector-tls', namespace: 'sidecar-injector' },
    data: { 'tls.crt': b64(cert), 'tls.key': b64('not read by check') },
  };
}

function healthyFacts(overrides: Partial<CheckFacts> = {}): CheckFacts {
  return {
    webhookConfigurationName: 'sidecar-injector',
    apiServer: { server: 'https://10.0.0.1:6443', context: 'prod', version: 'v1.30.4' },
    webhookConfiguration: { found: true, object: shippedWebhookConfiguration() },
    service: { found: true, object: service },
    endpointSlices: { items: [endpointSlice([true, true])] },
    served: { reached: true, target: 'sidecar-injector.sidecar-injector.svc:443', chain: [certs.serving.cert] },
    namespaces: { items: clusterNamespaces },
    dryRunTarget: { namespace: 'shop', why: 'first namespace labelled sidecar-injection=enabled' },
    dryRun: { namespace: 'shop', status: 201, pod: engineInjectedPod('shop'), warnings: [] },
    excludedNamespaces: excludedNamespaces('sidecar-injector'),
    podSecurityDefault: 'privileged',
    inCluster: true,
    now: NOW,
    missedPods: {
      ok: true,
      result: { scanned: 12, missed: [], missedByNamespace: {}, staleByNamespace: {}, staleExamples: [], skipped: {}, requests: 2 },
      workloads: [],
      configSource: 'ConfigMap sidecar-injector/sidecar-injector-config',
    },
    ...overrides,
  };
}

function byId(results: readonly CheckResult[]): Record<CheckId, CheckResult> {
  return Object.fromEntries(results.map((r) => [r.id, r])) as Record<CheckId, CheckResult>;
}

// ------------------------------------------------------------------------------------------------------------

describe('diagnose', () => {
  it('a healthy install passes every check, in the fixed order', () => {
    const results = diagnose(healthyFacts());
    expect(results.map((r) => r.id)).toEqual(CHECKS.map((c) => c.id));
    expect(results.filter((r) => r.status !== 'pass'), JSON.stringify(results, null, 2)).toEqual([]);
    expect(exitCodeFor(results)).toBe(0);
    const r = byId(results);
    expect(r['webhook-entries'].message).toContain('namespace.sidecar-injector.io, pod.sidecar-injector.io: failurePolicy Ignore');
    expect(r['served-certificate'].message).toContain('verified against the caBundle for sidecar-injector.sidecar-injector.svc');
    expect(r.endpoints.message).toBe('2 ready endpoints: 10.244.1.10, 10.244.1.11');
    expect(r.namespaces.message).toBe('1 enabled: shop');
    expect(r['dry-run'].message).toMatch(/came back with the sidecar \((classic|native), Pod Security privileged\)/);
  });

  interface Case {
    name: string;
    facts: () => CheckFacts;
    expect: Partial<Record<CheckId, CheckStatus>>;
    message?: [CheckId, RegExp];
    detail?: [CheckId, RegExp];
  }

  const withConfig = (mutate: (config: MutatingWebhookConfiguration) => void) => (): CheckFacts => {
    const config = shippedWebhookConfiguration();
    mutate(config);
    return healthyFacts({ webhookConfiguration: { found: true, object: config } });
  };

  const cases: Case[] = [
    {
      name: 'API server unreachable: fail, everything else skipped',
      facts: () => healthyFacts({ apiServer: { server: 'https://10.0.0.1:6443', error: 'ECONNREFUSED' } }),
      expect: { 'api-server': 'fail', 'webhook-configuration': 'skip', 'dry-run': 'skip' },
      message: ['api-server', /cannot reach https:\/\/10\.0\.0\.1:6443: ECONNREFUSED/],
    },
    {
      name: 'no webhook configuration',
      facts: () => healthyFacts({ webhookConfiguration: { found: false } }),
      expect: { 'webhook-configuration': 'fail', 'webhook-entries': 'skip', 'ca-bundle': 'skip', service: 'skip', namespaces: 'pass' },
      message: ['webhook-configuration', /not found: nothing is injected/],
    },
    {
      name: 'webhook configuration unreadable (RBAC)',
      facts: () => healthyFacts({ webhookConfiguration: { error: 'mutatingwebhookconfigurations.admissionregistration.k8s.io "sidecar-injector" is forbidden (HTTP 403)' } }),
      expect: { 'webhook-configuration': 'fail' },
      message: ['webhook-configuration', /forbidden/],
    },
    {
      name: 'pod entry missing',
      facts: withConfig((c) => {
        c.webhooks = c.webhooks?.filter((w) => w.name !== 'pod.sidecar-injector.io');
      }),
      expect: { 'webhook-entries': 'fail' },
      message: ['webhook-entries', /entry pod\.sidecar-injector\.io is missing/],
    },
    {
      name: 'rules that do not cover pod CREATE',
      facts: withConfig((c) => {
        const rule = c.webhooks?.[0]?.rules?.[0];
        if (rule) rule.operations = ['UPDATE'];
      }),
      expect: { 'webhook-entries': 'fail' },
      message: ['webhook-entries', /namespace\.sidecar-injector\.io: its rules do not cover pods CREATE/],
    },
    {
      name: 'sideEffects Unknown refuses dry-run requests',
      facts: withConfig((c) => {
        for (const w of c.webhooks ?? []) w.sideEffects = 'Unknown';
      }),
      expect: { 'webhook-entries': 'warn' },
      message: ['webhook-entries', /sideEffects Unknown: dry-run requests .* are refused/],
    },
    {
      name: 'pod entry without the DoesNotExist selector could double-send',
      facts: withConfig((c) => {
        const pod = c.webhooks?.find((w) => w.name === 'pod.sidecar-injector.io');
        if (pod) pod.namespaceSelector = {};
      }),
      expect: { 'webhook-entries': 'warn' },
      message: ['webhook-entries', /could be sent by both entries/],
    },
    {
      name: 'fail-closed is reported, not a problem',
      facts: withConfig((c) => {
        for (const w of c.webhooks ?? []) w.failurePolicy = 'Fail';
      }),
      expect: { 'webhook-entries': 'pass' },
      message: ['webhook-entries', /failurePolicy Fail \(fail-closed\)/],
    },
    {
      name: 'caBundle absent with a Service: fail, nothing to verify the served certificate against',
      facts: () => healthyFacts({ webhookConfiguration: { found: true, object: shippedWebhookConfiguration(null) } }),
      expect: { 'ca-bundle': 'fail', 'served-certificate': 'warn' },
      message: ['ca-bundle', /namespace\.sidecar-injector\.io: caBundle absent; pod\.sidecar-injector\.io: caBundle absent: the API server cannot verify/],
    },
    {
      name: 'caBundle absent with a url: system trust roots, a warning',
      facts: () =>
        healthyFacts({
          webhookConfiguration: { found: true, object: urlWebhookConfiguration('https://webhook.example.com/mutate', null) },
          served: { reached: true, target: 'webhook.example.com:443', chain: [certs.serving.cert] },
        }),
      expect: { 'ca-bundle': 'warn', 'served-certificate': 'warn', service: 'skip', endpoints: 'skip' },
      message: ['ca-bundle', /system trust roots/],
    },
    {
      name: 'caBundle of garbage',
      facts: () => healthyFacts({ webhookConfiguration: { found: true, object: shippedWebhookConfiguration(b64('hello')) } }),
      expect: { 'ca-bundle': 'fail' },
      message: ['ca-bundle', /holds no PEM certificate/],
    },
    {
      name: 'entries with different caBundles (a CA rotation in progress) is a detail',
      facts: withConfig((c) => {
        const pod = c.webhooks?.[1];
        if (pod) pod.clientConfig.caBundle = b64(certs.ca.cert + otherCerts.ca.cert);
      }),
      expect: { 'ca-bundle': 'pass', 'served-certificate': 'pass' },
      detail: ['ca-bundle', /different caBundles/],
    },
    {
      name: 'served certificate from another CA',
      facts: () => healthyFacts({ served: { reached: true, target: 'sidecar-injector.sidecar-injector.svc:443', chain: [otherCerts.serving.cert] } }),
      expect: { 'served-certificate': 'fail' },
      message: ['served-certificate', /is not signed by any caBundle certificate: the API server will refuse it/],
    },
    {
      name: 'served certificate for another name',
      facts: () => {
        const config = shippedWebhookConfiguration();
        for (const w of config.webhooks ?? []) if (w.clientConfig.service) w.clientConfig.service.name = 'injector';
        return healthyFacts({ webhookConfiguration: { found: true, object: config } });
      },
      expect: { 'served-certificate': 'fail', service: 'pass' },
      message: ['served-certificate', /does not cover injector\.sidecar-injector\.svc/],
    },
    {
      name: 'served certificate expired',
      facts: () => healthyFacts({ now: new Date(NOW.getTime() + 400 * DAY_MS) }),
      expect: { 'served-certificate': 'fail' },
      message: ['served-certificate', /expired at/],
    },
    {
      name: 'served certificate close to its end',
      facts: () => healthyFacts({ now: new Date(NOW.getTime() + 360 * DAY_MS) }),
      expect: { 'served-certificate': 'warn' },
      message: ['served-certificate', /renew it soon/],
    },
    {
      name: 'in the cluster, webhook unreachable: warning (the dry-run decides)',
      facts: () =>
        healthyFacts({
          served: { reached: false, target: 'sidecar-injector.sidecar-injector.svc:443', error: 'ECONNREFUSED' },
          tlsSecret: { found: true, object: tlsSecret(certs.serving.cert), name: 'sidecar-injector-tls' },
        }),
      expect: { 'served-certificate': 'warn' },
      message: ['served-certificate', /not reachable from here \(ECONNREFUSED\)/],
    },
    {
      name: 'outside the cluster: the Secret is verified instead',
      facts: () =>
        healthyFacts({
          inCluster: false,
          served: { reached: false, skipped: 'Service sidecar-injector.sidecar-injector.svc not reachable from here (outside the cluster)' },
          tlsSecret: { found: true, object: tlsSecret(certs.serving.cert), name: 'sidecar-injector-tls' },
        }),
      expect: { 'served-certificate': 'warn' },
      message: ['served-certificate', /not reachable from here \(outside the cluster\)/],
      detail: ['served-certificate', /Secret sidecar-injector\/sidecar-injector-tls holds .*verified against the caBundle/],
    },
    {
      name: 'outside the cluster: a Secret the caBundle does not verify fails',
      facts: () =>
        healthyFacts({
          inCluster: false,
          served: { reached: false, skipped: 'outside the cluster' },
          tlsSecret: { found: true, object: tlsSecret(otherCerts.serving.cert), name: 'sidecar-injector-tls' },
        }),
      expect: { 'served-certificate': 'fail' },
      message: ['served-certificate', /Secret sidecar-injector\/sidecar-injector-tls: certificate .* is not signed by any caBundle certificate/],
    },
    {
      name: 'outside the cluster: Secret not readable is only a warning',
      facts: () =>
        healthyFacts({
          inCluster: false,
          served: { reached: false, skipped: 'outside the cluster' },
          tlsSecret: { error: 'secrets "sidecar-injector-tls" is forbidden (HTTP 403)', name: 'sidecar-injector-tls' },
        }),
      expect: { 'served-certificate': 'warn' },
      detail: ['served-certificate', /could not be checked instead: .*forbidden/],
    },
    {
      name: 'Service missing',
      facts: () => healthyFacts({ service: { found: false }, endpointSlices: { items: [] } }),
      expect: { service: 'fail', endpoints: 'fail' },
      message: ['service', /not found: the API server cannot reach the webhook: pods are created WITHOUT the sidecar/],
    },
    {
      name: 'Service without the configured port',
      facts: () => healthyFacts({ service: { found: true, object: { ...service, spec: { ...service.spec, ports: [{ port: 8443 }] } } } }),
      expect: { service: 'fail' },
      message: ['service', /has no port 443 \(ports: 8443\)/],
    },
    {
      name: 'no ready endpoint, fail-closed says pods are refused',
      facts: () => {
        const config = shippedWebhookConfiguration();
        for (const w of config.webhooks ?? []) w.failurePolicy = 'Fail';
        return healthyFacts({ webhookConfiguration: { found: true, object: config }, endpointSlices: { items: [endpointSlice([false])] } });
      },
      expect: { endpoints: 'fail' },
      message: ['endpoints', /no ready endpoint .* pods in selected namespaces are REFUSED/],
    },
    {
      name: 'endpoints with unknown readiness count as ready',
      facts: () => healthyFacts({ endpointSlices: { items: [endpointSlice([undefined, false])] } }),
      expect: { endpoints: 'pass' },
      message: ['endpoints', /^1 ready endpoint: 10\.244\.1\.10$/],
    },
    {
      name: 'url webhook: no Service checks',
      facts: () =>
        healthyFacts({
          webhookConfiguration: { found: true, object: urlWebhookConfiguration('https://127.0.0.1:8443/mutate') },
          served: { reached: true, target: '127.0.0.1:8443', chain: [certs.serving.cert] },
        }),
      expect: { service: 'skip', endpoints: 'skip', 'served-certificate': 'pass' },
      message: ['served-certificate', /for 127\.0\.0\.1/],
    },
    {
      name: 'no enabled namespace',
      facts: () => healthyFacts({ namespaces: { items: clusterNamespaces.filter((n) => n.metadata?.name !== 'shop') } }),
      expect: { namespaces: 'warn', 'pod-security': 'skip' },
      message: ['namespaces', /only pods labelled sidecar-injection=enabled are injected/],
    },
    {
      name: 'labelled system namespace and an invalid label value',
      facts: () =>
        healthyFacts({
          namespaces: { items: [...clusterNamespaces, namespace('kube-node-lease', { 'sidecar-injection': 'enabled' }), namespace('web', { 'sidecar-injection': 'true' })] },
        }),
      expect: { namespaces: 'warn' },
      message: ['namespaces', /never injected \(excluded\): kube-node-lease; .*web \(true\)/],
    },
    {
      name: 'baseline and restricted enabled namespaces reduce the sidecar',
      facts: () =>
        healthyFacts({
          namespaces: {
            items: [
              ...clusterNamespaces,
              namespace('payments', { 'sidecar-injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'baseline' }),
              namespace('vault', { 'sidecar-injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'Restricted' }),
            ],
          },
        }),
      expect: { 'pod-security': 'warn', namespaces: 'pass' },
      message: ['pod-security', /2 of 3 enabled namespaces reduce the sidecar/],
      detail: ['pod-security', /vault: enforce restricted: sidecar without capabilities/],
    },
    {
      name: 'a cluster-wide default level applies to unlabelled namespaces',
      facts: () => healthyFacts({ podSecurityDefault: 'baseline' }),
      expect: { 'pod-security': 'warn' },
      detail: ['pod-security', /shop: enforce baseline \(podSecurity\.defaultLevel\): sidecar without SYS_PTRACE/],
    },
    {
      name: 'dry-run pod without the sidecar',
      facts: () =>
        healthyFacts({ dryRun: { namespace: 'shop', status: 201, pod: probePodAsStored('shop'), warnings: [] } }),
      expect: { 'dry-run': 'fail' },
      message: ['dry-run', /came back WITHOUT the sidecar/],
    },
    {
      name: 'dry-run pod refused by Pod Security',
      facts: () =>
        healthyFacts({
          dryRun: {
            namespace: 'shop',
            status: 403,
            message:
              'pods "sidecar-injector-check-x2b9q" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "sidecar" must not include "SYS_PTRACE" in securityContext.capabilities.add) (HTTP 403)',
            warnings: [],
          },
        }),
      expect: { 'dry-run': 'fail' },
      message: ['dry-run', /refused \(HTTP 403\): .*SYS_PTRACE/],
    },
    {
      name: 'dry-run warnings are shown',
      facts: () =>
        healthyFacts({
          dryRun: { namespace: 'shop', status: 201, pod: engineInjectedPod('shop'), warnings: ['volume shared-data already exists in the pod; reused as it is'] },
        }),
      expect: { 'dry-run': 'pass' },
      detail: ['dry-run', /^warning: volume shared-data already exists/],
    },
    {
      name: 'no namespace for the dry-run',
      facts: () => healthyFacts({ dryRunTarget: { none: 'no namespace is labelled sidecar-injection=enabled' } }),
      expect: { 'dry-run': 'warn' },
    },
    {
      name: '--no-dry-run',
      facts: () => healthyFacts({ dryRunTarget: { skipped: 'not attempted (--no-dry-run)' } }),
      expect: { 'dry-run': 'skip' },
    },
  ];

  it.each(cases)('$name', (c) => {
    const results = byId(diagnose(c.facts()));
    for (const [id, status] of Object.entries(c.expect) as [CheckId, CheckStatus][]) {
      expect(results[id].status, `${id}: ${JSON.stringify(results[id])}`).toBe(status);
    }
    if (c.message) expect(results[c.message[0]].message).toMatch(c.message[1]);
    if (c.detail) expect(results[c.detail[0]].details.join('\n')).toMatch(c.detail[1]);
    const failed = Object.values(results).some((r) => r.status === 'fail');
    expect(exitCodeFor(Object.values(results))).toBe(failed ? 1 : 0);
  });
});

/** The probe pod as the API server returns it when nothing mutated it (defaulted, named). */
function probePodAsStored(ns: string): Pod {
  const pod = probePod();
  return {
    ...pod,
    metadata: { ...pod.metadata, name: 'sidecar-injector-check-x2b9q', namespace: ns, uid: 'b8c0f9b2-7d0e-4a59-9d65-3f1f0c3b2a10' },
    spec: { ...pod.spec!, restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', serviceAccountName: 'default' },
    status: { phase: 'Pending', qosClass: 'Guaranteed' },
  };
}

/** The probe pod as the API server returns it after our webhook patched it: the real engine's patch, applied. */
function engineInjectedPod(ns: string): Pod {
  const stored = probePodAsStored(ns);
  const result = computeInjection(stored, defaultConfig(), { operation: 'CREATE', namespace: ns, injectorNamespace: 'sidecar-injector' });
  expect(result.decision.action).toBe('inject');
  return applyToCopy(stored, result.patch);
}

describe('what check looks at', () => {
  it('the endpoint of a Service or a url', () => {
    expect(webhookEndpoint(shippedWebhookConfiguration())).toEqual({
      kind: 'service',
      name: 'sidecar-injector',
      namespace: 'sidecar-injector',
      port: 443,
      path: '/mutate',
      host: 'sidecar-injector.sidecar-injector.svc',
    });
    expect(webhookEndpoint(urlWebhookConfiguration('https://127.0.0.1:34567/mutate'))).toEqual({
      kind: 'url',
      url: 'https://127.0.0.1:34567/mutate',
      host: '127.0.0.1',
      port: 34567,
    });
    expect(webhookEndpoint(urlWebhookConfiguration('https://[::1]/mutate'))).toMatchObject({ host: '::1', port: 443 });
    expect(webhookEndpoint(urlWebhookConfiguration('not a url'))).toBeUndefined();
  });

  it.each([
    { flag: 'team-a', namespaces: clusterNamespaces, expected: { namespace: 'team-a', why: '--namespace' } },
    { flag: undefined, namespaces: clusterNamespaces, expected: { namespace: 'shop' } },
    {
      flag: undefined,
      namespaces: [namespace('zoo', { 'sidecar-injection': 'enabled' }), namespace('alpha', { 'sidecar-injection': 'enabled' })],
      expected: { namespace: 'alpha' },
    },
    {
      flag: undefined,
      namespaces: [
        namespace('kube-system', { 'sidecar-injection': 'enabled' }),
        { ...namespace('old', { 'sidecar-injection': 'enabled' }), status: { phase: 'Terminating' } },
      ],
      expected: { none: expect.stringContaining('pass --namespace') },
    },
  ])('dry-run namespace: flag $flag', ({ flag, namespaces, expected }) => {
    expect(dryRunTarget(namespaces, flag, excludedNamespaces('sidecar-injector'))).toMatchObject(expected);
  });

  it('the probe pod opts in by label and meets the restricted level by itself', () => {
    const pod = probePod();
    expect(pod.metadata?.labels?.['sidecar-injection']).toBe('enabled');
    expect(pod.metadata?.name).toBeUndefined();
    expect(pod.metadata?.generateName).toBe('sidecar-injector-check-');
    const container = pod.spec?.containers[0];
    expect(container?.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(pod.spec?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  });
});

describe('certificates', () => {
  it('reads a caBundle with one or two CAs', () => {
    expect(readCaBundle(b64(certs.ca.cert))).toMatchObject({ ok: true, certificates: [certs.ca.cert.trim()] });
    const two = readCaBundle(b64(`${certs.ca.cert}${otherCerts.ca.cert}`));
    expect(two.ok && two.certificates.length).toBe(2);
    expect(readCaBundle(undefined)).toEqual({ ok: false, problem: 'absent' });
    expect(readCaBundle('')).toEqual({ ok: false, problem: 'absent' });
  });

  it('verifies the served chain against the caBundle, for the host the API server uses', () => {
    const ca = [certs.ca.cert];
    expect(verifyServedChain([certs.serving.cert], ca, 'sidecar-injector.sidecar-injector.svc', NOW)).toMatchObject({ ok: true });
    expect(verifyServedChain([certs.serving.cert], ca, '127.0.0.1', NOW)).toMatchObject({ ok: true });
    // The CA appended to the chain by the server changes nothing.
    expect(verifyServedChain([certs.serving.cert, certs.ca.cert], ca, 'localhost', NOW)).toMatchObject({ ok: true });
    // During a CA rotation the bundle holds both.
    expect(verifyServedChain([certs.serving.cert], [otherCerts.ca.cert, certs.ca.cert], 'localhost', NOW)).toMatchObject({ ok: true });
    expect(verifyServedChain([certs.serving.cert], [otherCerts.ca.cert], 'localhost', NOW)).toMatchObject({ ok: false });
    expect(verifyServedChain([certs.serving.cert], ca, '10.0.0.9', NOW)).toMatchObject({ ok: false, problem: expect.stringContaining('does not cover 10.0.0.9') });
    // The CN (sidecar-injector.sidecar-injector.svc) never stands in for a SAN; this name is in neither.
    expect(verifyServedChain([certs.serving.cert], ca, 'sidecar-injector.other.svc', NOW)).toMatchObject({ ok: false });
    expect(verifyServedChain([], ca, 'localhost', NOW)).toEqual({ ok: false, problem: 'no certificate was presented' });
    expect(verifyServedChain([certs.serving.cert], ca, 'localhost', new Date(NOW.getTime() - 2 * DAY_MS))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('not valid before'),
    });
  });
});

describe('flags and reports', () => {
  it('parses flags with defaults', () => {
    expect(parseCheckFlags([])).toEqual({
      webhookConfig: 'sidecar-injector',
      dryRun: true,
      tlsSecret: 'sidecar-injector-tls',
      podSecurityDefault: 'privileged',
      timeoutMs: 10_000,
      output: 'text',
      help: false,
      strict: false,
      pods: true,
    });
    expect(parseCheckFlags(['--kubeconfig', 'k', '--context', 'c', '--namespace', 'shop', '-o', 'json', '--no-dry-run', '--timeout', '2.5'])).toMatchObject({
      kubeconfig: 'k',
      context: 'c',
      namespace: 'shop',
      output: 'json',
      dryRun: false,
      timeoutMs: 2500,
    });
  });

  it.each([
    [['--output', 'yaml'], /--output must be text or json/],
    [['--pod-security-default', 'strict'], /--pod-security-default must be one of privileged, baseline, restricted/],
    [['--timeout', '0'], /--timeout must be/],
    [['--namespace', ''], /--namespace must not be empty/],
    [['--bogus'], /Unknown option '--bogus'/],
    // One name for one thing: serve and check both call it --webhook-config.
    [['--name', 'x'], /Unknown option '--name'/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseCheckFlags(argv)).toThrow(message);
  });

  it('the injector namespace, derived one way: the flag, the webhook Service, POD_NAMESPACE, the default', () => {
    const endpoint = webhookEndpoint(shippedWebhookConfiguration());
    const service = endpoint?.kind === 'service' ? endpoint.namespace : undefined;
    expect(service).toBe('sidecar-injector');
    expect(injectorNamespace({ POD_NAMESPACE: 'pod' }, { flag: 'mine', service })).toBe('mine');
    expect(injectorNamespace({ POD_NAMESPACE: 'pod' }, { service })).toBe('sidecar-injector');
    expect(injectorNamespace({ POD_NAMESPACE: ' pod ' })).toBe('pod');
    expect(injectorNamespace({ POD_NAMESPACE: ' pod ' }, { flag: undefined, service: undefined })).toBe('pod');
    expect(injectorNamespace({ POD_NAMESPACE: '' })).toBe('sidecar-injector');
    expect(injectorNamespace({})).toBe('sidecar-injector');
    expect(parseCheckFlags(['--webhook-config', 'other']).webhookConfig).toBe('other');
  });

  it('the JSON report has a stable shape', () => {
    const facts = healthyFacts();
    const report = buildReport(facts, diagnose(facts));
    expect(Object.keys(report)).toEqual(['ok', 'server', 'context', 'webhookConfiguration', 'summary', 'checks', 'namespaces', 'dryRun', 'missedPods']);
    expect(report.summary).toEqual({ pass: 11, warn: 0, fail: 0, skip: 0 });
    expect(report.namespaces).toEqual({ enabled: [{ name: 'shop', podSecurity: 'privileged' }], disabled: ['batch', 'sidecar-injector'] });
    expect(report.dryRun).toMatchObject({ namespace: 'shop', injected: true });
    for (const check of report.checks) expect(Object.keys(check)).toEqual(['id', 'status', 'message', 'details']);
  });

  it('the text report: one line per check with its symbol, details indented, a summary', () => {
    const facts = healthyFacts({ service: { found: false }, namespaces: { items: [...clusterNamespaces, namespace('web', { 'sidecar-injection': 'yes' })] } });
    const text = renderText(buildReport(facts, diagnose(facts)));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('sidecar-injector check: https://10.0.0.1:6443 (context prod), MutatingWebhookConfiguration sidecar-injector');
    expect(lines).toContain('✓ API server                https://10.0.0.1:6443, Kubernetes v1.30.4');
    expect(lines.find((l) => l.startsWith('✗ Service '))).toContain('not found');
    expect(lines.find((l) => l.startsWith('! labelled namespaces '))).toContain('web (yes)');
    expect(lines.find((l) => l.startsWith('                              1 enabled: shop'))).toBeDefined();
    expect(lines.at(-1)).toBe('FAILED: 9 checks passed, 1 warning, 1 failure');
  });
});

// ------------------------------------------------------------------------------------------------------------
// The whole command over a fake API.

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

type Route = (body: unknown) => ApiReply;

function fakeApi(routes: Record<string, Route>): KubeApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    server: 'https://fake:6443',
    calls,
    async request(method, path, body) {
      const key = `${method} ${path}`;
      calls.push(key);
      const route = routes[key];
      if (route === undefined) return { status: 404, body: { kind: 'Status', message: 'not found' }, warnings: [] };
      return route(body);
    },
  };
}

const ok = (body: unknown, warnings: string[] = []): Route => () => ({ status: 200, body, warnings });

function fakeDeps(api: KubeApi, inCluster: boolean, chain: string[] | undefined): CheckDeps & { probes: string[] } {
  const probes: string[] = [];
  return {
    probes,
    connect: async () => ({ api, context: 'fake', inCluster }),
    probe: async (host, port, servername) => {
      probes.push(`${host}:${port} ${servername}`);
      return chain === undefined ? { reached: false, error: 'ENOTFOUND' } : { reached: true, chain };
    },
    now: () => NOW,
  };
}

describe('runCheck', () => {
  const clusterRoutes = (dryRun: Route): Record<string, Route> => ({
    'GET /version': ok({ major: '1', minor: '23', gitVersion: 'v1.23.17' }),
    'GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/sidecar-injector': ok(shippedWebhookConfiguration()),
    'GET /api/v1/namespaces/sidecar-injector/services/sidecar-injector': ok(service),
    'GET /apis/discovery.k8s.io/v1/namespaces/sidecar-injector/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsidecar-injector': ok({
      kind: 'EndpointSliceList',
      items: [endpointSlice([true])],
    }),
    'GET /api/v1/namespaces/sidecar-injector/secrets/sidecar-injector-tls': ok(tlsSecret(certs.serving.cert)),
    'GET /api/v1/namespaces': ok({ kind: 'NamespaceList', items: clusterNamespaces }),
    'POST /api/v1/namespaces/shop/pods?dryRun=All': dryRun,
  });

  async function run(argv: string[], deps: CheckDeps): Promise<{ code: number; out: string; err: string }> {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runCheck(argv, { stdout, stderr, env: {}, deps });
    return { code, out: stdout.text, err: stderr.text };
  }

  it('outside the cluster: reads the Secret instead of dialling the Service, dry-runs in the first enabled namespace', async () => {
    let sent: unknown;
    const api = fakeApi(
      clusterRoutes((body) => {
        sent = body;
        return { status: 201, body: engineInjectedPod('shop'), warnings: ['a warning from the webhook'] };
      }),
    );
    const deps = fakeDeps(api, false, undefined);
    const { code, out } = await run(['-o', 'json'], deps);
    expect(code, out).toBe(0);
    expect(deps.probes).toEqual([]);
    expect(api.calls).toContain('GET /api/v1/namespaces/sidecar-injector/secrets/sidecar-injector-tls');
    expect(sent).toEqual(probePod());
    const report = JSON.parse(out) as ReturnType<typeof buildReport>;
    expect(report.ok).toBe(true);
    expect(byId(report.checks)['served-certificate'].status).toBe('warn');
    expect(byId(report.checks)['dry-run'].details).toEqual(['warning: a warning from the webhook']);
    expect(report.dryRun).toMatchObject({ namespace: 'shop', injected: true });
  });

  it('in the cluster: dials the Service by the name the API server uses; a missing sidecar exits 1', async () => {
    const api = fakeApi(clusterRoutes(() => ({ status: 201, body: probePodAsStored('shop'), warnings: [] })));
    const deps = fakeDeps(api, true, [certs.serving.cert]);
    const { code, out } = await run([], deps);
    expect(code).toBe(1);
    expect(deps.probes).toEqual(['sidecar-injector.sidecar-injector.svc:443 sidecar-injector.sidecar-injector.svc']);
    expect(api.calls).not.toContain('GET /api/v1/namespaces/sidecar-injector/secrets/sidecar-injector-tls');
    expect(out).toMatch(/^✓ served certificate +sidecar-injector\.sidecar-injector\.svc:443 presents/m);
    expect(out).toMatch(/^✗ dry-run pod .*WITHOUT the sidecar/m);
  });

  it('--namespace and --no-dry-run', async () => {
    const api = fakeApi({ ...clusterRoutes(ok(engineInjectedPod('shop'))), 'POST /api/v1/namespaces/team-a/pods?dryRun=All': ok(engineInjectedPod('team-a')) });
    expect((await run(['--namespace', 'team-a'], fakeDeps(api, false, undefined))).code).toBe(0);
    expect(api.calls).toContain('POST /api/v1/namespaces/team-a/pods?dryRun=All');
    const quiet = fakeApi(clusterRoutes(ok(engineInjectedPod('shop'))));
    const { out } = await run(['--no-dry-run'], fakeDeps(quiet, false, undefined));
    expect(quiet.calls.some((c) => c.startsWith('POST'))).toBe(false);
    expect(out).toMatch(/^- dry-run pod +not attempted \(--no-dry-run\)$/m);
  });

  it('a connection problem is one failure, exit 1; usage errors exit 2', async () => {
    const deps: CheckDeps = { ...fakeDeps(fakeApi({}), false, undefined), connect: async () => ({ error: 'cannot load --kubeconfig /x: ENOENT' }) };
    const { code, out } = await run([], deps);
    expect(code).toBe(1);
    expect(out).toMatch(/^✗ API server {16}cannot load --kubeconfig \/x: ENOENT$/m);
    const usage = await run(['--output', 'xml'], deps);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/^sidecar-injector check: --output must be text or json/);
  });
});

// ------------------------------------------------------------------------------------------------------------
// The adapter against real local servers.

describe('check-api', () => {
  let fake: FakeApiServer;
  let port: number;
  let client: { cert: string; key: string };

  beforeAll(async () => {
    client = generateDevCertificates({ service: 'client', namespace: 'test' }).serving;
    fake = new FakeApiServer({ tls: { cert: certs.serving.cert, key: certs.serving.key, clientCa: [client.cert] } });
    fake.dryRunWarnings = ['volume shared-data already exists; reused as it is', 'say "hi", then a \\ path'];
    await fake.start();
    port = fake.port;
  });
  afterAll(() => fake.stop());

  function kubeConfigFor(user: { token?: string; client?: { cert: string; key: string } }): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: b64(certs.ca.cert), skipTLSVerify: false }],
      users: [{ name: 'u', ...(user.token ? { token: user.token } : {}), ...(user.client ? { certData: b64(user.client.cert), keyData: b64(user.client.key) } : {}) }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return kc;
  }

  it('sends JSON with the kubeconfig credentials and returns status, body and each warning', async () => {
    const api = kubeApi(kubeConfigFor({ client }), 5_000);
    const reply = await api.request('POST', '/api/v1/namespaces/shop/pods?dryRun=All', { kind: 'Pod', metadata: { generateName: 'p-' } });
    expect(reply).toEqual({
      status: 201,
      // The body went as JSON: the server read its kind and generateName back.
      body: { kind: 'Pod', metadata: { generateName: 'p-', namespace: 'shop', name: 'p-dry' } },
      warnings: ['volume shared-data already exists; reused as it is', 'say "hi", then a \\ path'],
    });
    expect(fake.callers.at(-1)).toMatchObject({ method: 'POST', clientCn: 'client.test.svc' });
    const tokenApi = kubeApi(kubeConfigFor({ token: 's3cret' }), 5_000);
    const missing = await tokenApi.request('GET', '/api/v1/namespaces/nope');
    expect(missing.status).toBe(404);
    expect(fake.callers.at(-1)?.authorization).toBe('Bearer s3cret');
  });

  it('parses warning headers', () => {
    expect(parseWarningHeader('299 - "plain"')).toBe('plain');
    expect(parseWarningHeader('299 kube-apiserver "with \\"quotes\\""')).toBe('with "quotes"');
    expect(parseWarningHeader('garbage')).toBeUndefined();
  });

  it('collects the chain a TLS server presents, whatever its CA; reports a refused connection', async () => {
    const probe = await probeCertificateChain('127.0.0.1', port, 'localhost', 5_000);
    expect(probe.reached).toBe(true);
    if (!probe.reached) return;
    expect(new X509Certificate(probe.chain[0]!).fingerprint256).toBe(new X509Certificate(certs.serving.cert).fingerprint256);
    expect(verifyServedChain(probe.chain, [certs.ca.cert], '127.0.0.1', new Date())).toMatchObject({ ok: true });
    const closed = await probeCertificateChain('127.0.0.1', 1, '127.0.0.1', 2_000);
    expect(closed).toEqual({ reached: false, error: 'ECONNREFUSED' });
  });
});
