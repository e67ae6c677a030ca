/**
 * End to end through a real kube-apiserver (envtest, or the cluster in KUBECONFIG): the built server runs as a child
 * process, registered with the shipped webhook entries (manifests/base) pointed at it by `clientConfig.url`, and
 * every assertion reads what the API server stored or returned. Skips, saying what to set, without binaries.
 *
 * The tests run in order and share one API server: the webhook is killed in the last part (fail-open).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { CheckReport } from '../../src/cli/check-report.js';
import { kubeApi, type ApiReply, type KubeApi } from '../../src/cluster/check-api.js';
import { DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION } from '../../src/core/labels.js';
import type { Container, PodObject, SidecarMode } from '../../src/core/types.js';
import { repoRoot } from '../support/fixtures.js';
import { allContainers, expectInjectedInvariants, statusOf } from '../support/pod-assertions.js';
import { e2eAvailability, startEnvtest, type Envtest } from './envtest.js';
import { readyz, startWebhook, webhookCertificates, type WebhookCertificates, type WebhookProcess } from '../support/serve-process.js';

const availability = e2eAvailability();
if (!availability.available) console.warn(`test/e2e: ${availability.reason}`);
// The reason is in the name either way: which binaries or cluster ran it, or what to set so that it runs.
const suiteName = `sidecar injection through a real API server (${availability.reason})`;

const run = randomBytes(3).toString('hex');
const NS = {
  enabled: `e2e-${run}-enabled`,
  plain: `e2e-${run}-plain`,
  disabled: `e2e-${run}-disabled`,
  baseline: `e2e-${run}-baseline`,
  restricted: `e2e-${run}-restricted`,
};
const WEBHOOK_CONFIGURATION = `sidecar-injector-e2e-${run}`;
const INJECTOR_NAMESPACE = 'sidecar-injector';
const APP_IMAGE = 'nginx:1.27.4';
/** Where the API server reaches this machine: loopback for envtest; set it for a cluster in containers or VMs. */
const WEBHOOK_HOST = process.env.E2E_WEBHOOK_HOST?.trim() || '127.0.0.1';
const WEBHOOK_BIND = WEBHOOK_HOST === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
const INJECTION_WAIT_MS = 30_000;

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function appPod(name: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name, ...extra.labels }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { containers: [{ name: 'nginx', image: APP_IMAGE, ports: [{ containerPort: 80 }] }] },
  };
}

/** A pod as a Job's controller creates it from the template (no controller-manager here: created directly). */
function jobPod(name: string, annotations?: Record<string, string>): PodObject {
  const uid = '6f1d8e0a-2b4c-4d5e-8f70-9a1b2c3d4e5f';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { 'controller-uid': uid, 'job-name': 'nightly', 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': 'nightly' },
      ...(annotations ? { annotations } : {}),
    },
    spec: {
      restartPolicy: 'OnFailure',
      containers: [{ name: 'report', image: 'busybox:1.37.0', command: ['sh', '-c', 'echo report done'] }],
    },
  };
}

function sidecarOf(pod: PodObject): Container | undefined {
  return allContainers(pod).find((c) => c.name === 'sidecar');
}

function expectNotInjected(pod: PodObject): void {
  expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeUndefined();
  expect(sidecarOf(pod)).toBeUndefined();
  expect((pod.spec?.volumes ?? []).some((v) => v.name === 'shared-data')).toBe(false);
  expect(pod.spec?.shareProcessNamespace).toBeUndefined();
}

/** What the injection put into a pod, free of what differs between any two pods (names, uids, token volume name). */
/**
 * Names the API server generates per request: the projected service-account token volume is
 * `kube-api-access-<5 random characters>`, and the ServiceAccount admission plugin (reinvoked after the webhook)
 * mounts it into the sidecar too. Two creates of one pod differ there, not in what the webhook injected.
 */
const GENERATED_TOKEN_VOLUME = /\bkube-api-access-[a-z0-9]{5}\b/g;

