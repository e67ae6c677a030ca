/**
 * The cluster facts against a real kube-apiserver (the envtest convention, via test/e2e/envtest.ts): runs when
 * KUBEBUILDER_ASSETS names a directory with kube-apiserver and etcd, or with a KUBECONFIG naming a cluster
 * (a disposable cluster: this test creates and deletes namespaces and a Node object). Skipped
 * otherwise, with the reason in the suite's name.
 *
 * Everything it creates carries a random suffix; on an existing cluster the real nodes stay in the picture, so
 * the node checks use a kubelet older than any real one (1.20) and compare against the version seen before.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, VersionApi, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/admission/respond.js';
import { startClusterFacts, type ClusterFactsSource, type ClusterLog } from '../../src/cluster/cluster-facts.js';
import { POD_SECURITY_ENFORCE_LABEL, minorVersionOf } from '../../src/cluster/facts.js';
import { e2eAvailability, startEnvtest, type Envtest } from '../e2e/envtest.js';

const availability = e2eAvailability();
const suite = availability.available ? describe : describe.skip;
const suffix = randomBytes(3).toString('hex');
const WAIT_MS = 20_000;

/** The one place the cluster comes from: the shared envtest harness (or an existing cluster through it). */
async function testCluster(): Promise<{ kubeConfig: KubeConfig; kind: Envtest['kind']; stop: () => Promise<void> }> {
  const envtest = await startEnvtest();
  return { kubeConfig: envtest.kubeConfig, kind: envtest.kind, stop: () => envtest.stop() };
}

const quietLog: ClusterLog = { info: () => {}, warn: () => {}, debug: () => {} };

/** Polls `read` until `accept` holds, for at most WAIT_MS; the informers are asynchronous. */
async function eventually<T>(what: string, read: () => T | Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

suite(`cluster facts against a real API server${availability.available ? '' : ` (${availability.reason})`}`, () => {
  let cluster: Awaited<ReturnType<typeof testCluster>>;
  let core: CoreV1Api;
  let facts: ClusterFactsSource;
  const labelled = `facts-labelled-${suffix}`;
  const plain = `facts-plain-${suffix}`;
  const later = `facts-later-${suffix}`;
  const nodeName = `facts-node-${suffix}`;

  const factsOf = async (namespace: string): Promise<ClusterFacts> => facts.clusterFacts(namespace);

  beforeAll(async () => {
    cluster = await testCluster();
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: { metadata: { name: labelled, labels: { 'sidecar-injection': 'enabled', [POD_SECURITY_ENFORCE_LABEL]: 'baseline' } } },
    });
    await core.createNamespace({ body: { metadata: { name: plain } } });
    facts = await startClusterFacts({ kubeConfig: cluster.kubeConfig, log: quietLog, backoff: { initialMs: 200, maxMs: 2_000 } });
    await eventually('ready', () => facts.ready(), (ready) => ready);
  }, 120_000);

  afterAll(async () => {
    await facts?.close();
    if (core !== undefined) {
      for (const name of [labelled, plain, later]) await core.deleteNamespace({ name }).catch(() => undefined);
      await core.deleteNode({ name: nodeName }).catch(() => undefined);
    }
    await cluster?.stop();
  }, 60_000);

  it('knows the API server version and each namespace’s labels and Pod Security level', async () => {
    const version = await cluster.kubeConfig.makeApiClient(VersionApi).getCode();
    expect(await factsOf(labelled)).toMatchObject({
      namespaceLabels: { 'sidecar-injection': 'enabled', 'kubernetes.io/metadata.name': labelled },
      podSecurityLevel: 'baseline',
      apiServerVersion: minorVersionOf(version.gitVersion),
    });
    expect(await factsOf(plain)).toMatchObject({ podSecurityLevel: undefined });
  });

  it('follows label changes and new namespaces; a namespace that does not exist is an error', async () => {
    const current = await core.readNamespace({ name: plain });
    current.metadata = { ...current.metadata, labels: { ...current.metadata?.labels, [POD_SECURITY_ENFORCE_LABEL]: 'restricted' } };
    await core.replaceNamespace({ name: plain, body: current });
    await eventually('restricted label seen', () => factsOf(plain), (f) => f.podSecurityLevel === 'restricted');

    // Asked right after creation: from the watch or, if it has not arrived yet, read directly. Same answer.
    await core.createNamespace({ body: { metadata: { name: later, labels: { [POD_SECURITY_ENFORCE_LABEL]: 'privileged' } } } });
    expect(await factsOf(later)).toMatchObject({ podSecurityLevel: 'privileged' });

    await expect(factsOf(`facts-missing-${suffix}`)).rejects.toThrow(/not in the cache and cannot be read \(HTTP 404/);
  }, 60_000);

  it('takes the oldest kubelet over the nodes; a node without a reported version makes it unknown', async () => {
    const before = (await factsOf(labelled)).minKubeletVersion;
    // envtest has no nodes at all: no evidence, unknown.
    if (cluster.kind === 'envtest') expect(before).toBeUndefined();

    // A Node object as a kubelet registers it: first without status, then with its nodeInfo (status subresource).
    await core.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/os': 'linux' } } } });
    await eventually('node without version → unknown', () => factsOf(labelled), (f) => f.minKubeletVersion === undefined);
    const node: V1Node = await core.readNode({ name: nodeName });
    node.status = {
      ...node.status,
      nodeInfo: {
        architecture: 'amd64',
        bootID: 'boot',
        containerRuntimeVersion: 'containerd://1.7.0',
        kernelVersion: '6.1.0',
        kubeProxyVersion: 'v1.20.15',
        kubeletVersion: 'v1.20.15',
        machineID: 'machine',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12',
        systemUUID: 'uuid',
      },
    };
    await core.replaceNodeStatus({ name: nodeName, body: node });
    await eventually('old kubelet seen', () => factsOf(labelled), (f) => f.minKubeletVersion === '1.20');

    await core.deleteNode({ name: nodeName });
    await eventually('node gone', () => factsOf(labelled), (f) => f.minKubeletVersion === before);
  }, 90_000);
});
