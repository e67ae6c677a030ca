/**
 * Every kind of bad input gets a clear 4xx with a one-line JSON reason, never a stack trace, and the server
 * keeps serving: after each bad request a good one on the same server gets a correct answer.
 */
import { request as httpsRequest } from 'node:https';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APISERVER_HEADERS, startTestServer, type AdmissionAnswer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');

function review(patch: (request: Record<string, unknown>) => void, top: Record<string, unknown> = {}): string {
  const body = structuredClone(good.review) as unknown as Record<string, unknown>;
  patch(body.request as Record<string, unknown>);
  return JSON.stringify({ ...body, ...top });
}

interface BadCase {
  name: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  reason: RegExp;
  allow?: string;
}

const json = { ...APISERVER_HEADERS };

const CASES: BadCase[] = [
  { name: 'not JSON', body: 'this is not json', status: 400, reason: /not valid JSON/ },
  { name: 'truncated JSON', body: good.text.slice(0, 300), status: 400, reason: /not valid JSON/ },
  { name: 'empty body', body: '', status: 400, reason: /empty/ },
  { name: 'whitespace body', body: '  \n ', status: 400, reason: /empty/ },
  { name: 'JSON array', body: '[1,2]', status: 400, reason: /array/ },
  { name: 'JSON string', body: '"AdmissionReview"', status: 400, reason: /string/ },
  { name: 'JSON null', body: 'null', status: 400, reason: /null/ },
  { name: 'empty object', body: '{}', status: 400, reason: /apiVersion/ },
  { name: 'wrong apiVersion', body: review(() => {}, { apiVersion: 'admission.k8s.io/v2' }), status: 400, reason: /apiVersion/ },
  { name: 'wrong kind', body: review(() => {}, { kind: 'Pod' }), status: 400, reason: /kind/ },
  { name: 'missing request', body: review(() => {}, { request: undefined }), status: 400, reason: /no request/ },
  { name: 'request null', body: review(() => {}, { request: null }), status: 400, reason: /no request/ },
  { name: 'request an array', body: review(() => {}, { request: [] }), status: 400, reason: /request must be an object/ },
  { name: 'missing uid', body: review((r) => delete r.uid), status: 400, reason: /uid/ },
  { name: 'uid not a string', body: review((r) => (r.uid = 42)), status: 400, reason: /uid/ },
  { name: 'empty uid', body: review((r) => (r.uid = '')), status: 400, reason: /uid/ },
  { name: 'missing operation', body: review((r) => delete r.operation), status: 400, reason: /operation/ },
  { name: 'namespace not a string', body: review((r) => (r.namespace = ['x'])), status: 400, reason: /namespace/ },
  {
    name: '__proto__ pollution',
    body: good.text.replace('"metadata":{', '"metadata":{"__proto__":{"polluted":true},'),
    status: 400,
    reason: /forbidden "__proto__"/,
  },
  {
    name: '__proto__ spelled with unicode escapes',
    body: good.text.replace('"metadata":{', '"metadata":{"\\u005f_proto__":{"polluted":true},'),
    status: 400,
    reason: /forbidden "__proto__"/,
  },
  {
    name: 'constructor.prototype pollution',
    body: good.text.replace('"metadata":{', '"metadata":{"constructor":{"prototype":{"polluted":true}},'),
    status: 400,
    reason: /forbidden "constructor"/,
  },
  {
    name: 'content-type text/plain',
    headers: { ...json, 'content-type': 'text/plain' },
    body: good.text,
    status: 415,
    reason: /content-type "text\/plain".*application\/json/,
  },
  {
    name: 'content-type application/json-patch+json',
    headers: { ...json, 'content-type': 'application/json-patch+json' },
    body: good.text,
    status: 415,
    reason: /unsupported content-type/,
  },
  {
    name: 'no content-type',
    headers: { 'user-agent': 'kube-apiserver-admission' },
    body: good.text,
    status: 415,
    reason: /no content-type/,
  },
  { name: 'no content-type, no body', headers: {}, status: 400, reason: /empty/ },
  { name: 'unknown path', path: '/validate?timeout=10s', body: good.text, status: 404, reason: /no route "\/validate"/ },
  { name: 'root path', method: 'GET', path: '/', status: 404, reason: /no route/ },
  { name: 'GET /mutate', method: 'GET', path: '/mutate?timeout=10s', headers: {}, status: 405, reason: /GET not allowed/, allow: 'POST' },
  { name: 'PUT /mutate', method: 'PUT', path: '/mutate', body: good.text, status: 405, reason: /not allowed/, allow: 'POST' },
  { name: 'POST /healthz', method: 'POST', path: '/healthz', body: '{}', status: 405, reason: /not allowed/, allow: 'GET, HEAD' },
  { name: 'DELETE /readyz', method: 'DELETE', path: '/readyz', headers: {}, status: 405, reason: /not allowed/, allow: 'GET, HEAD' },
];