/** What the webhook injected, with the names the API server generates per request masked. */
function injectedParts(pod: PodObject): unknown {
  const annotations = pod.metadata?.annotations ?? {};
  const parts = {
    status: annotations[STATUS_ANNOTATION],
    defaultContainer: annotations[DEFAULT_CONTAINER_ANNOTATION],
    sidecar: sidecarOf(pod),
    volume: pod.spec?.volumes?.find((v) => v.name === 'shared-data'),
    mounts: pod.spec?.containers.map((c) => ({ name: c.name, mounts: (c.volumeMounts ?? []).filter((m) => m.name === 'shared-data') })),
    shareProcessNamespace: pod.spec?.shareProcessNamespace,
  };
  return JSON.parse(JSON.stringify(parts).replace(GENERATED_TOKEN_VOLUME, 'kube-api-access-(generated)')) as unknown;
}

describe.skipIf(!availability.available)(suiteName, { timeout: 90_000 }, () => {
  let cluster: Envtest;
  let api: KubeApi;
  let certs: WebhookCertificates;
  let webhook: WebhookProcess | undefined;
  let serverMinor = 0;
  const createdNamespaces: string[] = [];

  async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiReply> {
    const reply = await api.request(method, path, body);
    if (reply.status >= 300) {
      throw new Error(`${method} ${path}: HTTP ${reply.status} ${JSON.stringify(reply.body)}\nwebhook:\n${webhook?.output().slice(-4000) ?? ''}`);
    }
    return reply;
  }

  async function createIgnoringConflict(path: string, body: unknown): Promise<boolean> {
    const reply = await api.request('POST', path, body);
    if (reply.status === 409) return false;
    if (reply.status >= 300) throw new Error(`POST ${path}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
    return true;
  }

  /** A namespace with its `default` ServiceAccount: no controller-manager creates it on envtest. */
  async function ensureNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    const created = await createIgnoringConflict('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    if (created) createdNamespaces.push(name);
    await createIgnoringConflict(`/api/v1/namespaces/${name}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default' },
    });
  }

  async function createPod(namespace: string, pod: PodObject, dryRun = false): Promise<{ pod: PodObject; warnings: string[] }> {
    const reply = await call('POST', `/api/v1/namespaces/${namespace}/pods${dryRun ? '?dryRun=All' : ''}`, pod);
    return { pod: reply.body as PodObject, warnings: reply.warnings };
  }

  async function getPod(namespace: string, name: string): Promise<PodObject> {
    return (await call('GET', `/api/v1/namespaces/${namespace}/pods/${name}`)).body as PodObject;
  }

  /** The mode the injector picks for an ordinary pod here (classic without nodes; native on >= 1.33 clusters). */
  async function ordinaryMode(): Promise<SidecarMode> {
    const { pod } = await createPod(NS.enabled, appPod(`mode-${randomBytes(3).toString('hex')}`), true);
    return statusOf(pod).mode;
  }

  function webhookConfiguration(port: number): MutatingWebhookConfiguration {
    const shipped = parse(readFileSync(join(repoRoot, 'manifests', 'base', 'mutatingwebhookconfiguration.yaml'), 'utf8')) as MutatingWebhookConfiguration;
    const host = isIP(WEBHOOK_HOST) === 6 ? `[${WEBHOOK_HOST}]` : WEBHOOK_HOST;
    return {
      ...shipped,
      metadata: { name: WEBHOOK_CONFIGURATION, labels: { 'app.kubernetes.io/part-of': 'sidecar-injector-e2e' } },
      webhooks: (shipped.webhooks ?? []).map((entry) => ({
        ...entry,
        clientConfig: { url: `https://${host}:${port}/mutate`, caBundle: b64(certs.bundle.ca.cert) },
      })),
    };
  }

  /** The API server picks up webhook configurations asynchronously: poll with dry-run pods until one is injected. */
  async function waitUntilInjecting(): Promise<void> {
    const deadline = Date.now() + INJECTION_WAIT_MS;
    let last = '';
    while (Date.now() < deadline) {
      const reply = await api.request('POST', `/api/v1/namespaces/${NS.enabled}/pods?dryRun=All`, appPod(`probe-${randomBytes(3).toString('hex')}`));
      const annotations = (reply.body as PodObject | undefined)?.metadata?.annotations;
      if (reply.status < 300 && annotations?.[STATUS_ANNOTATION] !== undefined) return;
      last = `HTTP ${reply.status}, warnings ${JSON.stringify(reply.warnings)}`;
      await sleep(500);
    }
    throw new Error(`the API server did not call the webhook within ${INJECTION_WAIT_MS} ms (last: ${last})\n` +
      `webhook:\n${webhook?.output().slice(-4000) ?? ''}\ncontrol plane:\n${cluster.logs().slice(-4000)}`);
  }

  function runCli(args: string[]): { code: number | null; stdout: string; stderr: string } {
    const env = { ...process.env };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.KUBERNETES_SERVICE_PORT;
    const result = spawnSync(process.execPath, [join(repoRoot, 'dist', 'main.js'), ...args], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  function kubectl(binary: string, args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
    const result = spawnSync(binary, [...args, '--kubeconfig', cluster.kubeconfigPath], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
      ...(input === undefined ? {} : { input }),
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  /** `kubectl kustomize` needs kustomize v5 (kubectl >= 1.27, manifests/README.md): the assets' kubectl may be older. */
  function kustomizeRenderer(): string | undefined {
    const candidates = [...new Set([cluster.kubectl, 'kubectl'].filter((k): k is string => k !== undefined))];
    return candidates.find((binary) => {
      const result = spawnSync(binary, ['version', '--client', '-o', 'json'], { encoding: 'utf8', timeout: 15_000 });
      if (result.status !== 0) return false;
      const minor = Number.parseInt((JSON.parse(result.stdout) as { clientVersion?: { minor?: string } }).clientVersion?.minor ?? '0', 10);
      return minor >= 27;
    });
  }

  async function cleanup(): Promise<void> {
    await webhook?.kill();
    webhook = undefined;
    if (cluster !== undefined && cluster.kind === 'existing' && api !== undefined) {
      // A real cluster keeps what we made: remove it (envtest's etcd is thrown away whole).
      await api.request('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIGURATION}`).catch(() => undefined);
      for (const name of createdNamespaces) await api.request('DELETE', `/api/v1/namespaces/${name}`).catch(() => undefined);
    }
    await cluster?.stop();
    certs?.remove();
  }

  beforeAll(async () => {
    cluster = await startEnvtest();
    try {
      api = kubeApi(cluster.kubeConfig, 15_000);
      const version = (await call('GET', '/version')).body as { gitVersion: string; minor: string };
      serverMinor = Number.parseInt(version.minor, 10);
      console.info(`test/e2e: ${cluster.kind} API server ${version.gitVersion}`);

      await ensureNamespace(NS.enabled, { 'sidecar-injection': 'enabled' });
      await ensureNamespace(NS.plain);
      await ensureNamespace(NS.disabled, { 'sidecar-injection': 'disabled' });
      await ensureNamespace(NS.baseline, { 'sidecar-injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'baseline' });
      await ensureNamespace(NS.restricted, { 'sidecar-injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' });

      certs = await webhookCertificates(WEBHOOK_HOST);
      // As in production: cluster access on, so the namespace watch supplies Pod Security levels and the version.
      webhook = await startWebhook({ certs, bindHost: WEBHOOK_BIND, args: ['--cluster', 'on', '--kubeconfig', cluster.kubeconfigPath] });
      const port = webhook.port;
      const readyBy = Date.now() + INJECTION_WAIT_MS;
      while ((await readyz(port, certs.bundle.ca.cert)) !== 200) {
        if (Date.now() > readyBy) throw new Error(`webhook /readyz never 200:\n${webhook.output().slice(-4000)}`);
        await sleep(250);
      }
      // The version decides whether a native-sidecar override is honoured: wait until it is known.
      await webhook.waitForLine((line) => typeof line.apiServerVersion === 'string' && line.apiServerVersion.startsWith('v'));
      await call('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', webhookConfiguration(port));
      await waitUntilInjecting();
    } catch (err) {
      await cleanup();
      throw err;
    }
  }, 180_000);

  afterAll(async () => {
    await cleanup();
  }, 60_000);

  it('a pod in a labelled namespace is stored with the sidecar, the volume, the mounts and the annotations', async () => {
    const { pod: returned } = await createPod(NS.enabled, appPod('reference'));
    const stored = await getPod(NS.enabled, 'reference');
    expect(injectedParts(stored)).toEqual(injectedParts(returned));
    const status = expectInjectedInvariants(stored);
    const sidecar = sidecarOf(stored);
    expect(sidecar?.image).toBe('busybox:1.37.0');
    expect(sidecar?.stdin).toBe(true);
    expect(sidecar?.tty).toBe(true);
    expect(sidecar?.securityContext?.capabilities?.add).toContain('SYS_PTRACE');
    expect(sidecar?.resources).toEqual({ requests: { cpu: '25m', memory: '32Mi' }, limits: { cpu: '25m', memory: '32Mi' } });
    expect(sidecar?.volumeMounts).toContainEqual({ name: 'shared-data', mountPath: '/pod-data' });
    // The API server defaulted our container like any other.
    expect(sidecar?.imagePullPolicy).toBe('IfNotPresent');
    expect(sidecar?.terminationMessagePath).toBe('/dev/termination-log');
    expect(stored.spec?.volumes).toContainEqual({ name: 'shared-data', emptyDir: {} });
    // The ServiceAccount admission plugin's token volume is still there, beside ours.
    expect(stored.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(true);
    expect(stored.spec?.containers.find((c) => c.name === 'nginx')?.volumeMounts).toContainEqual({ name: 'shared-data', mountPath: '/pod-data' });
    expect(stored.spec?.shareProcessNamespace).toBe(true);
    expect(stored.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION]).toBe('nginx');
    expect(status).toMatchObject({ sidecar: 'sidecar', mounted: ['nginx'], podSecurityLevel: 'privileged', reduced: [] });
    // envtest has no nodes: the kubelet versions are unknown, so `nativeSidecar: auto` picks classic.
    if (cluster.kind === 'envtest') expect(status.mode).toBe('classic');
  });

  it.each<{ what: string; namespace: string; labels: Record<string, string> }>([
    { what: 'a pod labelled sidecar-injection=disabled in a labelled namespace', namespace: NS.enabled, labels: { 'sidecar-injection': 'disabled' } },
    { what: 'a pod in an unlabelled namespace', namespace: NS.plain, labels: {} },
    { what: 'a pod opting in inside a namespace labelled disabled', namespace: NS.disabled, labels: { 'sidecar-injection': 'enabled' } },
  ])('$what is stored unchanged', async ({ namespace, labels }) => {
    const name = `untouched-${randomBytes(3).toString('hex')}`;
    await createPod(namespace, appPod(name, { labels }));
    expectNotInjected(await getPod(namespace, name));
  });

  it('a pod labelled sidecar-injection=enabled in an unlabelled namespace is injected', async () => {
    await createPod(NS.plain, appPod('opted-in', { labels: { 'sidecar-injection': 'enabled' } }));
    expectInjectedInvariants(await getPod(NS.plain, 'opted-in'));
  });

  it('--dry-run=server returns exactly the injection the real create stores (raw and through client-node)', async () => {
    const { pod: dry } = await createPod(NS.enabled, appPod('twin'), true);
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const viaClient = await core.createNamespacedPod({ namespace: NS.enabled, body: appPod('twin') as V1Pod, dryRun: 'All' });
    await createPod(NS.enabled, appPod('twin'));
    const stored = await getPod(NS.enabled, 'twin');
    expectInjectedInvariants(dry);
    expect(injectedParts(dry)).toEqual(injectedParts(stored));
    expect(injectedParts(JSON.parse(JSON.stringify(viaClient)) as PodObject)).toEqual(injectedParts(stored));
  });

  it('kubectl run: restartPolicy Always is injected; Never follows the mode (classic skips it with a warning)', async (ctx) => {
    if (cluster.kubectl === undefined) ctx.skip('no kubectl (in KUBEBUILDER_ASSETS or on PATH)');
    const kubectlBinary = cluster.kubectl!;
    const always = kubectl(kubectlBinary, ['run', 'run-always', '-n', NS.enabled, `--image=${APP_IMAGE}`, '--restart=Always']);
    expect(always.code, always.stderr).toBe(0);
    expectInjectedInvariants(await getPod(NS.enabled, 'run-always'));

    const mode = await ordinaryMode();
    const never = kubectl(kubectlBinary, ['run', 'run-never', '-n', NS.enabled, `--image=${APP_IMAGE}`, '--restart=Never']);
    expect(never.code, never.stderr).toBe(0);
    const stored = await getPod(NS.enabled, 'run-never');
    if (mode === 'classic') {
      // A classic sidecar never exits, so a run-to-completion pod is skipped (classicRunToCompletion: skip).
      expectNotInjected(stored);
      expect(never.stderr).toContain('Warning: restartPolicy Never: a classic sidecar would keep this Job pod from completing; not injected');
    } else {
      expect(expectInjectedInvariants(stored).mode).toBe('native');
    }
  });

  it("a Job template's pod (restartPolicy OnFailure) follows the mode too, and says why", async () => {
    const mode = await ordinaryMode();
    const { warnings } = await createPod(NS.enabled, jobPod('job-like'));
    const stored = await getPod(NS.enabled, 'job-like');
    if (mode === 'classic') {
      expectNotInjected(stored);
      expect(warnings).toContain('restartPolicy OnFailure: a classic sidecar would keep this Job pod from completing; not injected');
    } else {
      expect(expectInjectedInvariants(stored).mode).toBe('native');
    }
  });

  it('a native-sidecar override is honoured from Kubernetes 1.29, refused (with a warning) before', async () => {
    const { warnings } = await createPod(NS.enabled, jobPod('job-native', { 'sidecar-injector.io/native-sidecar': 'true' }));
    const stored = await getPod(NS.enabled, 'job-native');
    if (serverMinor >= 29) {
      expect(expectInjectedInvariants(stored).mode).toBe('native');
      // Stored as an init container that restarts: the API server kept the field, so the Job can complete.
      expect(stored.spec?.initContainers?.[0]).toMatchObject({ name: 'sidecar', restartPolicy: 'Always' });
    } else {
      expectNotInjected(stored);
      expect(warnings.some((w) => w.startsWith('native sidecar requested but the API server is 1.'))).toBe(true);
    }
  });

  it('Pod Security baseline: the pod is admitted, with a sidecar that has no SYS_PTRACE', async () => {
    const { pod: created } = await createPod(NS.baseline, appPod('psa-baseline'));
    const status = expectInjectedInvariants(created);
    expect(status.podSecurityLevel).toBe('baseline');
    expect(status.reduced.length).toBeGreaterThan(0);
    expect(sidecarOf(created)?.securityContext?.capabilities?.add ?? []).not.toContain('SYS_PTRACE');
  });

  it('Pod Security restricted: a compliant pod stays admissible with the sidecar', async () => {
    const pod = appPod('psa-restricted');
    pod.spec = {
      securityContext: { runAsNonRoot: true, runAsUser: 101, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        { name: 'nginx', image: APP_IMAGE, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
      ],
    };
    const { pod: created } = await createPod(NS.restricted, pod);
    expect(expectInjectedInvariants(created).podSecurityLevel).toBe('restricted');
    expect(sidecarOf(created)?.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65534,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(sidecarOf(created)?.securityContext?.capabilities?.add).toBeUndefined();
  });

  it('kubectl apply --dry-run=server of manifests/base is accepted', async (ctx) => {
    const renderer = kustomizeRenderer();
    if (renderer === undefined) ctx.skip('no kubectl >= 1.27 (kustomize v5) to build manifests/base');
    const applier = cluster.kubectl ?? renderer!;
    // Server-side dry-run of the Namespace does not create it; the namespaced objects need it to exist.
    await ensureNamespace(INJECTOR_NAMESPACE);
    const rendered = kubectl(renderer!, ['kustomize', join(repoRoot, 'manifests', 'base')]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const applied = kubectl(applier, ['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
    // Before 1.26, kubectl's client-side validation (the server has no field validation yet) rejects fields the
    // server does not know: topologySpreadConstraints[].matchLabelKeys (1.25), PDB unhealthyPodEvictionPolicy (1.26).
    expect(applied.code, `API server 1.${serverMinor}, ${applier}:\n${applied.stdout}\n${applied.stderr}`).toBe(0);
    for (const object of [
      'namespace/sidecar-injector',
      'serviceaccount/sidecar-injector',
      'deployment.apps/sidecar-injector',
      'service/sidecar-injector',
      'mutatingwebhookconfiguration.admissionregistration.k8s.io/sidecar-injector',
    ]) {
      expect(applied.stdout).toMatch(new RegExp(`^${object.replace(/[./]/g, '\\$&')} .*\\(server dry run\\)$`, 'm'));
    }
  });

  it('check passes against the url webhook', () => {
    const json = runCli(['check', '--kubeconfig', cluster.kubeconfigPath, '--webhook-config', WEBHOOK_CONFIGURATION, '--namespace', NS.enabled, '-o', 'json']);
    expect(json.code, `${json.stdout}\n${json.stderr}`).toBe(0);
    const report = JSON.parse(json.stdout) as CheckReport;
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    expect(status).toMatchObject({
      'api-server': 'pass',
      'webhook-configuration': 'pass',
      'webhook-entries': 'pass',
      'ca-bundle': 'pass',
      'served-certificate': 'pass',
      service: 'skip',
      endpoints: 'skip',
      'dry-run': 'pass',
    });
    expect(report.dryRun).toMatchObject({ namespace: NS.enabled, injected: true });
    if (cluster.kind === 'envtest') {
      expect(status['pod-security']).toBe('warn');
      expect(report.namespaces?.enabled).toEqual(
        expect.arrayContaining([
          { name: NS.baseline, podSecurity: 'baseline' },
          { name: NS.enabled, podSecurity: 'privileged' },
          { name: NS.restricted, podSecurity: 'restricted' },
        ]),
      );
    }
    const text = runCli(['check', '--kubeconfig', cluster.kubeconfigPath, '--webhook-config', WEBHOOK_CONFIGURATION, '--namespace', NS.restricted]);
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toMatch(/^✓ dry-run pod +dry-run pod in namespace .* came back with the sidecar \(\w+, Pod Security restricted[,)]/m);
  });

  it('with the webhook gone and failurePolicy Ignore, pods are created without the sidecar; check fails', async () => {
    await webhook?.kill();
    await createPod(NS.enabled, appPod('while-down'));
    expectNotInjected(await getPod(NS.enabled, 'while-down'));

    const json = runCli(['check', '--kubeconfig', cluster.kubeconfigPath, '--webhook-config', WEBHOOK_CONFIGURATION, '--namespace', NS.enabled, '-o', 'json']);
    expect(json.code, json.stdout).toBe(1);
    const report = JSON.parse(json.stdout) as CheckReport;
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(byId['served-certificate']).toMatchObject({ status: 'warn', message: expect.stringContaining('ECONNREFUSED') });
    expect(byId['dry-run']).toMatchObject({ status: 'fail', message: expect.stringContaining('WITHOUT the sidecar') });
  });
});
