/**
 * `check` (the pods-without-the-sidecar check) and `repair`, whole commands over real HTTP against the fake API
 * server: paging over more pods than one page, metadata-only lists, owner resolution, RBAC refusal, a kind repair
 * cannot restart, the dry run, `--yes`, and the refusal while the webhook fails open.
 */
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CheckReport } from '../../src/cli/check-report.js';
import { runCheck, type CheckDeps } from '../../src/cli/check.js';
import { RESTARTED_AT_ANNOTATION, runRepair, type RepairReport } from '../../src/cli/repair.js';
import { kubeApi } from '../../src/cluster/check-api.js';
import type { FakeApiServer } from '../cluster/fake-apiserver.js';
import { injectingWebhook, kubeConfigFor, startWorld, WORLD } from './world.js';

const NOW = new Date('2026-11-30T09:00:00Z');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

let api: FakeApiServer;
beforeEach(async () => {
  api = await startWorld();
});
afterEach(async () => {
  await api.stop();
});

function deps(): CheckDeps {
  return {
    connect: async () => ({ api: kubeApi(kubeConfigFor(api), 5000), context: 'fake', inCluster: false }),
    probe: async () => ({ reached: false, error: 'not dialled in this test' }),
    now: () => NOW,
  };
}

async function run(command: typeof runCheck, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await command(argv, { stdout, stderr, env: {}, deps: deps() });
  return { code, out: stdout.text, err: stderr.text };
}

describe('check: pods without the sidecar', () => {
  it('lists missed pods by workload with the fixing command, over pages of metadata, the spec only where needed', async () => {
    const { out } = await run(runCheck, ['-o', 'json', '--no-dry-run']);
    const report = JSON.parse(out) as CheckReport;
    const check = report.checks.find((c) => c.id === 'missed-pods')!;
    expect(check.status).toBe('warn');
    expect(report.missedPods).toMatchObject({
      missed: 6,
      missedByNamespace: { shop: 5, 'team-a': 1 },
      stale: 1,
      staleByNamespace: { batch: 1 },
      configuration: 'the defaults (ConfigMap sidecar-injector/sidecar-injector-config: configmaps "sidecar-injector-config" not found (HTTP 404))',
    });
    expect(report.missedPods!.workloads.map((w) => [w.namespace, w.kind, w.name, w.pods, w.oldest, w.fix ?? w.reason])).toEqual([
      ['shop', 'Deployment', 'web', 3, '2026-11-20T09:00:00Z', 'kubectl rollout restart deployment/web -n shop'],
      ['shop', 'Rollout', 'canary', 1, '2026-11-28T09:00:00Z', 'repair cannot restart a Rollout: restart it by its own means (its controller decides how)'],
      ['shop', 'StatefulSet', 'db', 1, '2026-11-28T09:00:00Z', 'kubectl rollout restart statefulset/db -n shop'],
      ['team-a', 'Pod', 'debug-me', 1, '2026-11-28T09:00:00Z', expect.stringMatching(/^a bare pod has no controller.*never deletes pods/)],
    ]);
    // Two pages for batch (520 pods, 500 a page), each as metadata only; specs only for the 6 selected pods without status.
    const batchLists = api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/batch/pods?'));
    expect(batchLists).toHaveLength(2);
    expect(batchLists[1]).toMatch(/continue=/);
    // team-a has one such pod: read alone. shop has 7 (above 5): its pods are listed once more, in full.
    expect(api.requests.filter((r) => /^GET \/api\/v1\/namespaces\/[^/]+\/pods\/[^/?]+$/.test(r))).toEqual([
      'GET /api/v1/namespaces/team-a/pods/debug-me',
    ]);
    expect(api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/shop/pods?'))).toEqual([
      'GET /api/v1/namespaces/shop/pods?limit=500',
      'GET /api/v1/namespaces/shop/pods?limit=500',
    ]);
    // Pod opt-in: one cluster-wide list by label, not a list of every namespace.
    expect(api.requests).toContain('GET /api/v1/pods?limit=500&labelSelector=sidecar-injection%3Denabled');
    expect(api.requests.some((r) => r.startsWith('GET /api/v1/namespaces/kube-system/pods'))).toBe(false);
    expect(report.missedPods!.scanned).toBe(WORLD.fineInBatch + 9 + 1);
  });

  it('text: the workloads, the oldest age, stale pods apart; a warning unless --strict', async () => {
    const { out, code } = await run(runCheck, ['--no-dry-run']);
    expect(out).toMatch(/^! pods without the sidecar +6 pods in 4 workloads should carry the sidecar but do not/m);
    expect(out).toContain('shop deployment/web: 3 pods, oldest 10d: kubectl rollout restart deployment/web -n shop');
    expect(out).toMatch(/1 pod carry a sidecar older than today's configuration \(stale, by namespace: batch 1\), e\.g\. batch\/worker-0007 \(image busybox:1\.36\.1, today busybox:1\.37\.0\)/);
    expect(code).toBe(1); // the webhook configuration is absent in this world: that check fails, not this one
    const strict = await run(runCheck, ['--no-dry-run', '--strict', '-o', 'json']);
    expect((JSON.parse(strict.out) as CheckReport).checks.find((c) => c.id === 'missed-pods')!.status).toBe('fail');
  });

  it('RBAC refusal of list pods is reported as such', async () => {
    api.forbidPodLists = true;
    const { out } = await run(runCheck, ['--no-dry-run', '-o', 'json']);
    const check = (JSON.parse(out) as CheckReport).checks.find((c) => c.id === 'missed-pods')!;
    expect(check.status).toBe('warn');
    expect(check.message).toMatch(/^cannot list pods in namespace batch: pods is forbidden: .* \(HTTP 403\): check needs permission to list pods/);
  });

  it('judges by the --config given: a pinned native mode makes the classic pods stale and the Job pod missed', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'config.yaml');
    writeFileSync(file, 'nativeSidecar: always\n');
    const { out } = await run(runCheck, ['--no-dry-run', '-o', 'json', '--config', file]);
    const report = JSON.parse(out) as CheckReport;
    expect(report.missedPods).toMatchObject({ missed: 7, stale: WORLD.fineInBatch + 1, configuration: file });
    expect(report.missedPods!.workloads.find((w) => w.kind === 'Job')?.reason).toMatch(/Job's pods run to completion/);
  });
});

