/**
 * Missed pods through a real API server (the envtest convention, test/e2e/envtest.ts): runs where
 * KUBEBUILDER_ASSETS (or a disposable cluster's KUBECONFIG) is set, skipped with the reason otherwise.
 *
 * With the webhook stopped (not registered at all), a pod of a Deployment is created in a labelled namespace and
 * stored without the sidecar; `check` lists it under its Deployment; `repair --yes` refuses while no dry-run pod
 * comes back injected; with the webhook started and registered, `repair --yes` patches the Deployment's pod
 * template like `kubectl rollout restart`. There is no controller-manager in envtest: the patch is asserted, not
 * new pods (the Deployment → ReplicaSet → pod chain is created by hand).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { CheckReport } from '../../src/cli/check-report.js';
import { runCheck } from '../../src/cli/check.js';
import { RESTARTED_AT_ANNOTATION, runRepair } from '../../src/cli/repair.js';
import { kubeApi, type ApiReply, type KubeApi } from '../../src/cluster/check-api.js';
import { STATUS_ANNOTATION } from '../../src/core/labels.js';
import type { PodObject } from '../../src/core/types.js';
import { repoRoot } from '../support/fixtures.js';
import { e2eAvailability, startEnvtest, type Envtest } from './envtest.js';
import { startWebhook, webhookCertificates, type WebhookCertificates, type WebhookProcess } from '../support/serve-process.js';

const availability = e2eAvailability();
const suite = availability.available ? describe : describe.skip;
const run = randomBytes(3).toString('hex');
const NS = `missed-${run}`;
const WEBHOOK_CONFIGURATION = `sidecar-injector-missed-${run}`;
const WEBHOOK_HOST = process.env.E2E_WEBHOOK_HOST?.trim() || '127.0.0.1';
const WAIT_MS = 30_000;
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

suite(`missed pods through a real API server (${availability.reason})`, () => {
  let cluster: Envtest;
  let api: KubeApi;
  let certs: WebhookCertificates | undefined;
  let webhook: WebhookProcess | undefined;

  async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiReply> {
    const reply = await api.request(method, path, body);
    if (reply.status >= 300) throw new Error(`${method} ${path}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply;
  }

  async function command(runner: typeof runCheck, argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runner(['--kubeconfig', cluster.kubeconfigPath, ...argv], { stdout, stderr, env: {} });
    return { code, out: stdout.text, err: stderr.text };
  }

  const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27.4' }] } };

  beforeAll(async () => {
    cluster = await startEnvtest();
    api = kubeApi(cluster.kubeConfig, 15_000);
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'sidecar-injection': 'enabled' } } });
    // No controller-manager: the ServiceAccount admission plugin needs the namespace's default account.
    await call('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    const deployment = (await call('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template },
    })).body as Deployment;
    const owner = (kind: string, name: string, uid: string) => [{ apiVersion: 'apps/v1', kind, name, uid, controller: true, blockOwnerDeletion: true }];
    const replicaSet = (await call('POST', `/apis/apps/v1/namespaces/${NS}/replicasets`, {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web-5f6d7c8b9a', labels: { app: 'web', 'pod-template-hash': '5f6d7c8b9a' }, ownerReferences: owner('Deployment', 'web', deployment.metadata!.uid!) },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web', 'pod-template-hash': '5f6d7c8b9a' } }, template: { ...template, metadata: { labels: { app: 'web', 'pod-template-hash': '5f6d7c8b9a' } } } },
    })).body as { metadata: { uid: string } };
    // The webhook is stopped (no configuration registered): the pod is stored as sent.
    const pod = (await call('POST', `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-5f6d7c8b9a-x7k2p', labels: { app: 'web', 'pod-template-hash': '5f6d7c8b9a' }, ownerReferences: owner('ReplicaSet', 'web-5f6d7c8b9a', replicaSet.metadata.uid) },
      spec: template.spec,
    })).body as PodObject;
    expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeUndefined();
  }, 120_000);

  afterAll(async () => {
    await webhook?.kill();
    if (api !== undefined) {
      await api.request('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIGURATION}`).catch(() => undefined);
      await api.request('DELETE', `/api/v1/namespaces/${NS}`).catch(() => undefined);
    }
    certs?.remove();
    await cluster?.stop();
  }, 60_000);

  it('check lists the pod under its Deployment, with the command that fixes it', async () => {
    const { out } = await command(runCheck, ['--no-dry-run', '-o', 'json']);
    const report = JSON.parse(out) as CheckReport;
    const ours = report.missedPods?.workloads.filter((w) => w.namespace === NS);
    expect(ours, out).toEqual([
      expect.objectContaining({ kind: 'Deployment', name: 'web', pods: 1, fix: `kubectl rollout restart deployment/web -n ${NS}` }),
    ]);
    expect(report.checks.find((c) => c.id === 'missed-pods')?.status).toBe('warn');
  });

  it('repair --yes refuses while the webhook does not answer, and changes nothing', async () => {
    const { code, out } = await command(runRepair, ['--namespace', NS, '--yes']);
    expect(code, out).toBe(1);
    expect(out).toMatch(/nothing restarted: dry-run pod in namespace .* WITHOUT the sidecar/);
    const deployment = (await call('GET', `/apis/apps/v1/namespaces/${NS}/deployments/web`)).body as Deployment;
    expect(deployment.spec?.template.metadata?.annotations?.[RESTARTED_AT_ANNOTATION]).toBeUndefined();
  });

  it('with the webhook running, repair --yes patches the Deployment template like kubectl rollout restart', async () => {
    certs = await webhookCertificates(WEBHOOK_HOST);
    webhook = await startWebhook({ certs, bindHost: WEBHOOK_HOST === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0', args: ['--cluster', 'on', '--kubeconfig', cluster.kubeconfigPath] });
    const shipped = parse(readFileSync(join(repoRoot, 'manifests', 'base', 'mutatingwebhookconfiguration.yaml'), 'utf8')) as MutatingWebhookConfiguration;
    const host = isIP(WEBHOOK_HOST) === 6 ? `[${WEBHOOK_HOST}]` : WEBHOOK_HOST;
    await call('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      ...shipped,
      metadata: { name: WEBHOOK_CONFIGURATION },
      webhooks: (shipped.webhooks ?? []).map((entry) => ({
        ...entry,
        clientConfig: { url: `https://${host}:${webhook!.port}/mutate`, caBundle: b64(certs!.bundle.ca.cert) },
      })),
    });
    // The API server picks a new configuration up asynchronously: retry until repair proves injection.
    const deadline = Date.now() + WAIT_MS;
    let result = await command(runRepair, ['--namespace', NS, '--yes']);
    while (result.code !== 0 && Date.now() < deadline) {
      await sleep(500);
      result = await command(runRepair, ['--namespace', NS, '--yes']);
    }
    expect(result.code, `${result.out}${result.err}\n${webhook.output().slice(-2000)}`).toBe(0);
    expect(result.out).toContain(`✓ restarted: ${NS} deployment/web (1 pod)`);
    // The webhook is back, and the pod created while it was away is still listed (a restart replaces it; there is
    // no controller-manager here to do so).
    const after = JSON.parse((await command(runCheck, ['--webhook-config', WEBHOOK_CONFIGURATION, '--namespace', NS, '-o', 'json'])).out) as CheckReport;
    expect(after.missedPods?.workloads.filter((w) => w.namespace === NS)).toEqual([expect.objectContaining({ kind: 'Deployment', name: 'web', pods: 1 })]);
    const deployment = (await call('GET', `/apis/apps/v1/namespaces/${NS}/deployments/web`)).body as Deployment;
    expect(deployment.spec?.template.metadata?.annotations?.[RESTARTED_AT_ANNOTATION]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(deployment.spec?.template.metadata?.labels).toEqual({ app: 'web' });
  }, 90_000);
});
