/**
 * `serve --cluster …` as a process (dist/main.js, built by test/global-setup.ts): the flags, start-up errors,
 * and the wiring of the cluster facts into /readyz and admissions, against the fake API server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { POD_SECURITY_ENFORCE_LABEL } from '../../src/cluster/facts.js';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { decodePatch, send, testCertificates, type AdmissionAnswer } from '../http/helpers.js';
import { loadFixture, repoRoot } from '../support/fixtures.js';
import { killServedProcesses, serveEnv, spawnServe, type ServedProcess } from '../support/serve-process.js';
import { FakeApiServer } from './fake-apiserver.js';

const cleanEnv = serveEnv;

const FORBID_CLIENT_NODE = join(repoRoot, 'test', 'cluster', 'support', 'forbid-client-node.mjs');

function serve(args: string[], env: NodeJS.ProcessEnv = cleanEnv(), nodeFlags: string[] = []): ServedProcess {
  return spawnServe(args, { env, nodeFlags });
}

function statusOf(answer: AdmissionAnswer): Record<string, unknown> | undefined {
  for (const op of decodePatch(answer) as { path: string; value: unknown }[]) {
    const annotations =
      op.path === '/metadata/annotations' ? (op.value as Record<string, string>) : op.path === '/metadata/annotations/sidecar-injector.io~1status' ? { 'sidecar-injector.io/status': op.value as string } : undefined;
    const status = annotations?.['sidecar-injector.io/status'];
    if (status !== undefined) return JSON.parse(status) as Record<string, unknown>;
  }
  return undefined;
}

describe('serve --cluster', () => {
  let dir: string;
  let tlsFlags: string[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'serve-cluster-'));
    await writeCertificateFiles(dir, testCertificates());
    tlsFlags = ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')];
  });
  afterEach(() => {
    killServedProcesses();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['an unknown mode', ['--cluster', 'maybe'], 2, /--cluster must be one of auto, on, off, got "maybe"/],
    ['on without any kubeconfig', ['--cluster', 'on'], 1, /--cluster on needs --kubeconfig, KUBECONFIG, or a pod/],
    ['off with --kubeconfig', ['--cluster', 'off', '--kubeconfig', '/nowhere'], 1, /--kubeconfig has no effect with --cluster off/],
    ['a missing kubeconfig', ['--kubeconfig', '/nowhere/kubeconfig'], 1, /cannot load --kubeconfig \/nowhere\/kubeconfig: .*ENOENT/],
  ])('%s: refuses to start', async (_name, flags, code, message) => {
    const served = serve(['--port', '0', '--metrics-port', '0', ...tlsFlags, ...flags]);
    expect((await served.exited).code).toBe(code);
    expect(served.stderr()).toMatch(message);
  });

  it('auto outside a cluster is off, says so, and never loads @kubernetes/client-node', async () => {
    const served = serve(
      ['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...tlsFlags],
      cleanEnv(),
      ['--import', FORBID_CLIENT_NODE],
    );
    const line = await served.waitForLine((l) => l.msg === 'cluster access');
    expect(line).toMatchObject({ cluster: 'off', why: expect.stringContaining('not in a cluster') as string });
    const port = (await served.waitForLine((l) => l.msg === 'listening')).port as number;
    const answer = JSON.parse((await send({ port, body: loadFixture('create-pod.json').text })).body) as AdmissionAnswer;
    expect(answer.response.patchType).toBe('JSONPatch');
    expect((await send({ port, method: 'GET', path: '/readyz', headers: {} })).status).toBe(200);
    served.child.kill('SIGTERM');
    expect((await served.exited).code).toBe(0);
    expect(served.stderr()).toBe('');
  });

  it('the guard in the test above works: with a kubeconfig the same process cannot start', async () => {
    const served = serve(['--port', '0', '--metrics-port', '0', '--kubeconfig', join(dir, 'tls.crt'), ...tlsFlags], cleanEnv(), [
      '--import',
      FORBID_CLIENT_NODE,
    ]);
    expect((await served.exited).code).toBe(1);
    expect(served.stderr()).toMatch(/cannot load @kubernetes\/client-node: @kubernetes\/client-node is forbidden/);
  });

  describe('with a kubeconfig (fake API server)', () => {
    let api: FakeApiServer;
    let kubeconfig: string;
    beforeAll(async () => {
      api = new FakeApiServer();
      await api.start();
      api.put('namespaces', {
        name: 'inject',
        labels: { 'sidecar-injection': 'enabled', [POD_SECURITY_ENFORCE_LABEL]: 'restricted' },
      });
      api.put('namespaces', { name: 'plain' });
      api.put('nodes', { name: 'node-1', kubeletVersion: 'v1.33.2' });
      api.put('nodes', { name: 'node-2', kubeletVersion: 'v1.34.0' });
      kubeconfig = join(dir, 'kubeconfig.yaml');
      writeFileSync(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          'current-context: fake',
          'clusters: [{name: fake, cluster: {server: "' + api.url + '", insecure-skip-tls-verify: true}}]',
          'users: [{name: fake, user: {}}]',
          'contexts: [{name: fake, context: {cluster: fake, user: fake}}]',
          '',
        ].join('\n'),
      );
    });
    afterAll(async () => api.stop());

    it('is not ready until the caches sync, then injects with the namespace’s Pod Security level and native mode', async () => {
      // The first namespace list fails: /readyz stays 503 until the watch restarts (about a second).
      api.failLists.namespaces = 1;
      const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...tlsFlags], cleanEnv({ KUBECONFIG: kubeconfig }));
      const listening = await served.waitForLine((l) => l.msg === 'listening');
      const port = listening.port as number;
      expect(await served.waitForLine((l) => l.msg === 'cluster access')).toMatchObject({
        cluster: 'on',
        source: `KUBECONFIG ${kubeconfig}`,
        server: api.url,
      });
      expect((await send({ port, method: 'GET', path: '/readyz', headers: {} })).status).toBe(503);
      await served.waitForLine((l) => l.msg === 'cluster: namespace and node caches synced');
      await served.waitForLine((l) => l.msg === 'cluster: API server version' && l.apiServerVersion === 'v1.33.1');
      expect((await send({ port, method: 'GET', path: '/readyz', headers: {} })).status).toBe(200);

      const fixture = loadFixture('create-pod.json');
      const injected = JSON.parse((await send({ port, body: fixture.text })).body) as AdmissionAnswer;
      expect(injected.response.allowed).toBe(true);
      expect(statusOf(injected)).toMatchObject({ mode: 'native', podSecurityLevel: 'restricted' });

      // The namespace labels reach the engine: an unlabelled namespace is not injected (defence in depth).
      const plain = { ...fixture.review, request: { ...fixture.review.request, namespace: 'plain' } };
      const skipped = JSON.parse((await send({ port, body: JSON.stringify(plain) })).body) as AdmissionAnswer;
      expect(skipped.response).toMatchObject({ allowed: true });
      expect(skipped.response.patch).toBeUndefined();

      // A namespace the API server does not know: our own fault, admitted without a patch, with a warning.
      const unknown = { ...fixture.review, request: { ...fixture.review.request, namespace: 'unknown' } };
      const failedOpen = JSON.parse((await send({ port, body: JSON.stringify(unknown) })).body) as AdmissionAnswer;
      expect(failedOpen.response.allowed).toBe(true);
      expect(failedOpen.response.patch).toBeUndefined();
      expect(failedOpen.response.warnings?.join('\n')).toMatch(/internal error/);

      served.child.kill('SIGTERM');
      expect((await served.exited).code).toBe(0);
    });
  });
});
