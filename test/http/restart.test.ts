/**
 * A rolling update as a Service sees it, against the built executable: two replicas behind a round-robin client
 * that keeps a steady stream of POST /mutate over keep-alive connections (one agent per backend, as the API
 * server keeps connections per endpoint). One replica gets SIGTERM; a replacement starts on a third port (Node 20
 * has no reusePort: two listeners cannot share one) and joins once its /readyz is 200. The client behaves like
 * the API server behind a Service: it stops using a backend whose response says `Connection: close` or whose
 * socket closed, and an "endpoints controller" polls /readyz every 100 ms to drop (503) or add (200) backends.
 * No retries: any request that errors or gets a non-200 is a failure, and there must be none.
 * bench/restart-under-load.mjs is the longer, louder version.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { killServedProcesses, serveEnv, spawnServe } from '../support/serve-process.js';
import { APISERVER_HEADERS, testCertificates, type AdmissionAnswer } from './helpers.js';
import { loadFixture } from '../support/fixtures.js';

const fixture = loadFixture('create-pod.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Replica {
  name: string;
  child: ChildProcessWithoutNullStreams;
  port: number;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node dist/main.js serve` on a random port; resolves once its "listening" log line tells the port. */
async function startReplica(name: string, certDir: string): Promise<Replica> {
  const served = spawnServe(
    [
      '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--drain-seconds', '1', '--cluster', 'off', '--log-level', 'info',
      '--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'tls.key'),
    ],
    { env: serveEnv() },
  );
  const listening = await served.waitForLine((line) => line.msg === 'listening' && typeof line.port === 'number', 20_000);
  return { name, child: served.child, port: listening.port as number, lines: served.lines, stderr: served.stderr, exited: served.exited };
}

/** One backend as the client sees it: its own keep-alive pool, whether it is in the rotation, what it served. */
class Backend {
  readonly agent: Agent;
  inRotation = false;
  /** Set once a response said `Connection: close` or a socket to it closed under us: never used again. */
  leaving = false;
  served = 0;
  closeAnswers = 0;
  readonly statuses = new Map<number, number>();

  constructor(
    readonly replica: Replica,
    ca: string,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: 3, ca });
  }

  usable(): boolean {
    return this.inRotation && !this.leaving;
  }
}

interface Outcome {
  backend: string;
  startedAt: number;
  ok: boolean;
  status?: number;
  connection?: string;
  error?: string;
}

function getStatus(port: number, ca: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: 'GET', ca, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(1_000, () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** POST /mutate on the backend's keep-alive agent. Resolves with what happened; never retries. */
function mutate(backend: Backend): Promise<Outcome> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: backend.replica.port,
        method: 'POST',
        path: '/mutate?timeout=10s',
        headers: { ...APISERVER_HEADERS },
        agent: backend.agent,
        servername: 'localhost',
      },
      (res) => {
        const socket = res.socket;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const connection = String(res.headers.connection ?? '');
          let ok = res.statusCode === 200;
          if (ok) {
            const answer = JSON.parse(body) as AdmissionAnswer;
            ok = answer.response.uid === fixture.review.request.uid && answer.response.allowed && answer.response.patchType === 'JSONPatch';
          }
          // Like the API server: a closed connection means the next request opens a new one through the Service.
          if (connection === 'close' || socket.destroyed) backend.leaving = true;
          resolve({ backend: backend.replica.name, startedAt, ok, status: res.statusCode ?? 0, connection });
        });
        res.on('error', (err) => resolve({ backend: backend.replica.name, startedAt, ok: false, error: err.message }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => resolve({ backend: backend.replica.name, startedAt, ok: false, error: err.message }));
    req.end(fixture.text);
  });
}

