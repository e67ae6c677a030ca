/**
 * Certificate rotation under load, on the real server (startServer: the HTTPS listener `serve` runs) with the
 * file reload `serve` wires. Keep-alive clients keep sending POST /mutate while the files are replaced, both the
 * way `make certs` does it (atomic renames) and the way the kubelet updates a Secret volume (a `..data` symlink
 * swap): no request fails, open connections stay open (they keep the certificate they were handshaken with), new
 * handshakes get the new certificate. A bad pair is refused, logged and counted, and the old one stays.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { startWebhook, type Webhook } from '../../src/runtime/webhook.js';
import { writeCertificateFiles, writeFileAtomic } from '../../src/tls/certificate-files.js';
import { generateServingCertificate, type KeyPairPem } from '../../src/tls/certificates.js';
import type { Counter, Gauge, Registry } from 'prom-client';
import type { CertificateMetrics } from '../../src/tls/metrics.js';
import { LogSink, send, testCertificates } from '../http/helpers.js';
import { loadFixture } from '../support/fixtures.js';

const fixture = loadFixture('create-pod.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ca = () => testCertificates().ca;

/** A serving certificate for the test server, signed by the same CA as the first one. */
function newServing(): KeyPairPem {
  return generateServingCertificate(ca(), {
    service: 'sidecar-injector',
    namespace: 'sidecar-injector',
    extraDnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The certificate a brand-new TLS handshake is given. */
async function handshakeFingerprint(port: number): Promise<{ fingerprint: string; alpn: string | false | null }> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect(
      { host: '127.0.0.1', port, ca: ca().cert, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] },
      () => resolve(s),
    );
    s.once('error', reject);
  });
  const result = { fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol };
  socket.destroy();
  return result;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The certificate metrics the running server registered, read back from its registry. */
function certificateMetricsOf(registry: Registry): CertificateMetrics {
  const expiry = registry.getSingleMetric('sidecar_injector_certificate_expiry_timestamp_seconds') as Gauge | undefined;
  const reloads = registry.getSingleMetric('sidecar_injector_certificate_reloads_total') as Counter<'result'> | undefined;
  if (expiry === undefined || reloads === undefined) throw new Error('certificate metrics not registered');
  return { expiry, reloads };
}

async function reloadCount(metrics: CertificateMetrics, result: 'ok' | 'failed'): Promise<number> {
  const { values } = await metrics.reloads.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function expirySeconds(metrics: CertificateMetrics): Promise<number | undefined> {
  return (await metrics.expiry.get()).values[0]?.value;
}

interface Harness {
  running: Webhook;
  metrics: CertificateMetrics;
  logs: LogSink;
}

interface Load {
  /** Which phase each connection served requests in. */
  sockets: Map<Socket, Set<'before' | 'after'>>;
  failures: string[];
  completed: number;
  /** Requests sent after the swap over a socket the agent had used before (`reusedSocket`). */
  reusedAfter: number;
  markSwapped(): void;
  stop(): Promise<void>;
}

/** Four workers sending POST /mutate back to back over one keep-alive agent (at most four connections). */
function startLoad(port: number, agent: Agent, maxRequests = 4_000): Load {
  let stopped = false;
  let phase: 'before' | 'after' = 'before';
  const load: Omit<Load, 'markSwapped' | 'stop'> = { sockets: new Map(), failures: [], completed: 0, reusedAfter: 0 };
  const worker = async (): Promise<void> => {
    while (!stopped && load.completed + load.failures.length < maxRequests) {
      const sentIn = phase;
      try {
        const reply = await send({ port, agent, body: fixture.text });
        if (reply.status !== 200) load.failures.push(`status ${reply.status}: ${reply.body}`);
        else load.completed += 1;
        const phases = load.sockets.get(reply.socket) ?? new Set();
        phases.add(sentIn);
        load.sockets.set(reply.socket, phases);
        if (sentIn === 'after' && phases.has('before')) load.reusedAfter += 1;
      } catch (err) {
        load.failures.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      }
    }
  };
  const workers = Promise.all([worker(), worker(), worker(), worker()]);
  return {
    ...load,
    get completed() {
      return load.completed;
    },
    get reusedAfter() {
      return load.reusedAfter;
    },
    markSwapped: () => {
      phase = 'after';
    },
    stop: async () => {
      stopped = true;
      await workers;
    },
  };
}

/** Lays out a directory as the kubelet's atomic writer does: files behind a `..data` symlink swapped by rename. */
async function kubeletVolume(dir: string, files: Record<string, string>, generation: number): Promise<void> {
  const stamped = `..2026_11_25_00_00_0${generation}.000000000`;
  await mkdir(join(dir, stamped));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, stamped, name), text, { mode: 0o600 });
  await symlink(stamped, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation === 1) for (const name of Object.keys(files)) await symlink(join('..data', name), join(dir, name));
}

