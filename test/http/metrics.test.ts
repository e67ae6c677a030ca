/** `/metrics` on its own plain-HTTP listener, after real admissions over TLS. */
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMetricsApp, createMetrics } from '../../src/http/metrics.js';
import { LISTENER_DEFAULTS } from '../../src/http/server-factory.js';
import { startTestServer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] ?? '' }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics', () => {
  let server: TestServer;
  let metricsServer: Server;
  let metricsPort: number;
  beforeAll(async () => {
    server = await startTestServer({ processMetrics: true });
    metricsServer = buildMetricsApp(server.metrics.registry);
    await new Promise<void>((resolve) => metricsServer.listen(0, '127.0.0.1', resolve));
    metricsPort = (metricsServer.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((resolve) => metricsServer?.close(resolve));
  });

  it('counts admissions by decision and reason, times them, and tracks in-flight requests', async () => {
    const fixture = loadFixture('create-pod.json');
    for (let i = 0; i < 3; i++) expect((await server.send({ body: fixture.text })).status).toBe(200);
    const excluded = structuredClone(fixture.review);
    excluded.request.namespace = 'kube-system';
    expect((await server.send({ body: JSON.stringify(excluded) })).status).toBe(200);
    expect((await server.send({ body: 'nope' })).status).toBe(400);
    expect((await server.send({ method: 'GET', path: '/mutate', headers: {} })).status).toBe(405);

    const { status, body, type } = await get(metricsPort, '/metrics');
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain/);
    expect(body).toContain('sidecar_injector_admissions_total{decision="injected",reason="none"} 3');
    expect(body).toContain('sidecar_injector_admissions_total{decision="skipped",reason="excluded-namespace"} 1');
    expect(body).toContain('sidecar_injector_admission_duration_seconds_count 4');
    expect(body).toMatch(/sidecar_injector_admission_duration_seconds_bucket\{le="0\.0005"\} \d+/);
    expect(body).toContain('sidecar_injector_inflight_requests 0');
    expect(body).toContain('sidecar_injector_rejected_requests_total{code="400",reason="invalid-body"} 1');
    expect(body).toContain('sidecar_injector_rejected_requests_total{code="405",reason="method-not-allowed"} 1');
    // Default process metrics, in this app's own registry.
    expect(body).toContain('process_cpu_user_seconds_total');
    expect(body).toContain('nodejs_eventloop_lag_seconds');
  });

  it('counts sidecars reduced by Pod Security, by level', async () => {
    const levels: Record<string, 'baseline' | 'restricted'> = { web: 'baseline', payments: 'restricted' };
    const reducing = await startTestServer({ clusterFacts: (namespace) => ({ podSecurityLevel: levels[namespace] ?? 'privileged' }) });
    try {
      const fixture = loadFixture('create-pod.json');
      for (const namespace of ['web', 'payments', 'payments', 'open']) {
        const review = structuredClone(fixture.review);
        review.request.namespace = namespace;
        expect((await reducing.send({ body: JSON.stringify(review) })).status).toBe(200);
      }
      const body = await reducing.metrics.registry.metrics();
      expect(body).toContain('sidecar_injector_pod_security_reductions_total{level="baseline"} 1');
      expect(body).toContain('sidecar_injector_pod_security_reductions_total{level="restricted"} 2');
      expect(body).not.toContain('sidecar_injector_pod_security_reductions_total{level="privileged"}');
    } finally {
      await reducing.close();
    }
  });

  it('serves only GET /metrics', async () => {
    expect((await get(metricsPort, '/')).status).toBe(404);
    const post = await get(metricsPort, '/metrics', 'POST');
    expect(post.status).toBe(405);
    expect(JSON.parse(post.body)).toEqual({ error: 'method POST not allowed on /metrics' });
  });

  it('the metrics listener has the webhook listener\'s timeouts and connection cap', () => {
    expect(metricsServer.headersTimeout).toBe(LISTENER_DEFAULTS.headersTimeoutMs);
    expect(metricsServer.requestTimeout).toBe(LISTENER_DEFAULTS.requestTimeoutMs);
    expect(metricsServer.keepAliveTimeout).toBe(LISTENER_DEFAULTS.keepAliveTimeoutMs);
    expect(metricsServer.maxConnections).toBe(LISTENER_DEFAULTS.maxConnections);
  });

  it('each app has its own registry: several in one process do not collide', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.admissions.inc({ decision: 'injected', reason: 'none' });
    expect(await b.registry.metrics()).not.toContain('sidecar_injector_admissions_total{decision="injected"');
    expect(await a.registry.metrics()).toContain('sidecar_injector_admissions_total{decision="injected",reason="none"} 1');
  });
});
