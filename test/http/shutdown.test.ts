/**
 * The built executable (`node dist/main.js serve`) as a child process: start-up, SIGTERM drain, exit codes.
 * dist/ is built by test/global-setup.ts.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { applyToCopy, sidecarOf } from '../support/pod-assertions.js';
import { BUNDLED_MAIN, killServedProcesses, spawnServe, type ServedProcess } from '../support/serve-process.js';
import { APISERVER_HEADERS, send, testCertificates, type AdmissionAnswer, type Reply } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const good = loadFixture('create-pod.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function serve(args: string[]): ServedProcess {
  return spawnServe(args);
}

/** A request whose body is sent in two halves: the second only when `finish` is called. */
function halfSent(port: number, ca: string): { finish: () => Promise<Reply> } {
  const body = Buffer.from(good.text);
  const half = Math.floor(body.length / 2);
  let settle: ((reply: Reply) => void) | undefined;
  let fail: ((err: Error) => void) | undefined;
  const done = new Promise<Reply>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const req = httpsRequest(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/mutate?timeout=10s',
      ca,
      servername: 'localhost',
      agent: false,
      headers: { ...APISERVER_HEADERS, 'content-length': String(body.length) },
    },
    (res) => {
      const socket = res.socket;
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => settle?.({ status: res.statusCode ?? 0, headers: res.headers, body: text, socket }));
    },
  );
  req.on('error', (err) => fail?.(err));
  req.write(body.subarray(0, half));
  return {
    finish: () => {
      req.end(body.subarray(half));
      return done;
    },
  };
}

const isDrainOver = (line: Record<string, unknown>): boolean => typeof line.msg === 'string' && line.msg.startsWith('drain over');

