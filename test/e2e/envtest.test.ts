/**
 * The envtest plumbing, runnable anywhere: stand-in `etcd` and `kube-apiserver` (test/e2e/stand-ins) record the
 * flags they get and serve just /health, /readyz and /version, so the flags, the certificates, the readiness polls,
 * the kubeconfig (read by client-node and, when installed, by kubectl's Go TLS stack) and the clean-up are checked
 * without the real binaries. The real thing runs in webhook.e2e.test.ts when KUBEBUILDER_ASSETS is set.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeApi } from '../../src/cluster/check-api.js';
import { repoRoot } from '../support/fixtures.js';
import { controlPlaneArgs, e2eAvailability, startEnvtest } from './envtest.js';

interface Recorded {
  args: string[];
  pid: number;
}

let assets: string;
let record: string;

beforeAll(() => {
  assets = mkdtempSync(join(tmpdir(), 'envtest-stand-ins-'));
  record = join(assets, 'record');
  for (const binary of ['etcd', 'kube-apiserver']) {
    const script = join(repoRoot, 'test', 'e2e', 'stand-ins', `${binary}.mjs`);
    writeFileSync(join(assets, binary), `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`, { mode: 0o755 });
  }
});
afterAll(() => rmSync(assets, { recursive: true, force: true }));

function recorded(binary: string): Recorded {
  return JSON.parse(readFileSync(join(record, `${binary}.json`), 'utf8')) as Recorded;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function flagValue(args: readonly string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

describe('envtest plumbing (stand-in binaries)', () => {
  it.each([
    { etcdNoFsync: true, insecurePortFlag: false, what: 'etcd >= 3.5, kube-apiserver >= 1.24' },
    { etcdNoFsync: false, insecurePortFlag: true, what: 'etcd 3.4, kube-apiserver 1.23' },
  ])('starts, serves the admin, stops and cleans up ($what)', async ({ etcdNoFsync, insecurePortFlag }) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KUBEBUILDER_ASSETS: assets,
      STAND_IN_RECORD: record,
      STAND_IN_ETCD_NO_FSYNC: etcdNoFsync ? '1' : '0',
      STAND_IN_APISERVER_INSECURE_PORT: insecurePortFlag ? '1' : '0',
    };
    delete env.USE_EXISTING_CLUSTER;
    delete env.TEST_ASSET_ETCD;
    delete env.TEST_ASSET_KUBE_APISERVER;
    delete env.TEST_ASSET_KUBECTL;
    expect(e2eAvailability(env)).toMatchObject({ available: true });

    const envtest = await startEnvtest(env);
    let stopped = false;
    try {
      expect(envtest.kind).toBe('envtest');
      const etcd = recorded('etcd');
      const apiserver = recorded('kube-apiserver');
      const etcdUrl = flagValue(etcd.args, 'listen-client-urls');
      expect(etcdUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(flagValue(etcd.args, 'advertise-client-urls')).toBe(etcdUrl);
      expect(flagValue(etcd.args, 'listen-peer-urls')).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(flagValue(etcd.args, 'listen-peer-urls')).not.toBe(etcdUrl);
      expect(etcd.args.includes('--unsafe-no-fsync=true')).toBe(etcdNoFsync);

      const port = flagValue(apiserver.args, 'secure-port');
      const certDir = flagValue(apiserver.args, 'cert-dir')!;
      expect(apiserver.args).toEqual([
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${certDir}`,
        `--secure-port=${port}`,
        '--bind-address=127.0.0.1',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        `--client-ca-file=${join(certDir, 'client-cert-auth-ca.crt')}`,
        `--service-account-issuer=https://127.0.0.1:${port}/`,
        `--service-account-key-file=${join(certDir, 'sa-signer.pub')}`,
        `--service-account-signing-key-file=${join(certDir, 'sa-signer.key')}`,
        ...(insecurePortFlag ? ['--insecure-port=0'] : []),
      ]);
      expect(readFileSync(join(certDir, 'sa-signer.key'), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);

      // The kubeconfig works for client-node…
      const reply = await kubeApi(envtest.kubeConfig, 5_000).request('GET', '/version');
      expect(reply).toMatchObject({ status: 200, body: { gitVersion: 'v1.23.17-stand-in' } });
      // …and for kubectl, whose Go TLS stack verifies the serving certificate against the kubeconfig's CA.
      if (envtest.kubectl !== undefined) {
        const kubectl = spawnSync(envtest.kubectl, ['--kubeconfig', envtest.kubeconfigPath, 'get', '--raw', '/version'], { encoding: 'utf8', timeout: 30_000 });
        expect(kubectl.status, kubectl.stderr).toBe(0);
        expect(JSON.parse(kubectl.stdout)).toMatchObject({ gitVersion: 'v1.23.17-stand-in' });
      }

      const root = join(certDir, '..');
      await envtest.stop();
      stopped = true;
      expect(alive(etcd.pid)).toBe(false);
      expect(alive(apiserver.pid)).toBe(false);
      expect(existsSync(root)).toBe(false);
    } finally {
      if (!stopped) await envtest.stop();
    }
  }, 60_000);

  it('a control plane that dies during start-up is reported with its output, and cleaned up', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'envtest-broken-'));
    try {
      writeFileSync(join(broken, 'etcd'), '#!/bin/sh\n[ "$1" = --help ] && exit 0\necho "etcd: member has already been bootstrapped" >&2\nexit 1\n', { mode: 0o755 });
      writeFileSync(join(broken, 'kube-apiserver'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const env: NodeJS.ProcessEnv = { ...process.env, KUBEBUILDER_ASSETS: broken };
      delete env.USE_EXISTING_CLUSTER;
      await expect(startEnvtest(env)).rejects.toThrow(/etcd: a process exited early[\s\S]*member has already been bootstrapped/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  }, 60_000);

  it('says what to set when nothing is there', () => {
    expect(e2eAvailability({})).toEqual({
      available: false,
      reason: expect.stringMatching(/^skipped: set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd/),
    });
    expect(e2eAvailability({ KUBEBUILDER_ASSETS: '/nonexistent' }).reason).toMatch(/\/nonexistent\/etcd and \/nonexistent\/kube-apiserver not found/);
    expect(e2eAvailability({ USE_EXISTING_CLUSTER: 'true', KUBECONFIG: '/nonexistent/config', HOME: '/nonexistent' })).toMatchObject({
      available: false,
      reason: expect.stringContaining('no kubeconfig found'),
    });
  });

  it('takes a KUBECONFIG variable naming a file as the cluster to test against, unless told otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    try {
      const kubeconfig = join(dir, 'config');
      writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
      expect(e2eAvailability({ KUBECONFIG: kubeconfig })).toEqual({ available: true, reason: `existing cluster from ${kubeconfig}` });
      expect(e2eAvailability({ KUBECONFIG: kubeconfig, USE_EXISTING_CLUSTER: 'false' }).available).toBe(false);
      expect(e2eAvailability({ KUBECONFIG: join(dir, 'missing') }).available).toBe(false);
      // Binaries named by KUBEBUILDER_ASSETS take precedence over a kubeconfig.
      expect(e2eAvailability({ KUBECONFIG: kubeconfig, KUBEBUILDER_ASSETS: '/nonexistent' }).reason).toMatch(/not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the flags envtest would pass', () => {
    const args = controlPlaneArgs(
      { dataDir: '/d', certDir: '/c', etcdPort: 1, etcdPeerPort: 2, apiserverPort: 3, etcdNoFsync: false, apiserverInsecurePortFlag: false },
      ['--v=4'],
    );
    expect(args.etcd).toEqual(['--data-dir=/d', '--listen-client-urls=http://127.0.0.1:1', '--advertise-client-urls=http://127.0.0.1:1', '--listen-peer-urls=http://127.0.0.1:2']);
    expect(args.apiserver.at(-1)).toBe('--v=4');
    expect(args.apiserver.some((a) => a.startsWith('--disable-admission-plugins'))).toBe(false);
  });
});
