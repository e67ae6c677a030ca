/**
 * What a request can put in a log line is bounded: a 1 MB uid, pod name, operation or apiVersion makes a line of
 * a few KiB, with a marker where a field was cut. The answer itself still echoes the whole uid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELD_MAX } from '../../src/http/log-fields.js';
import { startTestServer, type AdmissionAnswer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');
const MEGABYTE = 1024 * 1024;
const LINE_MAX = 8 * 1024;

function withRequest(patch: (request: Record<string, unknown>) => void, top: Record<string, unknown> = {}): string {
  const review = structuredClone(good.review) as unknown as Record<string, unknown>;
  patch(review.request as Record<string, unknown>);
  return JSON.stringify({ ...review, ...top });
}

describe('log lines are bounded', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a 1 MB uid, pod name and container name: the answer echoes the uid whole, the log line stays small', async () => {
    const uid = 'u'.repeat(MEGABYTE);
    const body = withRequest((request) => {
      request.uid = uid;
      request.name = 'n'.repeat(MEGABYTE);
      const pod = request.object as { metadata: Record<string, unknown>; spec: { containers: { name: string }[] } };
      pod.metadata.name = 'p'.repeat(MEGABYTE);
      // A container already mounting something at /pod-data is skipped with a warning naming it.
      pod.spec.containers.push({ name: 'c'.repeat(MEGABYTE), image: 'x', volumeMounts: [{ name: 'other', mountPath: '/pod-data' }] } as never);
    });
    const reply = await server.send({ body });
    expect(reply.status).toBe(200);
    expect((JSON.parse(reply.body) as AdmissionAnswer).response.uid).toBe(uid);

    const line = server.logs.lines.find((l) => l.msg === 'admission');
    expect(line).toBeDefined();
    expect(String(line?.uid)).toBe(`${'u'.repeat(FIELD_MAX)}…[${MEGABYTE - FIELD_MAX} more characters]`);
    expect(String(line?.pod)).toMatch(/^n+…\[\d+ more characters\]$/);
    expect(JSON.stringify(line?.warnings)).toMatch(/more characters\]/);
    expect(Math.max(...server.logs.raw.map((raw) => raw.length))).toBeLessThan(LINE_MAX);
  });

  it('a 1 MB operation or namespace', async () => {
    const before = server.logs.raw.length;
    const operation = await server.send({ body: withRequest((request) => (request.operation = 'O'.repeat(MEGABYTE))) });
    expect(operation.status).toBe(200);
    const namespace = await server.send({ body: withRequest((request) => (request.namespace = 's'.repeat(MEGABYTE))) });
    expect(namespace.status).toBe(200);
    const lines = server.logs.raw.slice(before);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const raw of lines) expect(raw.length).toBeLessThan(LINE_MAX);
  });

  it('a refused request quoting a 1 MB apiVersion: a short reply and a short line', async () => {
    const before = server.logs.raw.length;
    const reply = await server.send({ body: withRequest(() => {}, { apiVersion: 'v'.repeat(MEGABYTE) }) });
    expect(reply.status).toBe(400);
    expect(reply.body.length).toBeLessThan(LINE_MAX);
    expect(reply.body).toMatch(/more characters\]/);
    const lines = server.logs.raw.slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(LINE_MAX);
  });
});
