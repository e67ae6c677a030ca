/**
 * The listener's TLS policy over real handshakes: TLS 1.3 as OpenSSL offers it; on TLS 1.2 only ECDHE key
 * exchange with AEAD ciphers.
 */
import { connect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.js';

type Handshake = { ok: true; protocol: string | null; cipher: string } | { ok: false; error: string };

function handshake(server: TestServer, options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost', ...options }, () => {
      resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().standardName });
      socket.destroy();
    });
    socket.once('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

describe('TLS policy of the webhook listener', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(['AES128-SHA', 'AES256-SHA256', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384'])(
    'refuses TLS 1.2 with %s (static RSA or CBC)',
    async (cipher) => {
      const result = await handshake(server, { maxVersion: 'TLSv1.2', ciphers: cipher });
      expect(result.ok).toBe(false);
    },
  );

  it.each(['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'])(
    'accepts TLS 1.2 with %s (ECDHE, AEAD)',
    async (cipher) => {
      const result = await handshake(server, { maxVersion: 'TLSv1.2', ciphers: cipher });
      expect(result).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    },
  );

  it('accepts TLS 1.3 with its default suites, and refuses TLS 1.1', async () => {
    expect(await handshake(server, {})).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
      expect(await handshake(server, { minVersion: 'TLSv1.3', ciphers: suite })).toMatchObject({ ok: true, cipher: suite });
    }
    expect((await handshake(server, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).ok).toBe(false);
  });
});
