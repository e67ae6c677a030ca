#!/usr/bin/env node
/**
 * Time, requests, bytes and memory of one missed-pods audit over 10,000 pods, against the fake API server of the
 * tests (test/cluster/fake-apiserver.ts, bundled on the fly with esbuild) on 127.0.0.1, through the real HTTP
 * client (`kubeApi`) and the built code (dist/: run `make build` first). Prints one JSON line.
 *
 * The cluster: 20 namespaces labelled enabled with 500 pods each (from the nginx-single fixture): 95 % injected
 * (one in 50 of them stale), 4 % missed (5 Deployments per namespace), 1 % opted out. Bounded: gives up after
 * 60 s. Usage: node bench/audit.mjs [--pods 10000]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const STATUS = 'sidecar-injector.io/status';
const NAMESPACES = 20;
const LIMIT_MS = 60_000;

function status(image) {
  return JSON.stringify({
    version: 1, mode: 'classic', sidecar: 'sidecar', image, volume: { name: 'shared-data', created: true }, mounted: ['nginx'],
    skipped: [], mountPath: '/pod-data', shareProcessNamespace: true, defaultContainer: true, podSecurityLevel: 'privileged', reduced: [],
  });
}

async function loadFakeServer() {
  const { build } = await import('esbuild');
  // Compiled inside the repository (bench/results is ignored by git), so that its packages, left external, resolve
  // from node_modules as the test suite's do.
  const results = fileURLToPath(new URL('bench/results/', root));
  mkdirSync(results, { recursive: true });
  const dir = mkdtempSync(join(results, '.audit-bench-'));
  const outfile = join(dir, 'fake-apiserver.mjs');
  await build({ entryPoints: [fileURLToPath(new URL('test/cluster/fake-apiserver.ts', root))], bundle: true, packages: 'external', platform: 'node', format: 'esm', outfile, logLevel: 'error' });
  const module = await import(pathToFileURL(outfile).href);
  rmSync(dir, { recursive: true, force: true });
  return module.FakeApiServer;
}

function populate(api, total, spec) {
  const perNamespace = Math.ceil(total / NAMESPACES);
  let made = 0;
  for (let n = 0; n < NAMESPACES && made < total; n += 1) {
    const ns = `team-${n}`;
    api.put('namespaces', { name: ns, labels: { 'sidecar-injection': 'enabled' } });
    for (let d = 0; d < 5; d += 1) {
      api.putObject(`/apis/apps/v1/namespaces/${ns}/replicasets/app-${d}-5f6d7c8b9a`, {
        apiVersion: 'apps/v1', kind: 'ReplicaSet',
        metadata: { name: `app-${d}-5f6d7c8b9a`, namespace: ns, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: `app-${d}`, uid: `d-${d}`, controller: true }] },
      });
    }
    for (let i = 0; i < perNamespace && made < total; i += 1, made += 1) {
      const kind = i % 100;
      const deployment = `app-${i % 5}`;
      const annotations = kind < 95 ? { [STATUS]: status(kind % 50 === 0 ? 'busybox:1.36.1' : 'busybox:1.37.0') } : undefined;
      const labels = { app: deployment, 'pod-template-hash': '5f6d7c8b9a', ...(kind === 99 ? { 'sidecar-injection': 'disabled' } : {}) };
      api.putPod({
        apiVersion: 'v1', kind: 'Pod',
        metadata: {
          name: `${deployment}-5f6d7c8b9a-${i.toString(36).padStart(5, '0')}`, namespace: ns, uid: `${ns}-${i}`, resourceVersion: String(1000 + made),
          creationTimestamp: '2026-11-28T09:00:00Z', labels, ...(annotations ? { annotations } : {}),
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${deployment}-5f6d7c8b9a`, uid: `rs-${i % 5}`, controller: true, blockOwnerDeletion: true }],
        },
        spec: { ...spec, nodeName: `worker-${i % 7}` },
        status: { phase: 'Running', podIP: `10.244.${n}.${i % 250}`, startTime: '2026-11-28T09:00:02Z' },
      });
    }
  }
  api.put('nodes', { name: 'worker-0', kubeletVersion: 'v1.31.4' });
}

/** One audit over `pods` pods; resolves with the figures. */
export async function runAuditBench({ pods = 10_000 } = {}) {
  const FakeApiServer = await loadFakeServer();
  const { parse } = await import('yaml');
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { kubeApi } = await import(new URL('dist/cluster/check-api.js', root).href);
  const { auditCluster } = await import(new URL('dist/audit/cluster-audit.js', root).href);
  const { defaultConfig } = await import(new URL('dist/core/defaults.js', root).href);

  const fixture = parse(readFileSync(new URL('test/fixtures/pods/nginx-single.yaml', root), 'utf8'));
  const api = new FakeApiServer();
  await api.start();
  const guard = setTimeout(() => {
    process.stderr.write(`audit bench: no result within ${LIMIT_MS} ms\n`);
    process.exit(1);
  }, LIMIT_MS);
  try {
    populate(api, pods, fixture.spec);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }], currentContext: 'fake',
    });
    const client = kubeApi(kc, 10_000);
    const namespaces = (await client.request('GET', '/api/v1/namespaces')).body.items;
    const setup = { config: defaultConfig(), configSource: 'defaults', context: { injectorNamespace: 'sidecar-injector', apiServerVersion: '1.31', minKubeletVersion: '1.31' } };

    globalThis.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const sampler = setInterval(() => {
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    }, 5);
    api.bytesSent = 0;
    const requestsBefore = api.requests.length;
    const started = performance.now();
    const audit = await auditCluster(client, namespaces, setup);
    const ms = performance.now() - started;
    clearInterval(sampler);
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    if (!audit.ok) throw new Error(`audit failed: ${audit.error ?? audit.skipped}`);
    return {
      pods,
      scanned: audit.result.scanned,
      missed: audit.result.missed.length,
      stale: Object.values(audit.result.staleByNamespace).reduce((a, b) => a + b, 0),
      workloads: audit.workloads.length,
      requests: api.requests.length - requestsBefore,
      responseMiB: Number((api.bytesSent / 2 ** 20).toFixed(2)),
      ms: Math.round(ms),
      // Includes the fake server's own JSON work: it runs in this process.
      heapGrowthMiB: Number(((heapPeak - heapBefore) / 2 ** 20).toFixed(1)),
    };
  } finally {
    clearTimeout(guard);
    await api.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { pods: { type: 'string', default: '10000' } } });
  const figures = await runAuditBench({ pods: Number(values.pods) });
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
