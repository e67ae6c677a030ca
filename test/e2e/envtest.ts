/**
 * A real kube-apiserver + etcd for the e2e suite, the way controller-runtime's envtest starts them
 * (pkg/internal/testing/controlplane: etcd.go, apiserver.go, auth.go), or an existing cluster on request.
 *
 *  - Binaries from KUBEBUILDER_ASSETS (`setup-envtest use -p path`), or TEST_ASSET_ETCD / TEST_ASSET_KUBE_APISERVER.
 *  - etcd: --data-dir, --listen-client-urls/--advertise-client-urls http://127.0.0.1:PORT, --listen-peer-urls
 *    http://127.0.0.1:PORT2, plus --unsafe-no-fsync=true when `etcd --help` lists it (etcd >= 3.5); ready on /health.
 *  - kube-apiserver: a serving pair (apiserver.crt/.key) written into --cert-dir, a client CA (--client-ca-file) that
 *    signed an `admin` certificate in group system:masters, an RSA service-account key, --authorization-mode=RBAC,
 *    --allow-privileged=true, --service-cluster-ip-range=10.0.0.0/24, --insecure-port=0 only where the flag still
 *    exists (< 1.24). Ready when GET /readyz (or /healthz on servers without it) answers 200 to the admin.
 *  - One deliberate difference: envtest passes --disable-admission-plugins=ServiceAccount. We keep that plugin on, so
 *    pods reach the webhook defaulted as on a real cluster (token volume and mounts, as in the kube-apiserver
 *    captures), which means every namespace needs its `default` ServiceAccount: `ensureNamespace` creates it (no
 *    controller-manager runs here).
 *
 * Existing cluster: when KUBEBUILDER_ASSETS names no binaries and the KUBECONFIG variable points at a kubeconfig
 * file, or with USE_EXISTING_CLUSTER=true (envtest's switch, which also accepts ~/.kube/config).
 * USE_EXISTING_CLUSTER=false turns the existing cluster off even with KUBECONFIG set. The tests create
 * namespaces named e2e-… and a webhook configuration of their own, and delete them afterwards.
 *
 * Ports are picked by listening on port 0; processes are stopped (TERM, then KILL) and temp dirs removed in stop(),
 * and again, synchronously, when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import forge from 'node-forge';
import { stringify } from 'yaml';
import {
  generateCertificateAuthority,
  generateServingCertificate,
  randomSerialNumber,
  type KeyPairPem,
} from '../../src/tls/certificates.js';

export interface Envtest {
  /** A kubeconfig file for kubectl and for our CLI (`--kubeconfig`). */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** `envtest` (processes started here) or `existing` (USE_EXISTING_CLUSTER=true). */
  kind: 'envtest' | 'existing';
  /** The kubectl matching the API server when the assets ship one, else kubectl on PATH; undefined when none. */
  kubectl: string | undefined;
  /** Last lines etcd and kube-apiserver printed (empty for an existing cluster): for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

export interface Availability {
  available: boolean;
  reason: string;
}

interface Binaries {
  etcd: string;
  apiserver: string;
  kubectl?: string;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 200;

const SKIP_MESSAGE =
  'skipped: set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd (e.g. `setup-envtest use 1.23 -p path`), ' +
  'or KUBECONFIG to a disposable cluster whose API server can reach this machine (E2E_WEBHOOK_HOST)';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBinaries(env: NodeJS.ProcessEnv): Binaries | string {
  const assets = env.KUBEBUILDER_ASSETS?.trim();
  const etcd = env.TEST_ASSET_ETCD?.trim() || (assets ? join(assets, 'etcd') : undefined);
  const apiserver = env.TEST_ASSET_KUBE_APISERVER?.trim() || (assets ? join(assets, 'kube-apiserver') : undefined);
  if (etcd === undefined || apiserver === undefined) return SKIP_MESSAGE;
  const missing = [etcd, apiserver].filter((path) => !isExecutable(path));
  if (missing.length > 0) return `skipped: ${missing.join(' and ')} not found or not executable (${SKIP_MESSAGE.slice(9)})`;
  const kubectl = env.TEST_ASSET_KUBECTL?.trim() || (assets ? join(assets, 'kubectl') : undefined);
  return { etcd, apiserver, ...(kubectl !== undefined && isExecutable(kubectl) ? { kubectl } : {}) };
}

function existingKubeconfig(env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  const candidates = fromEnv.length > 0 ? fromEnv : [join(env.HOME ?? homedir(), '.kube', 'config')];
  return candidates.find((p) => existsSync(p));
}

function useExistingCluster(env: NodeJS.ProcessEnv): boolean {
  const choice = (env.USE_EXISTING_CLUSTER ?? '').toLowerCase();
  if (choice === 'true') return true;
  if (choice === 'false' || (env.KUBEBUILDER_ASSETS ?? '').trim() !== '') return false;
  // The KUBECONFIG variable (not a default ~/.kube/config) is taken as the request to test against that cluster.
  return (env.KUBECONFIG ?? '').split(delimiter).some((p) => p !== '' && existsSync(p));
}

function kubectlOnPath(): string | undefined {
  const result = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 15_000 });
  return result.status === 0 ? 'kubectl' : undefined;
}

/** Whether the e2e suite can run here, and if not, the one line that says what to set. */
export function e2eAvailability(env: NodeJS.ProcessEnv = process.env): Availability {
  if (useExistingCluster(env)) {
    const kubeconfig = existingKubeconfig(env);
    return kubeconfig === undefined
      ? { available: false, reason: 'skipped: USE_EXISTING_CLUSTER=true but no kubeconfig found (KUBECONFIG or ~/.kube/config)' }
      : { available: true, reason: `existing cluster from ${kubeconfig}` };
  }
  const binaries = findBinaries(env);
  if (typeof binaries === 'string') return { available: false, reason: binaries };
  return { available: true, reason: `envtest binaries ${binaries.apiserver}, ${binaries.etcd}` };
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close): the envtest way, with the same small race. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether `binary --help` mentions `--flag` (envtest's process.CheckFlag). */
function supportsFlag(binary: string, flag: string, env: NodeJS.ProcessEnv): boolean {
  const result = spawnSync(binary, ['--help'], { encoding: 'utf8', timeout: 30_000, env });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.includes(`--${flag}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Process bookkeeping: whatever is still running or on disk when the test process exits is removed then.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

interface Managed {
  child: ChildProcess;
  /** Resolves once the process has exited and its output is read to the end. */
  exited: Promise<void>;
  dead(): boolean;
  tail(): string;
}

function startProcess(name: string, binary: string, args: string[], env: NodeJS.ProcessEnv): Managed {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  liveChildren.add(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      lines.push(`${name}: ${line}`);
      if (lines.length > LOG_TAIL_LINES) lines.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let dead = false;
  const exited = new Promise<void>((resolve) => {
    // 'close', not 'exit': the last lines it printed (why it died) are read by then.
    child.once('close', () => {
      dead = true;
      liveChildren.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      lines.push(`${name}: cannot start ${binary}: ${err.message}`);
      dead = true;
      liveChildren.delete(child);
      resolve();
    });
  });
  return { child, exited, dead: () => dead, tail: () => lines.join('\n') };
}

async function stopProcess(managed: Managed): Promise<void> {
  const { child } = managed;
  if (managed.dead() || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await managed.exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Probe {
  status: number;
  body: string;
}

function get(url: string, tls?: { ca: string; cert: string; key: string }): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const options = { method: 'GET', timeout: 5_000, ...tls };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `ready` says yes; fails with the last answer and the process logs when the deadline passes. */
async function waitUntil(
  what: string,
  deadline: number,
  processes: Managed[],
  ready: () => Promise<{ done: boolean; detail: string }>,
): Promise<void> {
  let detail = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = processes.find((p) => p.dead());
    if (dead !== undefined) {
      throw new Error(`${what}: a process exited early (code ${dead.child.exitCode}, signal ${dead.child.signalCode})\n${dead.tail()}`);
    }
    try {
      const result = await ready();
      if (result.done) return;
      detail = result.detail;
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    }
    await sleep(250);
  }
  throw new Error(`${what} not ready after ${START_TIMEOUT_MS / 1000} s (last: ${detail})\n${processes.map((p) => p.tail()).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Certificates and kubeconfig.

/** A client certificate for `user` in `groups` (CN and O, as the API server reads them), signed by `ca`. */
export function clientCertificate(ca: KeyPairPem, user: string, groups: readonly string[]): KeyPairPem {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = randomSerialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + 7 * 24 * 3600_000);
  cert.setSubject([
    { name: 'commonName', value: user },
    ...groups.map((group) => ({ name: 'organizationName', value: group })),
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), key: privateKey };
}

export interface KubeconfigInput {
  server: string;
  ca: string;
  client: KeyPairPem;
  name?: string;
}

/** A kubeconfig with inline data, readable by kubectl and client-node alike. */
export function kubeconfigYaml(input: KubeconfigInput): string {
  const name = input.name ?? 'envtest';
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: input.server, 'certificate-authority-data': b64(input.ca) } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': b64(input.client.cert), 'client-key-data': b64(input.client.key) } }],
    contexts: [{ name, context: { cluster: name, user: 'admin' } }],
    'current-context': name,
  });
}

