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
import { startWebhook, type Webhook } from '../../src/runtime/webhook.js';
import type { FakeApiServer } from '../cluster/fake-apiserver.js';
import { LogSink, testCertificates } from '../http/helpers.js';
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

  async function start(configText: string): Promise<{ webhook: Webhook; logs: LogSink }> {
    const configFile = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(configFile, configText);
    const certs = testCertificates();
    const logs = new LogSink();
    const webhook = await startWebhook({
      host: '127.0.0.1',
      port: 0,
      metricsPort: 0,
      drainSeconds: 0,
      closeGraceMs: 1_000,
      logLevel: 'info',
      logStream: logs.stream,
      injectorNamespace: 'sidecar-injector',
      configFile,
      certificates: { kind: 'pair', pair: { cert: certs.serving.cert, key: certs.serving.key } },
      cluster: { on: true, source: { kind: 'files', files: [join(dir, 'kubeconfig')], origin: '--kubeconfig' } },
      processMetrics: false,
      extraParts: (context) => [auditPart(context, 'sidecar-injector', { firstDelayMs: 0 })],
    });
    return { webhook, logs };
  }

  it('with audit.missingSidecars the missed pods reach the metrics listener', async () => {
    const { webhook, logs } = await start('audit: { missingSidecars: true, intervalSeconds: 600 }\n');
    try {
      expect(webhook.parts.map((p) => p.name)).toContain('audit');

      await eventually(async () => /sidecar_injector_pods_missing_sidecar\{namespace="shop"\}/.test(await metricsText(webhook.metricsPort)), 'the gauge');
      const text = await metricsText(webhook.metricsPort);
      // The world (test/audit/world.ts): shop holds three missed pods of a Deployment, a StatefulSet's and a Rollout's; team-a one
      // pod opted in by label; batch's stale pod counts apart.
      expect(text).toMatch(/^sidecar_injector_pods_missing_sidecar\{namespace="shop"\} 5$/m);
      expect(text).toMatch(/^sidecar_injector_pods_missing_sidecar\{namespace="team-a"\} 1$/m);
      expect(text).toMatch(/^sidecar_injector_pods_stale_sidecar\{namespace="batch"\} 1$/m);
      expect(logs.lines.some((l) => l.msg === 'missed-pods audit: figures changed')).toBe(true);
    } finally {
      await webhook.stop('test over');
    }
  });

  it('without it the part runs but exports no figures', async () => {
    const { webhook, logs } = await start('sidecar: { image: "busybox:1.37.0" }\n');
    try {
      await eventually(async () => logs.lines.some((l) => l.msg === 'missed-pods audit part started (audits while audit.missingSidecars is true)'), 'the start line');
      await new Promise((r) => setTimeout(r, 300));
      expect(await metricsText(webhook.metricsPort)).not.toMatch(/sidecar_injector_pods_missing_sidecar\{/);
    } finally {
      await webhook.stop('test over');
    }
  });
});
