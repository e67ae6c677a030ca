/**
 * The one child-process wrapper of `node dist/main.js serve`, exactly as the image runs it (dist/ is built by
 * test/global-setup.ts), with its JSON log lines collected for tests to wait on. `startWebhook` is the e2e
 * suite's use of it: a whitelisted environment, a random port on the host the API server dials, and
 * certificates for that host.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCertificateFiles, type CertificateFilePaths } from '../../src/tls/certificate-files.js';
import { generateCertificateAuthority, generateServingCertificate, type CertificateBundle } from '../../src/tls/certificates.js';
import { repoRoot } from './fixtures.js';

export interface ServedProcess {
  child: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** Everything it printed, stdout and stderr, for failure messages. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * The test process's environment without cluster access (whatever the developer's shell holds), plus what the
 * test adds; POD_NAMESPACE is the test's own.
 */
export function serveEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, POD_NAMESPACE: 'sidecar-injector-test', ...extra };
  if (extra.KUBECONFIG === undefined) delete env.KUBECONFIG;
  if (extra.KUBERNETES_SERVICE_HOST === undefined) delete env.KUBERNETES_SERVICE_HOST;
  return env;
}

/** Only what a process needs to run, nothing cluster-related: flags say what it talks to. */
export function whitelistedEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS', 'SYSTEMROOT']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, POD_NAMESPACE: 'sidecar-injector', ...extra };
}

const children = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** The compiled modules, as the tests run them, and the bundle, as the image and `make run` run it. */
export const COMPILED_MAIN = join(repoRoot, 'dist', 'main.js');
export const BUNDLED_MAIN = join(repoRoot, 'dist', 'bundle', 'main.js');

export function spawnServe(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; nodeFlags?: string[]; main?: string } = {},
): ServedProcess {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), options.main ?? COMPILED_MAIN, 'serve', ...args], {
    cwd: repoRoot,
    env: options.env ?? serveEnv(),
  });
  children.add(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const resolve of waiters.splice(0)) resolve();
  };
  let rest = '';
  let stderr = '';
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output += text;
    const parts = (rest + text).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        // Not a log line: kept in the output only.
      }
    }
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stderr += text;
    output += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      wake();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    lines,
    stderr: () => stderr,
    output: () => output,
    exited,
    async waitForLine(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(predicate);
        if (found !== undefined) return found;
        if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`no such log line (exit ${child.exitCode ?? child.signalCode ?? 'none'}); output:\n${output.slice(-8000)}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

/** Kills every served process still running (afterEach/afterAll), even after a failed assertion. */
export function killServedProcesses(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

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

export interface StartWebhookOptions {
  certs: WebhookCertificates;
  /** The address the API server dials. */
  bindHost: string;
  args: string[];
  /** Added to the whitelisted environment. */
  env?: Record<string, string>;
}

/** The webhook as the e2e suite runs it; resolves once it listens. */
export async function startWebhook(options: StartWebhookOptions): Promise<WebhookProcess> {
  const served = spawnServe(
    [
      '--host', options.bindHost, '--port', '0', '--metrics-port', '0',
      '--tls-cert', options.certs.paths.tlsCert, '--tls-key', options.certs.paths.tlsKey,
      '--drain-seconds', '0', ...options.args,
    ],
    { env: whitelistedEnv(options.env) },
  );
  const listening = await served.waitForLine((l) => l.msg === 'listening' && typeof l.port === 'number', 30_000);
  return {
    port: listening.port as number,
    child: served.child,
    lines: served.lines,
    output: served.output,
    waitForLine: (predicate, timeoutMs = 30_000) => served.waitForLine(predicate, timeoutMs),
    kill: async () => {
      if (served.child.exitCode === null && served.child.signalCode === null) served.child.kill('SIGKILL');
      await served.exited;
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
