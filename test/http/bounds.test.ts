/**
 * Memory is bounded whatever clients do: a cap on open connections (handshaking ones included), a short TLS
 * handshake deadline, and a budget of request-body bytes held at once (excess requests wait, then get 503).
 * Real TLS on 127.0.0.1; assertions on counts and states, never on durations.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { LISTENER_DEFAULTS } from '../../src/http/server-factory.js';
import { APISERVER_HEADERS, startTestServer, type AdmissionAnswer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await sleep(10);
}

/** Every socket a test opened: destroyed after it, pass or fail, so that closing the server never waits on one. */
const opened: Socket[] = [];

/** A TLS connection, or `undefined` when the server closed it before the handshake completed. */
function tryTls(server: TestServer): Promise<TLSSocket | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => resolve(socket));
    opened.push(socket);
    socket.once('error', () => resolve(undefined));
    socket.once('close', () => resolve(undefined));
  });
}

/** One HTTP/1.1 exchange on an open socket: resolves with the status line's code. */
function exchange(socket: TLSSocket, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('latin1');
      const head = data.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(data)?.[1];
      if (head !== -1 && length !== undefined && data.length >= head + 4 + Number(length)) {
        socket.off('data', onData);
        resolve(Number(data.slice(9, 12)));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(request);
  });
}

const healthz = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';

function connections(server: TestServer): Promise<number> {
  return new Promise((resolve, reject) => server.app.server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

/** An AdmissionReview of exactly `size` bytes (a padding annotation). */
function reviewOfSize(size: number): string {
  const review = structuredClone(good.review);
  const metadata = review.request.object.metadata as { annotations?: Record<string, string> };
  metadata.annotations = { 'example.com/pad': '' };
  const base = JSON.stringify(review).length;
  metadata.annotations['example.com/pad'] = 'x'.repeat(size - base);
  return JSON.stringify(review);
}

/** Sends headers and the first half of a body, then stalls: the request holds its reservation. */
async function stalledPost(server: TestServer, body: string): Promise<{ socket: TLSSocket; finish: () => Promise<number> }> {
  const socket = await tryTls(server);
  if (socket === undefined) throw new Error('could not connect');
  const head =
    `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${APISERVER_HEADERS['content-type']}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const half = body.length >> 1;
  socket.write(head + body.slice(0, half));
  return { socket, finish: () => exchange(socket, body.slice(half)) };
}

let server: TestServer | undefined;
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await server?.close();
  server = undefined;
});

describe('connections', () => {
  it('the listener caps connections and cuts handshakes short by default', () => {
    expect(LISTENER_DEFAULTS.maxConnections).toBeLessThanOrEqual(1024);
    expect(LISTENER_DEFAULTS.handshakeTimeoutMs).toBeLessThanOrEqual(5_000);
  });

  it('at the cap a new connection is closed before TLS while an open one is still served', async () => {
    server = await startTestServer({ listener: { maxConnections: 2 } });
    expect(server.app.server.maxConnections).toBe(2);
    const first = await tryTls(server);
    const second = await tryTls(server);
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    await until(async () => (await connections(server!)) === 2);

    expect(await tryTls(server)).toBeUndefined();
    expect(await exchange(first!, healthz)).toBe(200);

    second!.destroy();
    await until(async () => (await connections(server!)) === 1);
    const fresh = await tryTls(server);
    expect(fresh).toBeDefined();
    expect(await exchange(fresh!, healthz)).toBe(200);
    first!.destroy();
    fresh!.destroy();
  });

  it('stalled ClientHellos hold their slots only until the handshake deadline', async () => {
    server = await startTestServer({ listener: { maxConnections: 2, handshakeTimeoutMs: 300 } });
    const stalled: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = netConnect(server.port, '127.0.0.1');
      opened.push(socket);
      socket.on('error', () => {});
      closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
      // The first 3 bytes of a TLS record carrying a ClientHello, then nothing.
      socket.write(Buffer.from([0x16, 0x03, 0x01]));
      stalled.push(socket);
    }
    await until(async () => (await connections(server!)) === 2);
    expect(await tryTls(server)).toBeUndefined();

    // The server, not us, closes them.
    await Promise.all(closed);
    const fresh = await tryTls(server);
    expect(fresh).toBeDefined();
    expect(await exchange(fresh!, healthz)).toBe(200);
    fresh!.destroy();
  });
});

describe('request-body bytes held at once', () => {
  const SIZE = 150_000;
  const limits = { bodyLimit: 200_000, bodyBudget: { bytes: 200_000 } };

  it('a request that does not fit waits, a small one goes ahead, and both big ones are answered', async () => {
    server = await startTestServer({ ...limits, bodyBudget: { ...limits.bodyBudget, maxWaitMs: 60_000 } });
    const big = reviewOfSize(SIZE);
    const holder = await stalledPost(server, big);
    await until(() => server!.metrics.bodyBytesHeld.get().then((m) => m.values[0]?.value === SIZE));

    const waiting = server.send({ body: big });
    await until(() => server!.metrics.waitingRequests.get().then((m) => m.values[0]?.value === 1));

    // A typical pod fits beside the holder and is not queued behind the waiting big one.
    const small = await server.send({ body: good.text });
    expect(small.status).toBe(200);
    expect((await server.metrics.waitingRequests.get()).values[0]?.value).toBe(1);
    expect((await server.metrics.bodyBytesHeld.get()).values[0]?.value).toBe(SIZE);

    expect(await holder.finish()).toBe(200);
    const answered = await waiting;
    expect(answered.status).toBe(200);
    expect((JSON.parse(answered.body) as AdmissionAnswer).response.uid).toBe(good.review.request.uid);
    await until(() => server!.metrics.bodyBytesHeld.get().then((m) => m.values[0]?.value === 0));
    expect((await server.metrics.waitingRequests.get()).values[0]?.value).toBe(0);
    holder.socket.destroy();
  });

  it('one that waits too long gets 503 with Retry-After, counted as overloaded', async () => {
    server = await startTestServer({ ...limits, bodyBudget: { ...limits.bodyBudget, maxWaitMs: 200 } });
    const big = reviewOfSize(SIZE);
    const holder = await stalledPost(server, big);
    await until(() => server!.metrics.bodyBytesHeld.get().then((m) => m.values[0]?.value === SIZE));

    const refused = await server.send({ body: big });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body)).toEqual({ error: expect.stringMatching(/^server busy/) });
    const counted = (await server.metrics.rejected.get()).values.find((v) => v.labels.reason === 'overloaded');
    expect(counted?.value).toBe(1);

    expect(await holder.finish()).toBe(200);
    expect((await server.send({ body: big })).status).toBe(200);
    holder.socket.destroy();
  });

  it('a client that leaves mid-body gives its bytes back', async () => {
    server = await startTestServer(limits);
    const holder = await stalledPost(server, reviewOfSize(SIZE));
    await until(() => server!.metrics.bodyBytesHeld.get().then((m) => m.values[0]?.value === SIZE));
    holder.socket.destroy();
    await until(() => server!.metrics.bodyBytesHeld.get().then((m) => m.values[0]?.value === 0));
    expect((await server.send({ body: reviewOfSize(SIZE) })).status).toBe(200);
  });
});