// ---------------------------------------------------------------------------------------------------------------

export interface ControlPlaneArgs {
  etcd: string[];
  apiserver: string[];
}

export interface ControlPlaneLayout {
  dataDir: string;
  certDir: string;
  etcdPort: number;
  etcdPeerPort: number;
  apiserverPort: number;
  /** `etcd --help` lists --unsafe-no-fsync (etcd >= 3.5). */
  etcdNoFsync: boolean;
  /** `kube-apiserver --help` lists --insecure-port (< 1.24): it must then be set to 0. */
  apiserverInsecurePortFlag: boolean;
}

/** The exact flags, as envtest builds them (see the file comment for the one difference). */
export function controlPlaneArgs(layout: ControlPlaneLayout, extraApiserverArgs: readonly string[] = []): ControlPlaneArgs {
  const etcdUrl = `http://127.0.0.1:${layout.etcdPort}`;
  const etcd = [
    `--data-dir=${layout.dataDir}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=http://127.0.0.1:${layout.etcdPeerPort}`,
    ...(layout.etcdNoFsync ? ['--unsafe-no-fsync=true'] : []),
  ];
  const apiserver = [
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${layout.certDir}`,
    `--secure-port=${layout.apiserverPort}`,
    '--bind-address=127.0.0.1',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--authorization-mode=RBAC',
    `--client-ca-file=${join(layout.certDir, 'client-cert-auth-ca.crt')}`,
    `--service-account-issuer=https://127.0.0.1:${layout.apiserverPort}/`,
    `--service-account-key-file=${join(layout.certDir, 'sa-signer.pub')}`,
    `--service-account-signing-key-file=${join(layout.certDir, 'sa-signer.key')}`,
    ...(layout.apiserverInsecurePortFlag ? ['--insecure-port=0'] : []),
    ...extraApiserverArgs,
  ];
  return { etcd, apiserver };
}