describe('serving certificate rotation on the running server', () => {
  let dir: string;
  let harness: Harness | undefined;
  const agents: Agent[] = [];

  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    if (harness !== undefined) {
      harness.running.listeners.app.server.closeAllConnections();
      await harness.running.stop('test over');
    }
    harness = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function start(initial: KeyPairPem, settleMs = 1_000): Promise<Harness> {
    const logs = new LogSink();
    // The production composition, with the certificate files as the source and quick watcher timings.
    const running = await startWebhook({
      host: '127.0.0.1',
      port: 0,
      metricsPort: 0,
      certificates: {
        kind: 'files',
        cert: join(dir, 'tls.crt'),
        key: join(dir, 'tls.key'),
        watch: { debounceMs: 20, pollMs: 1_000, settleMs, retryMs: 50 },
      },
      cluster: { on: false, why: 'test' },
      drainSeconds: 0,
      closeGraceMs: 100,
      logLevel: 'info',
      logStream: logs.stream,
      injectorNamespace: 'sidecar-injector',
      processMetrics: false,
    });
    const metrics = certificateMetricsOf(running.listeners.metrics.registry);
    harness = { running, metrics, logs };
    return harness;
  }

  /** Runs the load, calls `rotate` mid-way, and checks everything the rotation promises. */
  async function rotateUnderLoad(h: Harness, initial: KeyPairPem, next: KeyPairPem, rotate: () => Promise<void>): Promise<void> {
    const { port } = h.running;
    const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: ca().cert });
    agents.push(agent);
    expect((await handshakeFingerprint(port)).fingerprint).toBe(fingerprint(initial.cert));

    const load = startLoad(port, agent);
    await waitFor('traffic before the rotation', () => (load.completed >= 100 ? true : undefined));
    const before = new Set(load.sockets.keys());
    load.markSwapped();
    await rotate();
    const fresh = await waitFor('the new certificate on a new handshake', async () => {
      const seen = await handshakeFingerprint(port);
      return seen.fingerprint === fingerprint(next.cert) ? seen : undefined;
    });
    const atSwap = load.completed;
    await waitFor('traffic after the rotation', () => (load.completed >= atSwap + 100 ? true : undefined));
    await load.stop();

    expect(load.failures).toEqual([]);
    // New handshakes: the new certificate, still HTTP/1.1 and TLS ≥ 1.2 (setSecureContext kept the settings).
    expect(fresh.alpn).toBe('http/1.1');
    // Open connections: none dropped, none re-established; they carried on with the certificate they had.
    expect(before.size).toBeGreaterThan(0);
    expect(before.size).toBeLessThanOrEqual(4);
    expect([...load.sockets.keys()].every((socket) => before.has(socket))).toBe(true);
    expect(load.reusedAfter).toBeGreaterThan(50);
    for (const socket of before) {
      expect(socket.destroyed).toBe(false);
      const tlsSocket = socket as TLSSocket;
      expect(tlsSocket.getPeerCertificate().fingerprint256).toBe(fingerprint(initial.cert));
      expect(['TLSv1.2', 'TLSv1.3']).toContain(tlsSocket.getProtocol());
    }
    // A new keep-alive client gets the new certificate too.
    const freshAgent = new Agent({ keepAlive: true, ca: ca().cert });
    agents.push(freshAgent);
    const reply = await send({ port, agent: freshAgent, body: fixture.text });
    expect(reply.status).toBe(200);
    expect((reply.socket as TLSSocket).getPeerCertificate().fingerprint256).toBe(fingerprint(next.cert));

    expect(await reloadCount(h.metrics, 'ok')).toBe(1);
    expect(await reloadCount(h.metrics, 'failed')).toBe(0);
    expect(await expirySeconds(h.metrics)).toBe(new Date(new X509Certificate(next.cert).validTo).getTime() / 1000);
    const reloaded = h.logs.lines.filter((line) => String(line.msg).startsWith('serving certificate reloaded'));
    expect(reloaded).toHaveLength(1);
    expect(reloaded[0]).toMatchObject({ fingerprint256: fingerprint(next.cert), previous: fingerprint(initial.cert) });
    expect(h.logs.lines.filter((line) => String(line.msg).startsWith('serving certificate not reloaded'))).toEqual([]);
  }

  it('follows atomic renames of the files (make certs) with no failed request and no dropped connection', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotation-files-'));
    const initial = testCertificates().serving;
    await writeCertificateFiles(dir, { ca: ca(), serving: initial });
    const h = await start(initial);
    const next = newServing();
    await rotateUnderLoad(h, initial, next, async () => {
      await writeCertificateFiles(dir, { ca: ca(), serving: next });
    });
  });

  it('follows a kubelet ..data symlink swap (cert-manager Secret volume) the same way', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotation-volume-'));
    const initial = testCertificates().serving;
    await kubeletVolume(dir, { 'ca.crt': ca().cert, 'tls.crt': initial.cert, 'tls.key': initial.key }, 1);
    const h = await start(initial);
    const next = newServing();
    await rotateUnderLoad(h, initial, next, async () => {
      await kubeletVolume(dir, { 'ca.crt': ca().cert, 'tls.crt': next.cert, 'tls.key': next.key }, 2);
    });
  });

  it('waits out a key written before its certificate instead of reporting a mismatch', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotation-halfway-'));
    const initial = testCertificates().serving;
    await writeCertificateFiles(dir, { ca: ca(), serving: initial });
    const h = await start(initial, 2_000);
    const next = newServing();
    await writeFileAtomic(join(dir, 'tls.key'), next.key, 0o600);
    // Well past the debounce: the watcher has seen the new key with the old certificate, and retries.
    await sleep(400);
    expect((await handshakeFingerprint(h.running.port)).fingerprint).toBe(fingerprint(initial.cert));
    await writeFileAtomic(join(dir, 'tls.crt'), next.cert, 0o644);
    await waitFor('the new certificate', async () =>
      (await handshakeFingerprint(h.running.port)).fingerprint === fingerprint(next.cert) ? true : undefined,
    );
    expect(await reloadCount(h.metrics, 'failed')).toBe(0);
    expect(h.logs.lines.filter((line) => String(line.msg).startsWith('serving certificate not reloaded'))).toEqual([]);
  });

  it('keeps the certificate in force when the new files are garbage or mismatched, logging and counting it once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotation-bad-'));
    const initial = testCertificates().serving;
    await writeCertificateFiles(dir, { ca: ca(), serving: initial });
    const h = await start(initial, 300);
    const notReloaded = () => h.logs.lines.filter((line) => String(line.msg).startsWith('serving certificate not reloaded'));

    await writeFileAtomic(join(dir, 'tls.crt'), '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n', 0o644);
    await waitFor('the failure to be reported', () => (notReloaded().length === 1 ? true : undefined));
    expect(notReloaded()[0]).toMatchObject({
      level: 40,
      problem: expect.stringMatching(/^certificate does not parse/),
      inForce: fingerprint(initial.cert),
    });
    expect(await reloadCount(h.metrics, 'failed')).toBe(1);
    const agent = new Agent({ keepAlive: true, ca: ca().cert });
    agents.push(agent);
    expect((await send({ port: h.running.port, agent, body: fixture.text })).status).toBe(200);
    expect((await handshakeFingerprint(h.running.port)).fingerprint).toBe(fingerprint(initial.cert));

    // Reported once, not on every poll.
    await h.running.reload();
    await sleep(400);
    await h.running.reload();
    expect(notReloaded()).toHaveLength(1);

    // A certificate whose key is another one, left that way: refused too.
    const other = newServing();
    await writeFileAtomic(join(dir, 'tls.crt'), other.cert, 0o644);
    await waitFor('the mismatch to be reported', () => (notReloaded().length === 2 ? true : undefined));
    expect(notReloaded()[1]).toMatchObject({ problem: 'private key does not belong to the certificate' });
    expect(await reloadCount(h.metrics, 'failed')).toBe(2);
    expect((await handshakeFingerprint(h.running.port)).fingerprint).toBe(fingerprint(initial.cert));
    expect(await reloadCount(h.metrics, 'ok')).toBe(0);

    // Repaired: the good pair goes into force.
    await writeFileAtomic(join(dir, 'tls.key'), other.key, 0o600);
    await waitFor('the repaired pair', async () =>
      (await handshakeFingerprint(h.running.port)).fingerprint === fingerprint(other.cert) ? true : undefined,
    );
    expect(await reloadCount(h.metrics, 'ok')).toBe(1);
  });
});