/** A TLS connection to the server, handshake done, nothing sent yet. */
function openTls(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends one POST /mutate on the socket; resolves with everything the server sent until it closed. */
function rawPost(socket: TLSSocket, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(text));
    socket.write(
      `POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
}

function expectAnswered(reply: Reply): void {
  expect(reply.status).toBe(200);
  const answer = JSON.parse(reply.body) as AdmissionAnswer;
  expect(answer.response.uid).toBe(good.review.request.uid);
  expect(answer.response.allowed).toBe(true);
  expect(answer.response.patchType).toBe('JSONPatch');
}

describe('serve as a process', () => {
  let certDir: string;
  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-serve-'));
    await writeCertificateFiles(certDir, testCertificates());
  });
  afterEach(() => {
    killServedProcesses();
  });
  afterAll(() => {
    rmSync(certDir, { recursive: true, force: true });
  });

  const tlsFlags = () => ['--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'tls.key')];

  it('on SIGTERM: /readyz 503 at once, every request answered with Connection: close during the drain, exit 0', async () => {
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '1.5', ...tlsFlags()]);
    const listening = await served.waitForLine((line) => line.msg === 'listening');
    const port = listening.port as number;
    expect(port).toBeGreaterThan(0);
    expect(listening.metricsPort).toBeGreaterThan(0);
    const { ca } = { ca: testCertificates().ca.cert };
    const agent = new Agent({ keepAlive: true, ca, maxSockets: 4 });
    try {
      // Four keep-alive connections, idle when the signal comes.
      const warm = await Promise.all([1, 2, 3, 4].map(() => send({ port, agent, body: good.text })));
      for (const reply of warm) {
        expectAnswered(reply);
        expect(reply.headers.connection).toBe('keep-alive');
      }
      expect((await send({ port, agent, method: 'GET', path: '/readyz', headers: {} })).status).toBe(200);
      const idleSockets = new Set(warm.map((reply) => reply.socket));
      const idleClosed = [...idleSockets].map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));

      // Two requests in flight across the signal: half their body now, the rest later.
      const acrossSignal = [halfSent(port, ca), halfSent(port, ca)];
      // And one that is still sending its body when the drain ends and the listener closes.
      const acrossClose = halfSent(port, ca);
      await sleep(100);

      const signalledAt = performance.now();
      served.child.kill('SIGTERM');
      await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down'), 2_000);
      const readyz = await send({ port, agent, method: 'GET', path: '/readyz', headers: {} });
      expect(readyz.status).toBe(503);
      expect(readyz.headers.connection).toBe('close');
      expect(performance.now() - signalledAt).toBeLessThan(1_000);
      expect((await send({ port, agent, method: 'GET', path: '/healthz', headers: {} })).status).toBe(200);

      // During the drain: everything answered, each with Connection: close (new connections still accepted).
      const during: Promise<Reply>[] = [];
      for (let i = 0; i < 6; i++) {
        during.push(send({ port, agent, body: good.text }));
        await sleep(60);
      }
      during.push(...acrossSignal.map((request) => request.finish()));
      for (const reply of await Promise.all(during)) {
        expectAnswered(reply);
        expect(reply.headers.connection).toBe('close');
      }

      // After the drain the listener closes; the request still sending its body is finished and answered.
      await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('drain over'), 5_000);
      const late = await acrossClose.finish();
      expectAnswered(late);
      expect(late.headers.connection).toBe('close');

      // Idle keep-alive sockets from before the signal are closed by the server, and the process exits 0.
      await Promise.all(idleClosed);
      const exit = await served.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(served.lines.some((line) => line.msg === 'stopped')).toBe(true);
      expect(served.stderr()).toBe('');
      // One admission line per request, none of them with the pod in it.
      expect(served.lines.filter((line) => line.msg === 'admission')).toHaveLength(4 + 6 + 2 + 1);
      expect(JSON.stringify(served.lines)).not.toContain('kube-api-access');
    } finally {
      agent.destroy();
    }
  });

  it('keep-alive connections idle since before SIGTERM are closed early in the drain, and their clients reconnect and are answered', async () => {
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '3', ...tlsFlags()]);
    const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
    const ca = testCertificates().ca.cert;
    const agent = new Agent({ keepAlive: true, ca, maxSockets: 20 });
    try {
      const warm = await Promise.all(Array.from({ length: 20 }, () => send({ port, agent, body: good.text })));
      const idle = [...new Set(warm.map((reply) => reply.socket))];
      expect(idle).toHaveLength(20);
      const closedByServer = idle.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
      served.child.kill('SIGTERM');
      await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down'), 2_000);
      // None is left idle for the end of the drain, where a client sending on it would be cut: all are closed
      // while the listener still accepts, so their clients get new connections and answers.
      await Promise.all(closedByServer);
      const late = await Promise.all(Array.from({ length: 20 }, () => send({ port, agent, body: good.text })));
      for (const reply of late) {
        expectAnswered(reply);
        expect(reply.headers.connection).toBe('close');
      }
      expect(served.lines.some(isDrainOver)).toBe(false);
      expect(await served.exited).toEqual({ code: 0, signal: null });
    } finally {
      agent.destroy();
    }
  });

  it('a connection accepted just before the drain ends gets its first request answered, not a reset', async () => {
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '1', ...tlsFlags()]);
    const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
    const ca = testCertificates().ca.cert;
    served.child.kill('SIGTERM');
    await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down'), 2_000);
    await sleep(700);
    // Connected (TLS handshake done) during the drain; its request is only sent once the listener has closed.
    const sockets = await Promise.all([1, 2, 3].map(() => openTls(port, ca)));
    await served.waitForLine(isDrainOver, 5_000);
    const answers = await Promise.all(sockets.map((socket) => rawPost(socket, good.text)));
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(answer).toContain(good.review.request.uid);
    }
    expect(await served.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGHUP never stops the server: requests in flight are answered, a line is logged, it keeps serving', async () => {
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...tlsFlags()]);
    const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
    const ca = testCertificates().ca.cert;
    const inFlight = [halfSent(port, ca), halfSent(port, ca), halfSent(port, ca)];
    await sleep(100);
    served.child.kill('SIGHUP');
    await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('SIGHUP'), 5_000);
    for (const reply of await Promise.all(inFlight.map((request) => request.finish()))) {
      expectAnswered(reply);
    }
    expectAnswered(await send({ port, ca, body: good.text }));
    expect(served.child.exitCode).toBeNull();
    served.child.kill('SIGTERM');
    expect(await served.exited).toEqual({ code: 0, signal: null });
  });

  it('a second SIGTERM ends a long drain at once, and the requests in flight are still answered', async () => {
    // A drain far longer than the test may take: only the second signal can end it in time.
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '600', ...tlsFlags()]);
    const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
    const ca = testCertificates().ca.cert;
    const inFlight = [halfSent(port, ca), halfSent(port, ca)];
    await sleep(100);
    served.child.kill('SIGTERM');
    await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down'), 5_000);
    served.child.kill('SIGTERM');
    await served.waitForLine((line) => typeof line.msg === 'string' && line.msg.startsWith('second signal'), 5_000);
    for (const reply of await Promise.all(inFlight.map((request) => request.finish()))) {
      expectAnswered(reply);
      expect(reply.headers.connection).toBe('close');
    }
    expect(await served.exited).toEqual({ code: 0, signal: null });
    expect(served.lines.some((line) => line.msg === 'stopped')).toBe(true);
  });

  it('SIGINT with no drain exits 0 at once', async () => {
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...tlsFlags()]);
    await served.waitForLine((line) => line.msg === 'listening');
    served.child.kill('SIGINT');
    expect(await served.exited).toEqual({ code: 0, signal: null });
  });

  it.each([
    ['a missing certificate file', () => ['--tls-cert', join(certDir, 'missing.crt'), '--tls-key', join(certDir, 'tls.key')], /cannot read --tls-cert .*missing\.crt: ENOENT/],
    ['a missing key file', () => ['--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'nope.key')], /cannot read --tls-key .*nope\.key: ENOENT/],
    ['a key that is not a key', () => ['--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'ca.crt')], /--tls-key .*ca\.crt is not a PEM private key/],
    ['a key of another certificate', () => ['--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'ca.key')], /does not belong to the certificate/],
  ])('%s: exit 1 with one line on stderr', async (_name, flags, message) => {
    const served = serve(['--port', '0', '--metrics-port', '0', ...flags()]);
    const exit = await served.exited;
    expect(exit.code).toBe(1);
    const stderr = served.stderr();
    expect(stderr.endsWith('\n')).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\bat .+:\d+:\d+/);
  });

  it('--config applies the file and reloads it on an atomic replace; POD_NAMESPACE is never injected', async () => {
    const configPath = join(certDir, 'config.yaml');
    writeFileSync(configPath, 'excludedNamespaces: [inject]\n');
    const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', '--config', configPath, ...tlsFlags()]);
    const listening = await served.waitForLine((line) => line.msg === 'listening');
    const port = listening.port as number;
    const ca = testCertificates().ca.cert;
    const patchOf = async (body: string) => (JSON.parse((await send({ port, ca, body })).body) as AdmissionAnswer).response.patch;
    const metricsText = async (): Promise<string> => (await fetch(`http://127.0.0.1:${String(listening.metricsPort)}/metrics`)).text();

    expect(await patchOf(good.text)).toBeUndefined();
    const own = structuredClone(good.review);
    own.request.namespace = 'sidecar-injector-test';
    expect(await patchOf(JSON.stringify(own))).toBeUndefined();

    // Replaced the way editors and tools do it: a new file renamed over the old one.
    writeFileSync(`${configPath}.tmp`, 'failure: open\n');
    renameSync(`${configPath}.tmp`, configPath);
    await served.waitForLine((line) => line.msg === 'configuration reloaded');
    expect(await patchOf(good.text)).toBeTypeOf('string');
    expect(await patchOf(JSON.stringify(own))).toBeUndefined();
    expect(await metricsText()).toContain('sidecar_injector_config_reloads_total{result="ok"} 1');

    // An invalid file keeps the configuration in force, and says so.
    writeFileSync(`${configPath}.tmp`, 'failure: sometimes\n');
    renameSync(`${configPath}.tmp`, configPath);
    await served.waitForLine((line) => line.msg === 'configuration not reloaded: the previous one stays in force');
    expect(await patchOf(good.text)).toBeTypeOf('string');
    expect(await metricsText()).toContain('sidecar_injector_config_reloads_total{result="failed"} 1');

    served.child.kill('SIGTERM');
    expect((await served.exited).code).toBe(0);
  });

  it('--config in a ConfigMap volume: a kubelet ..data swap gives new requests the new sidecar; an invalid one keeps it', async () => {
    // The layout the kubelet's atomic writer makes: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>.
    const volume = mkdtempSync(join(tmpdir(), 'configmap-'));
    const publish = (generation: number, text: string): void => {
      const stamped = `..2026_11_25_00_00_0${generation}.000000000`;
      mkdirSync(join(volume, stamped));
      writeFileSync(join(volume, stamped, 'config.yaml'), text);
      symlinkSync(stamped, join(volume, '..data_tmp'));
      renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    };
    publish(1, 'sidecar: { image: "busybox:1.36.1" }\n');
    symlinkSync(join('..data', 'config.yaml'), join(volume, 'config.yaml'));
    try {
      const served = serve(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', '--config', join(volume, 'config.yaml'), ...tlsFlags()]);
      const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
      const ca = testCertificates().ca.cert;
      const sidecarImage = async (): Promise<string | undefined> => {
        const answer = JSON.parse((await send({ port, ca, body: good.text })).body) as AdmissionAnswer;
        const patch = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString('utf8')) as [];
        return sidecarOf(applyToCopy(good.review.request.object, patch)).image;
      };
      expect(await sidecarImage()).toBe('busybox:1.36.1');

      publish(2, 'sidecar: { image: "busybox:1.37.0" }\n');
      await served.waitForLine((line) => line.msg === 'configuration reloaded');
      expect(await sidecarImage()).toBe('busybox:1.37.0');

      publish(3, 'sidecar: { image: "busybox:latest" }\n');
      const refused = await served.waitForLine((line) => line.msg === 'configuration not reloaded: the previous one stays in force');
      expect(String(refused.error)).toMatch(/sidecar\.image: must be pinned/);
      expect(await sidecarImage()).toBe('busybox:1.37.0');

      served.child.kill('SIGTERM');
      expect((await served.exited).code).toBe(0);
    } finally {
      rmSync(volume, { recursive: true, force: true });
    }
  });

  it('the bundle, as the image runs it, serves an injection and stops cleanly', async () => {
    const served = spawnServe(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '0', ...tlsFlags()], {
      main: BUNDLED_MAIN,
    });
    const port = (await served.waitForLine((line) => line.msg === 'listening')).port as number;
    const answer = JSON.parse((await send({ port, ca: testCertificates().ca.cert, body: good.text })).body) as AdmissionAnswer;
    const patch = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString('utf8')) as [];
    expect(sidecarOf(applyToCopy(good.review.request.object, patch)).image).toBe('busybox:1.37.0');
    served.child.kill('SIGTERM');
    expect(await served.exited).toEqual({ code: 0, signal: null });
  });

  it('an invalid --config exits 1 with one line', async () => {
    const configPath = join(certDir, 'bad-config.yaml');
    writeFileSync(configPath, 'failure: sometimes\n');
    const served = serve(['--port', '0', '--metrics-port', '0', '--config', configPath, ...tlsFlags()]);
    expect((await served.exited).code).toBe(1);
    expect(served.stderr().trimEnd().split('\n')).toHaveLength(1);
    expect(served.stderr()).toMatch(/invalid --config .*bad-config\.yaml/);
  });

  it('a bad flag exits 2 with usage', async () => {
    const served = serve(['--port', 'eighty']);
    expect((await served.exited).code).toBe(2);
    expect(served.stderr()).toMatch(/--port must be a port number/);
    expect(served.stderr()).toMatch(/Usage: sidecar-injector serve/);
  });
});