async function startControlPlane(binaries: Binaries, env: NodeJS.ProcessEnv): Promise<Envtest> {
  installExitHook();
  const root = mkdtempSync(join(tmpdir(), 'sidecar-injector-envtest-'));
  liveDirs.add(root);
  const dataDir = join(root, 'etcd');
  const certDir = join(root, 'certs');
  mkdirSync(dataDir, { mode: 0o700 });
  mkdirSync(certDir, { mode: 0o700 });
  const processes: Managed[] = [];

  const stop = async (): Promise<void> => {
    // API server first: it would otherwise log etcd connection errors for a while.
    for (const managed of [...processes].reverse()) await stopProcess(managed);
    rmSync(root, { recursive: true, force: true });
    liveDirs.delete(root);
  };

  try {
    // Serving pair in --cert-dir under the names kube-apiserver looks for; clients trust this CA.
    const servingCa = generateCertificateAuthority({ commonName: 'envtest-apiserver-ca' });
    const serving = generateServingCertificate(servingCa, {
      service: 'kubernetes',
      namespace: 'default',
      extraDnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    writeFileSync(join(certDir, 'apiserver.crt'), serving.cert, { mode: 0o600 });
    writeFileSync(join(certDir, 'apiserver.key'), serving.key, { mode: 0o600 });
    const clientCa = generateCertificateAuthority({ commonName: 'envtest-client-ca' });
    writeFileSync(join(certDir, 'client-cert-auth-ca.crt'), clientCa.cert, { mode: 0o600 });
    const admin = clientCertificate(clientCa, 'admin', ['system:masters']);
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    writeFileSync(join(certDir, 'sa-signer.pub'), sa.publicKey, { mode: 0o600 });
    writeFileSync(join(certDir, 'sa-signer.key'), sa.privateKey, { mode: 0o600 });

    const layout: ControlPlaneLayout = {
      dataDir,
      certDir,
      etcdPort: await freePort(),
      etcdPeerPort: await freePort(),
      apiserverPort: await freePort(),
      etcdNoFsync: supportsFlag(binaries.etcd, 'unsafe-no-fsync', env),
      apiserverInsecurePortFlag: supportsFlag(binaries.apiserver, 'insecure-port', env),
    };
    const extra = (env.E2E_APISERVER_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const args = controlPlaneArgs(layout, extra);
    // No proxy for loopback traffic (etcd, the webhook at 127.0.0.1); Go skips loopback anyway, this is belt and braces.
    const childEnv = { ...env, NO_PROXY: ['127.0.0.1', 'localhost', env.NO_PROXY].filter(Boolean).join(',') };
    const deadline = Date.now() + START_TIMEOUT_MS;

    const etcd = startProcess('etcd', binaries.etcd, args.etcd, childEnv);
    processes.push(etcd);
    await waitUntil('etcd', deadline, [etcd], async () => {
      const { status, body } = await get(`http://127.0.0.1:${layout.etcdPort}/health`);
      return { done: status === 200 && /"health"\s*:\s*"true"/.test(body), detail: `/health ${status} ${body.trim()}` };
    });

    const apiserver = startProcess('kube-apiserver', binaries.apiserver, args.apiserver, childEnv);
    processes.push(apiserver);
    const server = `https://127.0.0.1:${layout.apiserverPort}`;
    const tls = { ca: servingCa.cert, cert: admin.cert, key: admin.key };
    let readyPath = '/readyz';
    await waitUntil('kube-apiserver', deadline, [etcd, apiserver], async () => {
      const { status, body } = await get(`${server}${readyPath}`, tls);
      // Servers without /readyz (none from 1.16 on, but cheap to allow) answer 404: fall back to /healthz.
      if (status === 404 && readyPath === '/readyz') readyPath = '/healthz';
      return { done: status === 200, detail: `${readyPath} ${status} ${body.trim().split('\n').slice(-3).join(' ')}` };
    });

    const kubeconfigPath = join(root, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml({ server, ca: servingCa.cert, client: admin }), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    return {
      kubeconfigPath,
      kubeConfig,
      kind: 'envtest',
      kubectl: binaries.kubectl ?? kubectlOnPath(),
      logs: () => processes.map((p) => p.tail()).join('\n'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts etcd + kube-apiserver from the assets, or connects to the existing cluster (USE_EXISTING_CLUSTER=true). */
export async function startEnvtest(env: NodeJS.ProcessEnv = process.env): Promise<Envtest> {
  if (useExistingCluster(env)) {
    const kubeconfigPath = existingKubeconfig(env);
    if (kubeconfigPath === undefined) throw new Error('USE_EXISTING_CLUSTER=true but no kubeconfig found');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    return { kubeconfigPath, kubeConfig, kind: 'existing', kubectl: kubectlOnPath(), logs: () => '', stop: async () => {} };
  }
  const binaries = findBinaries(env);
  if (typeof binaries === 'string') throw new Error(binaries);
  return startControlPlane(binaries, env);
}
