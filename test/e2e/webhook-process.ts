/**
 * The webhook as the e2e suite runs it: `node dist/main.js serve` as a child process on a random port, certificates
 * for the address the API server dials, and helpers around its JSON log lines. dist/ is built by the global setup.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCertificateFiles, type CertificateFilePaths } from '../../src/tls/certificate-files.js';
import { generateCertificateAuthority, generateServingCertificate, type CertificateBundle } from '../../src/tls/certificates.js';
import { repoRoot } from '../support/fixtures.js';

export interface WebhookCertificates {
  bundle: CertificateBundle;
  paths: CertificateFilePaths;
  dir: string;
  remove(): void;
}

/** A CA and a serving certificate for the Service names, localhost, 127.0.0.1 and `host` (what the URL names). */
export async function webhookCertificates(host: string): Promise<WebhookCertificates> {
  const ca = generateCertificateAuthority({ commonName: 'sidecar-injector-e2e-ca' });
  const ipAddresses = [...new Set(['127.0.0.1', ...(isIP(host) !== 0 ? [host] : [])])];
  const extraDnsNames = [...new Set(['localhost', ...(isIP(host) === 0 ? [host] : [])])];
  const serving = generateServingCertificate(ca, { service: 'sidecar-injector', namespace: 'sidecar-injector', extraDnsNames, ipAddresses });
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-injector-e2e-certs-'));
  const bundle = { ca, serving };
  const paths = await writeCertificateFiles(dir, bundle);
  return { bundle, paths, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WebhookProcess {
  port: number;
  child: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  /** Everything it printed, for failure messages. */
  output(): string;
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILL, as a crash or an OOM kill would: no drain, the port closes at once. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface StartWebhookOptions {
  certs: WebhookCertificates;
  bindHost: string;
  args: string[];
  /** POD_NAMESPACE and nothing cluster-related from the test's own environment: flags say what it talks to. */
  env?: Record<string, string>;
}

export async function startWebhook(options: StartWebhookOptions): Promise<WebhookProcess> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS', 'SYSTEMROOT']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'dist', 'main.js'),
      'serve',
      '--host',
      options.bindHost,
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--tls-cert',
      options.certs.paths.tlsCert,
      '--tls-key',
      options.certs.paths.tlsKey,
      '--drain-seconds',
      '0',
      ...options.args,
    ],
    { cwd: repoRoot, env: { ...env, POD_NAMESPACE: 'sidecar-injector', ...options.env } },
  );
  live.add(child);
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  let rest = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    raw += text;
    const parts = (rest + text).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        // not a log line: kept in raw output only
      }
    }
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      for (const wake of waiters.splice(0)) wake();
      resolve();
    }),
  );

  const waitForLine: WebhookProcess['waitForLine'] = async (predicate, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`webhook: no such log line (exit ${child.exitCode ?? child.signalCode ?? 'none'}); output:\n${raw.slice(-8000)}`);
      }
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };

  const listening = await waitForLine((l) => l.msg === 'listening' && typeof l.port === 'number');
  return {
    port: listening.port as number,
    child,
    lines,
    output: () => raw,
    waitForLine,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** GET /readyz over TLS, trusting the webhook's CA: the status code, 0 when it does not answer. */
export function readyz(port: number, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/readyz', method: 'GET', ca, servername: 'localhost', timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}