function expectOneLineError(body: string, reason: RegExp): void {
  expect(body.trim()).not.toContain('\n');
  expect(body).not.toMatch(/\bat .+:\d+:\d+/);
  expect(body).not.toMatch(/statusCode|FST_|Error:/);
  const parsed = JSON.parse(body) as Record<string, unknown>;
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(parsed.error).toMatch(reason);
  // The reason never quotes the body back.
  expect(parsed.error).not.toMatch(/nginx|kube-api-access|this is not|polluted/);
}

/** Opens a TLS connection and writes raw bytes: for what no well-behaved client would send. */
function rawTls(server: TestServer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** Resolves when the server closes the socket, with what it sent and how long it took. */
function untilClosed(socket: TLSSocket): Promise<{ data: string; ms: number }> {
  const started = performance.now();
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve({ data, ms: performance.now() - started })));
}

/** Streams `total` bytes of body without holding them: the server should stop us early with 413. */
function streamBody(server: TestServer, total: number, withLength: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let answered = false;
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/mutate?timeout=10s',
        ca: server.ca,
        servername: 'localhost',
        headers: { ...APISERVER_HEADERS, ...(withLength ? { 'content-length': String(total) } : {}) },
      },
      (res) => {
        answered = true;
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // Once the server has answered and closed, our remaining writes fail: that is expected.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    let sent = 0;
    const pump = (): void => {
      while (sent < total && !answered) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe('bad input', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  async function expectStillServing(): Promise<void> {
    const reply = await server.send({ body: good.text });
    expect(reply.status).toBe(200);
    const answer = JSON.parse(reply.body) as AdmissionAnswer;
    expect(answer.response.uid).toBe(good.review.request.uid);
    expect(answer.response.patchType).toBe('JSONPatch');
  }

  it.each(CASES)('$name → $status', async (testCase) => {
    const reply = await server.send({
      method: testCase.method ?? 'POST',
      path: testCase.path ?? '/mutate?timeout=10s',
      headers: testCase.headers ?? json,
      ...(testCase.body === undefined ? {} : { body: testCase.body }),
    });
    expect(reply.status).toBe(testCase.status);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expectOneLineError(reply.body, testCase.reason);
    if (testCase.allow !== undefined) expect(reply.headers.allow).toBe(testCase.allow);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectStillServing();
  });

  it.each([
    ['with content-length', true],
    ['chunked', false],
  ] as const)('a 7 MiB body %s → 413 without reading it all', async (_name, withLength) => {
    const reply = await streamBody(server, 7 * 1024 * 1024, withLength);
    expect(reply.status).toBe(413);
    expectOneLineError(reply.body, /exceeds the limit of 6291456 bytes/);
    await expectStillServing();
  });

  it.each([
    ['gzip', 'gzip', gzipSync(good.text)],
    ['br', 'br', brotliCompressSync(good.text)],
    ['gzip (header only, plain body)', 'gzip', Buffer.from(good.text)],
    ['identity, gzip', 'identity, gzip', gzipSync(good.text)],
    ['upper-case GZIP', 'GZIP', gzipSync(good.text)],
  ])('a body with content-encoding %s → 415', async (_name, encoding, body) => {
    const reply = await server.send({ headers: { ...json, 'content-encoding': encoding }, body });
    expect(reply.status).toBe(415);
    expectOneLineError(reply.body, /unsupported content-encoding ".+": send the body uncompressed/);
    await expectStillServing();
  });

  it('content-encoding identity is no encoding: 200', async () => {
    const reply = await server.send({ headers: { ...json, 'content-encoding': 'identity' }, body: good.text });
    expect(reply.status).toBe(200);
    expect((JSON.parse(reply.body) as AdmissionAnswer).response.uid).toBe(good.review.request.uid);
  });

  it('malformed HTTP → 400 with a one-line JSON reason', async () => {
    const socket = await rawTls(server);
    const closed = untilClosed(socket);
    socket.write('THIS IS NOT HTTP\r\n\r\n');
    const { data } = await closed;
    expect(data).toMatch(/^HTTP\/1\.1 400 /);
    expectOneLineError(data.slice(data.indexOf('\r\n\r\n') + 4), /malformed HTTP request/);
    await expectStillServing();
  });

  it('cuts off a client that trickles its headers, and one that stalls its body', async () => {
    // Defaults: headers within 5 s, the whole request within 10 s, checked every second.
    const slowHeaders = await rawTls(server);
    const stalledBody = await rawTls(server);
    const headersClosed = untilClosed(slowHeaders);
    const bodyClosed = untilClosed(stalledBody);
    slowHeaders.write('POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl');
    stalledBody.write(
      'POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2000\r\n\r\n{"apiVersion":',
    );
    const [headers, body] = await Promise.all([headersClosed, bodyClosed]);
    // Closed by the headers timeout (not at once), long before Node's default 30 s check interval would.
    expect(headers.ms).toBeGreaterThan(4_000);
    expect(headers.ms).toBeLessThan(9_000);
    expect(headers.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(body.ms).toBeLessThan(14_000);
    expect(body.data).toMatch(/^HTTP\/1\.1 408 /);
    await expectStillServing();
  }, 25_000);
});