describe('graceful restart under load (rolling update)', () => {
  let certDir: string;
  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-restart-'));
    await writeCertificateFiles(certDir, testCertificates());
  });
  afterAll(() => {
    killServedProcesses();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('SIGTERM one of two replicas under steady keep-alive traffic while a replacement joins: zero failed requests', async () => {
    const ca = testCertificates().ca.cert;
    const backends: Backend[] = [];
    const outcomes: Outcome[] = [];
    let stopping = false;
    let next = 0;

    const pick = (): Backend | undefined => {
      const usable = backends.filter((b) => b.usable());
      if (usable.length === 0) return undefined;
      next = (next + 1) % usable.length;
      return usable[next];
    };

    // The endpoints controller: /readyz on a fresh connection every 100 ms; 200 joins, anything else leaves.
    const pollEndpoints = async (): Promise<void> => {
      while (!stopping) {
        await Promise.all(
          backends.map(async (backend) => {
            const status = await getStatus(backend.replica.port, ca, '/readyz').catch(() => 0);
            backend.inRotation = status === 200;
          }),
        );
        await sleep(100);
      }
    };

    // The API server: a few concurrent callers, each sending as soon as its previous call returned.
    const caller = async (): Promise<void> => {
      while (!stopping) {
        const backend = pick();
        if (backend === undefined) {
          await sleep(5);
          continue;
        }
        const outcome = await mutate(backend);
        outcomes.push(outcome);
        if (outcome.ok) {
          backend.served += 1;
          if (outcome.connection === 'close') backend.closeAnswers += 1;
        }
        if (outcome.status !== undefined) backend.statuses.set(outcome.status, (backend.statuses.get(outcome.status) ?? 0) + 1);
      }
    };

    const [a, b] = await Promise.all([startReplica('a', certDir), startReplica('b', certDir)]);
    backends.push(new Backend(a, ca), new Backend(b, ca));
    const endpoints = pollEndpoints();
    const callers = Array.from({ length: 6 }, () => caller());
    try {
      // Warm: both backends in rotation and serving over kept-alive connections.
      const warmStart = performance.now();
      while (!(backends.every((x) => x.served >= 100) && performance.now() - warmStart > 1_000) && performance.now() - warmStart < 15_000) {
        await sleep(50);
      }
      expect(backends.map((x) => x.served).every((n) => n >= 100), 'both replicas serve before the update').toBe(true);

      // The rolling update: the old replica gets SIGTERM, the replacement starts.
      const signalledAt = performance.now();
      a.child.kill('SIGTERM');
      const c = await startReplica('c', certDir);
      const old = backends[0]!;
      backends.push(new Backend(c, ca));

      const exit = await a.exited;
      const exitedAt = performance.now();
      expect(exit, `old replica exit; stderr: ${a.stderr()}`).toEqual({ code: 0, signal: null });

      // Keep the traffic going until the replacement has served a fair share, then a little longer.
      const joinDeadline = performance.now() + 15_000;
      while (backends[2]!.served < 50 && performance.now() < joinDeadline) await sleep(50);
      await sleep(500);
      stopping = true;
      await Promise.all(callers);
      await endpoints;

      const failures = outcomes.filter((o) => !o.ok);
      const summary = backends.map((x) => `${x.replica.name}: ${x.served} served, ${x.closeAnswers} with Connection: close`).join('; ');
      expect(failures, `failed requests (${summary})`).toEqual([]);

      // The drain was exercised: the old replica answered after the signal, with Connection: close.
      expect(old.closeAnswers, summary).toBeGreaterThanOrEqual(1);
      const afterSignal = outcomes.filter((o) => o.backend === 'a' && o.startedAt > signalledAt + 200);
      expect(afterSignal.every((o) => o.connection === 'close'), 'every answer of the draining replica says Connection: close').toBe(true);
      expect(outcomes.filter((o) => o.backend === 'a' && o.startedAt > exitedAt), 'nothing sent to the old replica after it exited').toEqual([]);
      expect(a.lines.some((line) => line.msg === 'stopped')).toBe(true);

      // Served by all three.
      for (const backend of backends) expect(backend.served, `${backend.replica.name} served (${summary})`).toBeGreaterThan(0);
      console.log(`rolling update: ${outcomes.length} requests, 0 failed; ${summary}`);
    } finally {
      stopping = true;
      await Promise.allSettled([...callers, endpoints]);
      for (const backend of backends) backend.agent.destroy();
      for (const replica of [a, b]) if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill('SIGKILL');
    }
  }, 60_000);
});
