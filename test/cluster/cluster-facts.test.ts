/**
 * The informer glue against a fake API server (real HTTP, the client library's real list/watch code).
 * The same behaviour against a real kube-apiserver: cluster-facts.cluster.test.ts.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startClusterFacts, type ClusterFactsSource, type ClusterLog } from '../../src/cluster/cluster-facts.js';
import { POD_SECURITY_ENFORCE_LABEL } from '../../src/cluster/facts.js';
import { FakeApiServer } from './fake-apiserver.js';

interface LogEntry {
  level: 'info' | 'warn' | 'debug';
  fields: Record<string, unknown>;
  message: string;
}

function recordingLog(): ClusterLog & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (fields: object, message: string): void => {
      entries.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { entries, info: at('info'), warn: at('warn'), debug: at('debug') };
}

function kubeConfigFor(server: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser({ name: 'fake', server, skipTLSVerify: true }, { name: 'fake' });
  return kubeConfig;
}

async function eventually<T>(read: () => T | Promise<T>, accept: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await read();
  }
  return value;
}

describe('startClusterFacts (fake API server)', () => {
  let api: FakeApiServer;
  let facts: ClusterFactsSource | undefined;
  let log: ReturnType<typeof recordingLog>;

  beforeEach(async () => {
    api = new FakeApiServer();
    await api.start();
    log = recordingLog();
  });

  afterEach(async () => {
    await facts?.close();
    facts = undefined;
    await api.stop();
  });

  const start = async (): Promise<ClusterFactsSource> => {
    facts = await startClusterFacts({
      kubeConfig: kubeConfigFor(api.url),
      log,
      backoff: { initialMs: 20, maxMs: 100 },
      namespaceReadTimeoutMs: 500,
      random: () => 0.5,
    });
    return facts;
  };

  it('is ready once both caches are filled, then answers from them and follows the watches', async () => {
    api.put('namespaces', { name: 'team-a', labels: { 'sidecar-injection': 'enabled', [POD_SECURITY_ENFORCE_LABEL]: 'baseline' } });
    api.put('namespaces', { name: 'plain' });
    api.put('nodes', { name: 'node-1', kubeletVersion: 'v1.34.0' });
    api.put('nodes', { name: 'node-2', kubeletVersion: 'v1.33.4-eks-1' });
    const source = await start();
    await eventually(() => source.ready(), (ready) => ready);

    const requestsBefore = api.requests.length;
    expect(source.clusterFacts('team-a')).toEqual({
      namespaceLabels: { 'kubernetes.io/metadata.name': 'team-a', 'sidecar-injection': 'enabled', [POD_SECURITY_ENFORCE_LABEL]: 'baseline' },
      podSecurityLevel: 'baseline',
      apiServerVersion: '1.33',
      minKubeletVersion: '1.33',
    });
    expect(source.clusterFacts('plain')).toMatchObject({ podSecurityLevel: undefined });
    // A cache hit is answered synchronously, without a request.
    expect(api.requests.length).toBe(requestsBefore);
    expect(log.entries.map((e) => e.message)).toEqual(
      expect.arrayContaining(['cluster: API server version', 'cluster: namespace and node caches synced']),
    );

    // Labels change, an invalid level reads as restricted, a new namespace appears.
    api.put('namespaces', { name: 'team-a', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'Restricted' } });
    api.put('namespaces', { name: 'team-b', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'privileged' } });
    await eventually(() => source.clusterFacts('team-a'), (f) => !('then' in f) && f.podSecurityLevel === 'restricted');
    await eventually(() => source.clusterFacts('team-b'), (f) => !('then' in f) && f.podSecurityLevel === 'privileged');

    // An older kubelet joins, then leaves; a node without a reported version makes the oldest unknown.
    api.put('nodes', { name: 'old', kubeletVersion: 'v1.30.2+k3s1' });
    await eventually(() => source.clusterFacts('team-b'), (f) => !('then' in f) && f.minKubeletVersion === '1.30');
    api.remove('nodes', 'old');
    await eventually(() => source.clusterFacts('team-b'), (f) => !('then' in f) && f.minKubeletVersion === '1.33');
    api.put('nodes', { name: 'registering' });
    await eventually(() => source.clusterFacts('team-b'), (f) => !('then' in f) && f.minKubeletVersion === undefined);
    api.remove('nodes', 'registering');
    api.remove('nodes', 'node-1');
    api.remove('nodes', 'node-2');
    // Zero nodes: no evidence about kubelets, unknown.
    await eventually(() => source.clusterFacts('team-b'), (f) => !('then' in f) && f.minKubeletVersion === undefined);
  });

  it('reads a namespace missing from the cache once, for concurrent requests, and caches it', async () => {
    const source = await start();
    await eventually(() => source.ready(), (ready) => ready);
    api.putUnwatched({ name: 'brand-new', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'restricted' } });
    api.namespaceReadDelayMs = 50;

    const [first, second] = await Promise.all([source.clusterFacts('brand-new'), source.clusterFacts('brand-new')]);
    expect(first).toMatchObject({ podSecurityLevel: 'restricted', apiServerVersion: '1.33' });
    expect(second).toEqual(first);
    expect(api.count('GET /api/v1/namespaces/brand-new')).toBe(1);
    expect(source.clusterFacts('brand-new')).not.toHaveProperty('then');
  });

  it('rejects when a missing namespace cannot be read (the admission then fails open)', async () => {
    const source = await start();
    await eventually(() => source.ready(), (ready) => ready);
    await expect(source.clusterFacts('nowhere')).rejects.toThrow('namespace "nowhere" is not in the cache and cannot be read (HTTP 404: namespaces "nowhere" not found)');
    api.forbidNamespaceReads = true;
    api.putUnwatched({ name: 'hidden' });
    await expect(source.clusterFacts('hidden')).rejects.toThrow(/HTTP 403: namespaces "hidden" is forbidden/);
    api.forbidNamespaceReads = false;
    api.namespaceReadDelayMs = 2_000;
    await expect(source.clusterFacts('hidden')).rejects.toThrow('reading it took over 500 ms');
  });

  it('restarts failed lists and broken watches with backoff, logging each failure', async () => {
    api.failLists.namespaces = 2;
    api.failVersion = 1;
    api.put('nodes', { name: 'node-1', kubeletVersion: 'v1.33.0' });
    api.put('namespaces', { name: 'kube-system' });
    const source = await start();
    expect(source.ready()).toBe(false);
    await eventually(() => source.ready(), (ready) => ready);
    const warnings = log.entries.filter((e) => e.level === 'warn');
    expect(warnings.filter((e) => e.message === 'cluster: watch failed, restarting it')).toHaveLength(2);
    expect(warnings.find((e) => e.fields.watch === 'namespaces')?.fields.error).toEqual({ code: 500, message: 'cannot list namespaces right now' });
    expect(warnings.some((e) => e.message === 'cluster: cannot read the API server version, retrying')).toBe(true);
    await eventually(() => source.clusterFacts('kube-system'), (f) => !('then' in f) && f.apiServerVersion === '1.33');

    // A broken watch is restarted, and changes made meanwhile still arrive.
    const watchesBefore = api.count('GET /api/v1/namespaces?');
    api.dropWatches();
    api.put('namespaces', { name: 'during-outage', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'baseline' } });
    await eventually(() => api.count('GET /api/v1/namespaces?'), (n) => n > watchesBefore);
    await eventually(
      () => source.clusterFacts('during-outage'),
      (f) => !('then' in f) && f.podSecurityLevel === 'baseline',
    );
    expect(source.ready()).toBe(true);
  });

  it('treats an unknown API server version as unknown, and is ready after the first failed try', async () => {
    api.failVersion = 1_000;
    api.put('namespaces', { name: 'team-a' });
    const source = await start();
    await eventually(() => source.ready(), (ready) => ready);
    expect(source.clusterFacts('team-a')).toMatchObject({ apiServerVersion: undefined });
  });

  it('close() stops the watches and retries', async () => {
    api.failVersion = 1_000;
    const source = await start();
    await eventually(() => source.ready(), (ready) => ready);
    await source.close();
    facts = undefined;
    expect(source.ready()).toBe(false);
    // A request the client had already sent when close() ran may still reach the server: let it land first.
    // What must not happen after that is a new one (a retry or a restarted watch, which come every few ms here).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const requests = api.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(api.requests.length).toBe(requests);
  });
});