describe('repair', () => {
  it('a dry run by default: lists what it would restart and what it leaves alone, changes nothing', async () => {
    const { code, out } = await run(runRepair, []);
    expect(code).toBe(0);
    expect(out).toContain('- would restart: shop deployment/web (3 pods)');
    expect(out).toContain('- would restart: shop statefulset/db (1 pod)');
    expect(out).toMatch(/^! left alone: team-a pod\/debug-me \(1 pod\): a bare pod/m);
    expect(out).toMatch(/^! left alone: shop rollout\/canary \(1 pod\): repair cannot restart a Rollout/m);
    expect(out).toMatch(/dry run: nothing changed; run again with --yes/);
    expect(api.patches).toEqual([]);
    expect(api.requests.some((r) => r.startsWith('POST'))).toBe(false);
  });

  it('--yes: proves injection with a dry-run pod, then patches the pod templates as kubectl rollout restart does', async () => {
    api.webhook = injectingWebhook;
    const { code, out } = await run(runRepair, ['--yes', '-o', 'json']);
    expect(code, out).toBe(0);
    expect(api.requests).toContain('POST /api/v1/namespaces/shop/pods?dryRun=All');
    expect(api.patches.map((p) => [p.path, p.contentType])).toEqual([
      ['/apis/apps/v1/namespaces/shop/deployments/web', 'application/strategic-merge-patch+json'],
      ['/apis/apps/v1/namespaces/shop/statefulsets/db', 'application/strategic-merge-patch+json'],
    ]);
    expect(api.patches[0]!.body).toEqual({ spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: '2026-11-30T09:00:00Z' } } } } });
    const deployment = api.objects2.get('/apis/apps/v1/namespaces/shop/deployments/web') as { spec: { template: { metadata: { annotations?: Record<string, string>; labels?: Record<string, string> } } } };
    expect(deployment.spec.template.metadata).toEqual({ labels: { app: 'web' }, annotations: { [RESTARTED_AT_ANNOTATION]: '2026-11-30T09:00:00Z' } });
    const report = JSON.parse(out) as RepairReport;
    expect(report.restart.map((r) => r.outcome)).toEqual(['restarted', 'restarted']);
    expect(report.leftAlone.map((w) => w.kind)).toEqual(['Rollout', 'Pod']);
    // Never a delete.
    expect(api.requests.some((r) => r.startsWith('DELETE'))).toBe(false);
  });

  it('--yes refuses while a dry-run pod comes back without the sidecar (the webhook fails open)', async () => {
    const { code, out } = await run(runRepair, ['--yes']);
    expect(code).toBe(1);
    expect(out).toMatch(/✗ nothing restarted: dry-run pod in namespace shop came back WITHOUT the sidecar/);
    expect(api.patches).toEqual([]);
  });

  it('--namespace and --selector narrow what is looked at and restarted', async () => {
    api.webhook = injectingWebhook;
    const { code, out } = await run(runRepair, ['--yes', '--namespace', 'shop', '-l', 'app=db', '-o', 'json']);
    expect(code, out).toBe(0);
    expect(api.patches.map((p) => p.path)).toEqual(['/apis/apps/v1/namespaces/shop/statefulsets/db']);
    expect(api.requests.some((r) => r.includes('/namespaces/batch/'))).toBe(false);
    expect(api.requests).toContain('GET /api/v1/namespaces/shop/pods?limit=500&labelSelector=app%3Ddb');
  });

  it('a refused patch fails the run (exit 1) with the API server message; RBAC refusal of list pods too', async () => {
    api.webhook = injectingWebhook;
    api.forbidPatches = true;
    const patched = await run(runRepair, ['--yes']);
    expect(patched.code).toBe(1);
    expect(patched.out).toMatch(/✗ FAILED: User "jane" cannot patch resource .* \(HTTP 403\): shop deployment\/web/);
    api.forbidPodLists = true;
    const listed = await run(runRepair, []);
    expect(listed.code).toBe(1);
    expect(listed.err).toMatch(/^sidecar-injector repair: cannot list pods in namespace batch: pods is forbidden.*: repair needs permission to list pods/);
  });

  it('usage errors exit 2', async () => {
    const { code, err } = await run(runRepair, ['--bogus']);
    expect(code).toBe(2);
    expect(err).toMatch(/^sidecar-injector repair: Unknown option '--bogus'/);
  });
});
