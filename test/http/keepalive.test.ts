/**
 * The API server keeps up to ~25 idle connections and closes them after 90 s: our keep-alive timeout must be
 * longer, and the slow-client cut-offs must not touch idle keep-alive sockets. Objects up to 3 MiB must pass.
 */
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_ANNOTATION } from '../../src/core/labels.js';
import type { PatchOperation } from '../../src/core/types.js';
import { DEFAULT_BODY_LIMIT } from '../../src/http/app.js';
import { applyToCopy } from '../support/pod-assertions.js';
import { decodePatch, startTestServer, type AdmissionAnswer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('keep-alive and body size, default listener', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps idle connections longer than the API server does (≥ 120 s), with tight request cut-offs', () => {
    const raw = server.app.server;
    expect(raw.keepAliveTimeout).toBeGreaterThanOrEqual(120_000);
    expect(raw.headersTimeout).toBeLessThanOrEqual(10_000);
    expect(raw.requestTimeout).toBeLessThanOrEqual(15_000);
    expect(raw.requestTimeout).toBeGreaterThan(0);
  });

  it('speaks HTTP/1.1 over TLS ≥ 1.2, and an idle keep-alive socket is still open and reused seconds later', async () => {
    const first = await server.send({ body: good.text });
    expect(first.status).toBe(200);
    expect(first.headers.connection).toBe('keep-alive');
    const socket = first.socket as TLSSocket;
    expect(['TLSv1.2', 'TLSv1.3']).toContain(socket.getProtocol());
    await sleep(2_500);
    expect(socket.destroyed).toBe(false);
    const second = await server.send({ method: 'GET', path: '/healthz', headers: {} });
    expect(second.status).toBe(200);
    expect(second.socket).toBe(socket);
  });

  it('answers ALPN like the API server sees it: h2 offered, http/1.1 chosen', async () => {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect(
        { host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    expect(socket.alpnProtocol).toBe('http/1.1');
    socket.destroy();
  });

  it(`accepts a ~3 MiB pod (limit ${DEFAULT_BODY_LIMIT} bytes) and answers it`, async () => {
    const review = structuredClone(good.review);
    const metadata = review.request.object.metadata as { annotations?: Record<string, string> };
    metadata.annotations = { 'example.com/huge': 'x'.repeat(3 * 1024 * 1024 - 4096) };
    const body = JSON.stringify(review);
    expect(body.length).toBeGreaterThan(3 * 1024 * 1024 - 4096);
    const reply = await server.send({ body });
    expect(reply.status).toBe(200);
    const answer = JSON.parse(reply.body) as AdmissionAnswer;
    expect(answer.response.uid).toBe(good.review.request.uid);
    const pod = applyToCopy(review.request.object, decodePatch(answer) as PatchOperation[]);
    expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeTypeOf('string');
    expect(pod.metadata?.annotations?.['example.com/huge']).toHaveLength(3 * 1024 * 1024 - 4096);
  });
});

describe('keep-alive with short request cut-offs', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ listener: { headersTimeoutMs: 1_000, requestTimeoutMs: 1_500 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('an idle keep-alive socket outlives the headers and request timeouts (they time requests, not idleness)', async () => {
    const first = await server.send({ body: good.text });
    expect(first.status).toBe(200);
    await sleep(3_500);
    expect(first.socket.destroyed).toBe(false);
    const second = await server.send({ body: good.text });
    expect(second.status).toBe(200);
    expect(second.socket).toBe(first.socket);
  });
});
