/**
 * Certificates in `serve` as a process (dist/main.js, built by test/global-setup.ts): the file reload wired with
 * its metrics, and `--self-managed-certs` against the fake API server (test/cluster/fake-apiserver.ts):
 * the Secret is created before the listener opens, the caBundle is written, and a renewal by another replica is
 * picked up through the watch.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pemCertificates } from '../../src/cluster/ca-bundle.js';
import { bootstrapCertificates, connectSelfManagedCertificates } from '../../src/cluster/self-managed.js';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { generateServingCertificate, renewalTime } from '../../src/tls/certificates.js';
import { FakeApiServer } from '../cluster/fake-apiserver.js';
import { killServedProcesses, serveEnv, spawnServe, type ServedProcess } from '../support/serve-process.js';
import { testCertificates } from '../http/helpers.js';

const NAMESPACE = 'sidecar-injector-test';

function serve(args: string[], env: Record<string, string> = {}): ServedProcess {
  return spawnServe(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...args], {
    env: serveEnv({ POD_NAMESPACE: NAMESPACE, ...env }),
  });
}

async function handshake(port: number, ca: string): Promise<string> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s));
    s.once('error', reject);
  });
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

/** The certificate a new handshake gets, without verifying it (for certificates that do not name 127.0.0.1). */
async function servedCertificate(port: number): Promise<string> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'sidecar-injector.sidecar-injector-test.svc' }, () => resolve(s));
    s.once('error', reject);
  });
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

const fingerprint = (pem: string | undefined) => new X509Certificate(pem ?? '').fingerprint256;

async function stop(served: ServedProcess): Promise<void> {
  served.child.kill('SIGTERM');
  expect((await served.exited).code).toBe(0);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'serve-certs-'));
});
afterEach(async () => {
  killServedProcesses();
  await rm(dir, { recursive: true, force: true });
});

describe('serve: certificate files', () => {
  it('puts rewritten files in force for new handshakes, with the expiry gauge and reload counter', async () => {
    const { ca, serving } = testCertificates();
    await writeCertificateFiles(dir, { ca, serving });
    const served = serve(['--cluster', 'off', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')]);
    const listening = await served.waitForLine((line) => line.msg === 'listening');
    const port = listening.port as number;
    expect(await handshake(port, ca.cert)).toBe(fingerprint(serving.cert));

    const next = generateServingCertificate(ca, {
      service: 'sidecar-injector',
      namespace: 'sidecar-injector',
      extraDnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    await writeCertificateFiles(dir, { ca, serving: next });
    const reloaded = await served.waitForLine((line) => String(line.msg).startsWith('serving certificate reloaded'));
    expect(reloaded).toMatchObject({ component: 'tls', fingerprint256: fingerprint(next.cert), previous: fingerprint(serving.cert) });
    expect(await handshake(port, ca.cert)).toBe(fingerprint(next.cert));

    const text = await metricsText(listening.metricsPort as number);
    const expiry = new Date(new X509Certificate(next.cert).validTo).getTime() / 1000;
    expect(text).toMatch(new RegExp(`^sidecar_injector_certificate_expiry_timestamp_seconds ${expiry}$`, 'm'));
    expect(text).toMatch(/^sidecar_injector_certificate_reloads_total\{result="ok"\} 1$/m);
    expect(text).toMatch(/^sidecar_injector_certificate_reloads_total\{result="failed"\} 0$/m);
    await stop(served);
  });
});

describe('serve --self-managed-certs', () => {
  let fake: FakeApiServer;
  let kubeconfig: string;
  beforeEach(async () => {
    fake = new FakeApiServer();
    await fake.start();
    fake.webhookConfiguration = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'sidecar-injector', resourceVersion: '1' },
      webhooks: ['namespace', 'pod'].map((entry) => ({
        name: `${entry}.sidecar-injector.io`,
        clientConfig: { service: { name: 'sidecar-injector', namespace: NAMESPACE, path: '/mutate', port: 443 } },
      })),
    };
    kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{ name: fake, cluster: { server: "http://127.0.0.1:${fake.port}", insecure-skip-tls-verify: true } }]`,
        'users: [{ name: fake, user: {} }]',
        'contexts: [{ name: fake, context: { cluster: fake, user: fake } }]',
        'current-context: fake',
        '',
      ].join('\n'),
    );
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('refuses to run without cluster access', async () => {
    const usage = serve(['--self-managed-certs', '--cluster', 'off']);
    expect((await usage.exited).code).toBe(2);
    expect(usage.stderr()).toMatch(/--self-managed-certs needs cluster access: it cannot be combined with --cluster off/);
    const outside = serve(['--self-managed-certs']);
    expect((await outside.exited).code).toBe(1);
    expect(outside.stderr()).toMatch(/^sidecar-injector serve: --self-managed-certs needs cluster access: no --kubeconfig/);
  });

  it('creates the Secret before listening, writes the caBundle, and follows a renewal by another replica', async () => {
    // The certificate files the Deployment names are absent: self-managed mode does not read them.
    const served = serve(['--self-managed-certs', '--kubeconfig', kubeconfig, '--tls-cert', join(dir, 'missing.crt')]);
    const listening = await served.waitForLine((line) => line.msg === 'listening');
    const created = fake.secretData(NAMESPACE, 'sidecar-injector-tls') ?? {};
    expect(Object.keys(created).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(await servedCertificate(listening.port as number)).toBe(fingerprint(created['tls.crt']));
    await served.waitForLine((line) => line.msg === 'self-managed certificates' && line.action === 'created');

    await served.waitForLine((line) => line.msg === 'caBundle updated');
    const bundles = ((fake.webhookConfiguration?.webhooks ?? []) as { clientConfig: { caBundle?: string } }[]).map((w) =>
      pemCertificates(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')),
    );
    expect(bundles).toEqual([pemCertificates(created['ca.crt'] ?? ''), pemCertificates(created['ca.crt'] ?? '')]);

    // Another replica whose clock says the serving certificate is due renews it.
    const other = await connectSelfManagedCertificates({
      kubeConfig: fake.kubeConfig(),
      namespace: NAMESPACE,
      secretName: 'sidecar-injector-tls',
      webhookConfigName: 'sidecar-injector',
      service: 'sidecar-injector',
    });
    const renewed = await bootstrapCertificates({ ...other, now: () => renewalTime(created['tls.crt'] ?? '') });
    expect(renewed.action).toBe('renewed');
    await served.waitForLine((line) => String(line.msg).startsWith('serving certificate reloaded'));
    expect(await servedCertificate(listening.port as number)).toBe(fingerprint(renewed.stored.tlsCert));
    const text = await metricsText(listening.metricsPort as number);
    expect(text).toMatch(/^sidecar_injector_certificate_reloads_total\{result="ok"\} 1$/m);
    await stop(served);
  });
});
