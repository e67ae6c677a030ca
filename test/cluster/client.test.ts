import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SERVICE_ACCOUNT_DIR,
  chooseClusterAccess,
  loadKubeConfig,
  serviceAccountMounted,
  type ClusterAccessInputs,
} from '../../src/cluster/client.js';

const IN_CLUSTER_ENV = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('chooseClusterAccess', () => {
  const base: ClusterAccessInputs = { mode: 'auto', env: {}, serviceAccountMounted: false };

  it.each<[string, Partial<ClusterAccessInputs>, ReturnType<typeof chooseClusterAccess>]>([
    ['auto without any source is off (make run on a laptop)', {}, { on: false, why: expect.stringContaining('not in a cluster') as string }],
    ['off never turns on, even in a pod', { mode: 'off', env: IN_CLUSTER_ENV, serviceAccountMounted: true }, { on: false, why: '--cluster off' }],
    ['off also ignores KUBECONFIG', { mode: 'off', env: { KUBECONFIG: '/k' } }, { on: false, why: '--cluster off' }],
    ['off with --kubeconfig is a contradiction', { mode: 'off', kubeconfigFlag: '/k' }, { error: '--kubeconfig has no effect with --cluster off' }],
    [
      'auto in a pod: in-cluster',
      { env: IN_CLUSTER_ENV, serviceAccountMounted: true },
      { on: true, source: { kind: 'in-cluster', host: '10.96.0.1', port: '443', serviceAccountDir: SERVICE_ACCOUNT_DIR } },
    ],
    [
      'the service port defaults to 443',
      { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, serviceAccountMounted: true },
      { on: true, source: { kind: 'in-cluster', host: '10.96.0.1', port: '443', serviceAccountDir: SERVICE_ACCOUNT_DIR } },
    ],
    ['a token without the service address is not in-cluster', { serviceAccountMounted: true }, { on: false, why: expect.any(String) as string }],
    [
      '--kubeconfig wins over KUBECONFIG and in-cluster',
      { kubeconfigFlag: '/flag', env: { KUBECONFIG: '/env', ...IN_CLUSTER_ENV }, serviceAccountMounted: true },
      { on: true, source: { kind: 'files', files: ['/flag'], origin: '--kubeconfig' } },
    ],
    [
      'KUBECONFIG wins over in-cluster and may list several files',
      { env: { KUBECONFIG: `/a${delimiter}${delimiter}/b`, ...IN_CLUSTER_ENV }, serviceAccountMounted: true },
      { on: true, source: { kind: 'files', files: ['/a', '/b'], origin: 'KUBECONFIG' } },
    ],
    ['an empty KUBECONFIG counts as unset', { env: { KUBECONFIG: '  ' } }, { on: false, why: expect.any(String) as string }],
    ['on without any source is an error', { mode: 'on' }, { error: expect.stringContaining('--cluster on needs') as string }],
    [
      'on in a pod',
      { mode: 'on', env: IN_CLUSTER_ENV, serviceAccountMounted: true },
      { on: true, source: { kind: 'in-cluster', host: '10.96.0.1', port: '443', serviceAccountDir: SERVICE_ACCOUNT_DIR } },
    ],
  ])('%s', (_name, inputs, expected) => {
    expect(chooseClusterAccess({ ...base, ...inputs })).toEqual(expected);
  });
});

describe('loadKubeConfig and serviceAccountMounted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const kubeconfig = (name: string, server: string, context = 'dev', clusterName = 'dev'): string => {
    const file = join(dir, name);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `current-context: ${context}`,
        'clusters:',
        `- name: ${clusterName}`,
        '  cluster:',
        `    server: ${server}`,
        'users:',
        `- name: ${clusterName}-user`,
        '  user:',
        '    token: not-a-real-token',
        'contexts:',
        `- name: ${context}`,
        '  context:',
        `    cluster: ${clusterName}`,
        `    user: ${clusterName}-user`,
        '',
      ].join('\n'),
    );
    return file;
  };

  it('loads a kubeconfig file and names its server', async () => {
    const file = kubeconfig('one.yaml', 'https://127.0.0.1:6443');
    const loaded = await loadKubeConfig({ kind: 'files', files: [file], origin: '--kubeconfig' });
    expect(loaded).toMatchObject({ ok: true, server: 'https://127.0.0.1:6443' });
  });

  it('merges several KUBECONFIG files; the first current-context wins, as with kubectl', async () => {
    const first = kubeconfig('first.yaml', 'https://first:6443', 'first', 'first');
    const second = kubeconfig('second.yaml', 'https://second:6443', 'second', 'second');
    const loaded = await loadKubeConfig({ kind: 'files', files: [first, second], origin: 'KUBECONFIG' });
    expect(loaded).toMatchObject({ ok: true, server: 'https://first:6443' });
    if (loaded.ok) expect(loaded.kubeConfig.getContexts().map((c) => c.name)).toEqual(['first', 'second']);
  });

  it('returns problems as values, naming the file', async () => {
    const missing = join(dir, 'missing.yaml');
    const notYaml = join(dir, 'bad.yaml');
    writeFileSync(notYaml, 'clusters: [unclosed\n');
    const noContext = join(dir, 'no-context.yaml');
    writeFileSync(noContext, 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n');
    const wrongContext = kubeconfig('wrong-context.yaml', 'https://x:6443');
    writeFileSync(wrongContext, readFileSync(wrongContext, 'utf8').replace('current-context: dev', 'current-context: nowhere'));

    const problems = await Promise.all(
      [missing, notYaml, noContext, wrongContext].map((file) => loadKubeConfig({ kind: 'files', files: [file], origin: '--kubeconfig' })),
    );
    expect(problems).toEqual([
      { ok: false, error: expect.stringMatching(/^cannot load --kubeconfig .*missing\.yaml: .*ENOENT/) },
      { ok: false, error: expect.stringMatching(/^cannot load --kubeconfig .*bad\.yaml: /) },
      { ok: false, error: expect.stringMatching(/no-context\.yaml sets no current-context$/) },
      { ok: false, error: expect.stringMatching(/current-context "nowhere" names no known cluster$/) },
    ]);
  });

  it('builds the in-cluster config from the handed-in address and the mounted token and CA', async () => {
    const accountDir = join(dir, 'serviceaccount');
    expect(serviceAccountMounted(accountDir)).toBe(false);
    mkdirSync(accountDir);
    writeFileSync(join(accountDir, 'token'), 'token');
    expect(serviceAccountMounted(accountDir)).toBe(false);
    writeFileSync(join(accountDir, 'ca.crt'), 'ca');
    expect(serviceAccountMounted(accountDir)).toBe(true);

    const loaded = await loadKubeConfig({ kind: 'in-cluster', host: 'fd00::1', port: '443', serviceAccountDir: accountDir });
    expect(loaded).toMatchObject({ ok: true, server: 'https://[fd00::1]:443' });
    if (!loaded.ok) return;
    expect(loaded.kubeConfig.getCurrentCluster()).toMatchObject({ caFile: join(accountDir, 'ca.crt'), skipTLSVerify: false });
    expect(loaded.kubeConfig.getCurrentUser()?.authProvider).toEqual({ name: 'tokenFile', config: { tokenFile: join(accountDir, 'token') } });
  });
});
