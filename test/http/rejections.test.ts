/**
 * Malformed HTTP, answered below fastify (400, 408, 431), is counted by reason like every other refusal, and
 * logged at info, at most a handful of lines per window however many arrive.
 */
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINES_PER_WINDOW, WINDOW_MS } from '../../src/http/rejections.js';
import { startTestServer, type TestServer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');

function rawTls(server: TestServer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes raw bytes on a fresh TLS connection; resolves with what the server wrote before closing. */
async function exchange(server: TestServer, bytes: string): Promise<string> {
  const socket = await rawTls(server);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(bytes);
  await closed;
  return data;
}

async function rejectedCount(server: TestServer, code: string, reason: string): Promise<number> {
  const values = (await server.metrics.rejected.get()).values;
  return values.find((v) => v.labels.code === code && v.labels.reason === reason)?.value ?? 0;
}

const rejectedLines = (server: TestServer) => server.logs.lines.filter((line) => line.msg === 'request rejected');

describe('malformed HTTP is counted and logged', () => {
  let server: TestServer;
  let clock = 0;
  beforeAll(async () => {
    server = await startTestServer({
      now: () => clock,
      listener: { headersTimeoutMs: 500, requestTimeoutMs: 800, connectionsCheckingIntervalMs: 100 },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('400 malformed-http, 431 headers-too-large and 408 request-timeout each count and log a line at info', async () => {
    expect(await exchange(server, 'THIS IS NOT HTTP\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    const huge = `POST /mutate HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    expect(await exchange(server, huge)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await exchange(server, 'POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Ty')).toMatch(/^HTTP\/1\.1 408 /);

    expect(await rejectedCount(server, '400', 'malformed-http')).toBe(1);
    expect(await rejectedCount(server, '431', 'headers-too-large')).toBe(1);
    expect(await rejectedCount(server, '408', 'request-timeout')).toBe(1);
    const lines = rejectedLines(server);
    expect(lines.map((line) => [line.level, line.status, line.reason])).toEqual([
      [30, 400, 'malformed-http'],
      [30, 431, 'headers-too-large'],
      [30, 408, 'request-timeout'],
    ]);
    expect((await server.send({ body: good.text })).status).toBe(200);
  });

  it(`a flood is counted in full but logs at most ${LINES_PER_WINDOW} lines a window, then says how many it left out`, async () => {
    clock += WINDOW_MS;
    const before = rejectedLines(server).length;
    const flood = 3 * LINES_PER_WINDOW;
    for (let i = 0; i < flood; i++) await exchange(server, 'GARBAGE\r\n\r\n');
    expect(await rejectedCount(server, '400', 'malformed-http')).toBe(1 + flood);
    expect(rejectedLines(server).length - before).toBe(LINES_PER_WINDOW);

    clock += WINDOW_MS;
    await exchange(server, 'GARBAGE\r\n\r\n');
    const summary = server.logs.lines.filter((line) => typeof line.suppressed === 'number');
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ level: 40, suppressed: flood - LINES_PER_WINDOW });
    expect(rejectedLines(server).length - before).toBe(LINES_PER_WINDOW + 1);
  });
});
