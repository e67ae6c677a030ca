/**
 * The missed-pods auditor composed into the running webhook the way `serve` composes it with cluster access:
 * the production composition (startWebhook) with a kubeconfig for the fake API server, the configuration from a
 * file, the auditor as the extra part. Its gauges appear on the metrics listener; a configuration without the
 * audit leaves them absent.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPart } from '../../src/runtime/audit-part.js';
import type { FakeApiServer } from '../cluster/fake-apiserver.js';
import { startTestServer, type TestServer } from '../http/helpers.js';
import { startWorld } from '../audit/world.js';

function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never happened: ${what}`);
}

describe('the audit part in the composed webhook', () => {
  let api: FakeApiServer;
  let dir: string;
  beforeAll(async () => {
    api = await startWorld();
    dir = mkdtempSync(join(tmpdir(), 'audit-part-'));
    writeFileSync(
      join(dir, 'kubeconfig'),
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: fake',
        `clusters: [{name: fake, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: jane, user: {token: token}}]',
        'contexts: [{name: fake, context: {cluster: fake, user: jane}}]',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(configText: string): Promise<TestServer> {
    const configFile = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(configFile, configText);
    return startTestServer({
      configFile,
      cluster: { on: true, source: { kind: 'files', files: [join(dir, 'kubeconfig')], origin: '--kubeconfig' } },
      extraParts: (context) => [auditPart(context, 'sidecar-injector', { firstDelayMs: 0 })],
    });
  }

  it('with audit.missingSidecars the missed pods reach the metrics listener', async () => {
    const server = await start('audit: { missingSidecars: true, intervalSeconds: 600 }\n');
    try {
      expect(server.webhook.parts.map((p) => p.name)).toContain('audit');

      await eventually(async () => /sidecar_injector_pods_missing_sidecar\{namespace="shop"\}/.test(await metricsText(server.metricsPort)), 'the gauge');
      const text = await metricsText(server.metricsPort);
      // The world (test/audit/world.ts): shop holds three missed pods of a Deployment, a StatefulSet's and a Rollout's; team-a one
      // pod opted in by label; batch's stale pod counts apart.
      expect(text).toMatch(/^sidecar_injector_pods_missing_sidecar\{namespace="shop"\} 5$/m);
      expect(text).toMatch(/^sidecar_injector_pods_missing_sidecar\{namespace="team-a"\} 1$/m);
      expect(text).toMatch(/^sidecar_injector_pods_stale_sidecar\{namespace="batch"\} 1$/m);
      expect(server.logs.lines.some((l) => l.msg === 'missed-pods audit: figures changed')).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('without it the part runs but exports no figures', async () => {
    const server = await start('sidecar: { image: "busybox:1.37.0" }\n');
    try {
      await eventually(async () => server.logs.lines.some((l) => l.msg === 'missed-pods audit part started (audits while audit.missingSidecars is true)'), 'the start line');
      await new Promise((r) => setTimeout(r, 300));
      expect(await metricsText(server.metricsPort)).not.toMatch(/sidecar_injector_pods_missing_sidecar\{/);
    } finally {
      await server.close();
    }
  });
});
