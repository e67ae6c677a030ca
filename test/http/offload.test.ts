/**
 * Big admission bodies are answered by the admission worker (src/http/offload.ts): the same answer as on the
 * event loop, nothing lost when the worker is busy or gone, and — against the built server, as it runs in the
 * image — a big pod no longer holds `/healthz` while it is computed. The worker is the compiled one in dist/
 * (test/global-setup.ts builds it): sources have no worker module to start.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionDeps } from '../../src/admission/respond.js';
import { defaultConfig } from '../../src/core/defaults.js';
import type { PatchOperation } from '../../src/core/types.js';
import { answerAdmission } from '../../src/http/admission-answer.js';
import { AdmissionOffload } from '../../src/http/offload.js';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { expectInjectedInvariants, applyToCopy } from '../support/pod-assertions.js';
import { killServedProcesses, serveEnv, spawnServe } from '../support/serve-process.js';
import { loadFixture, repoRoot } from '../support/fixtures.js';
import { APISERVER_HEADERS, testCertificates } from './helpers.js';

const WORKER = pathToFileURL(join(repoRoot, 'dist', 'http', 'admission-worker.js'));

/** The captured kube-apiserver request with its pod replaced by one of `containers` minimal containers. */
function bigReview(containers: number, uid = 'big-pod'): Record<string, unknown> {
  const { review } = loadFixture('create-pod.json');
  const object = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'big-', namespace: 'inject' },
    spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: 'app' })) },
  };
  return { ...review, request: { ...review.request, uid, namespace: 'inject', object } };
}

const deps: AdmissionDeps = {
  config: defaultConfig,
  injectorNamespace: 'sidecar-injector',
  clusterFacts: () => ({ namespaceLabels: { 'sidecar-injection': 'enabled' } }),
};

describe('AdmissionOffload', () => {
  it('answers a body exactly as the event loop does, asking the event loop for the cluster facts', async () => {
    const text = JSON.stringify(bigReview(2_000));
    const asked: string[] = [];
    const offload = new AdmissionOffload({ workerUrl: WORKER, minBytes: 0, maxInFlight: 4 });
    try {
      const withFacts: AdmissionDeps = { ...deps, clusterFacts: (namespace) => (asked.push(namespace), deps.clusterFacts(namespace)) };
      const offloaded = await offload.answer(text, withFacts);
      const inThread = await answerAdmission(JSON.parse(text), deps);
      expect(offloaded?.ok).toBe(true);
      expect(inThread.ok).toBe(true);
      if (!offloaded?.ok || !inThread.ok) return;
      expect(offloaded.json.toString()).toBe(inThread.json.toString());
      expect(offloaded.outcome).toEqual(inThread.outcome);
      expect(offloaded.fields).toEqual(inThread.fields);
      expect(asked).toEqual(['inject']);
    } finally {
      await offload.close();
    }
  });

  it('answers with our own fault when the cluster facts fail or cannot reach the worker', async () => {
    const offload = new AdmissionOffload({ workerUrl: WORKER, minBytes: 0, maxInFlight: 4 });
    try {
      const text = JSON.stringify(bigReview(3));
      const failing = await offload.answer(text, { ...deps, clusterFacts: () => Promise.reject(new Error('API server unreachable')) });
      const uncloneable = await offload.answer(text, { ...deps, clusterFacts: () => ({ namespaceLabels: { a: 'b' }, extra: () => 1 }) as never });
      for (const answer of [failing, uncloneable]) {
        expect(answer?.ok).toBe(true);
        if (!answer?.ok) return;
        expect(answer.outcome).toMatchObject({ decision: 'error', reason: 'cluster-facts-unavailable', patchOperations: 0 });
        expect(JSON.parse(answer.json.toString())).toMatchObject({ response: { uid: 'big-pod', allowed: true } });
      }
      expect(failing?.ok && failing.outcome.detail).toBe('API server unreachable');
    } finally {
      await offload.close();
    }
  });

  it('turns a body that is not JSON into the same reason as the event loop', async () => {
    const offload = new AdmissionOffload({ workerUrl: WORKER, minBytes: 0, maxInFlight: 4 });
    try {
      expect(await offload.answer('{"apiVersion": ', deps)).toEqual({ ok: false, reason: 'request body is not valid JSON: it ends too early' });
      expect(await offload.answer('{"__proto__": {}}', deps)).toEqual({ ok: false, reason: 'request body contains a forbidden "__proto__" key' });
    } finally {
      await offload.close();
    }
  });

  it('hands the body back (undefined) when the worker is busy, crashes, or is closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-offload-'));
    try {
      const crashing = join(dir, 'crashing-worker.mjs');
      writeFileSync(crashing, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => { throw new Error('boom'); });\n");
      const crashes = new AdmissionOffload({ workerUrl: pathToFileURL(crashing), minBytes: 0, maxInFlight: 4 });
      expect(await crashes.answer(JSON.stringify(bigReview(1)), deps)).toBeUndefined();
      await crashes.close();

      const busy = new AdmissionOffload({ workerUrl: WORKER, minBytes: 0, maxInFlight: 0 });
      expect(await busy.answer(JSON.stringify(bigReview(1)), deps)).toBeUndefined();
      await busy.close();
      expect(busy.wants('{}')).toBe(false);
      expect(await busy.answer(JSON.stringify(bigReview(1)), deps)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a big admission against the built server', () => {
  let certDir: string;
  let port: number;
  const ca = testCertificates().ca.cert;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-offload-'));
    await writeCertificateFiles(certDir, testCertificates());
    const served = spawnServe(
      [
        '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--cluster', 'off', '--log-level', 'info',
        '--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'tls.key'),
      ],
      { env: serveEnv() },
    );
    port = (await served.waitForLine((line) => line.msg === 'listening' && typeof line.port === 'number', 20_000)).port as number;
  }, 30_000);

  afterAll(() => {
    killServedProcesses();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('does not hold /healthz: probes are answered between the body sent and the answer begun', async () => {
    // ~2.9 MiB: the better part of a second of CPU to parse, inject and serialise (a 15 MiB answer).
    const body = Buffer.from(JSON.stringify(bigReview(96_000)));
    const bigAgent = new Agent({ keepAlive: false, ca });
    const probeAgent = new Agent({ keepAlive: true, maxSockets: 1, ca });
    let bodySent = false;
    let answerBegun = false;
    let probesMeanwhile = 0;
    const probe = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', agent: probeAgent, servername: 'localhost' }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200 && bodySent && !answerBegun) probesMeanwhile++;
            resolve();
          });
        });
        req.on('error', reject);
        req.end();
      });
    await probe();
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/mutate', headers: { ...APISERVER_HEADERS, 'content-length': body.length }, agent: bigAgent, servername: 'localhost' },
        (res) => {
          answerBegun = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.on('finish', () => (bodySent = true));
      req.end(body);
    });
    // One probe after another, as a kubelet would if it probed without pause, until the answer begins.
    const probing = (async () => {
      while (!answerBegun) await probe();
    })();
    const { status, text } = await answer;
    await probing;
    bigAgent.destroy();
    probeAgent.destroy();

    expect(status).toBe(200);
    // On the event loop the probes wait for the whole computation: at most the one or two answered while the last
    // bytes of the body were still being read (4 in a run). With the worker, hundreds.
    expect(probesMeanwhile).toBeGreaterThanOrEqual(50);
    const response = (JSON.parse(text) as { response: { uid: string; allowed: boolean; patch: string } }).response;
    expect(response.uid).toBe('big-pod');
    expect(response.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as PatchOperation[];
    const request = JSON.parse(body.toString('utf8')) as { request: { object: unknown } };
    const pod = applyToCopy(request.request.object, patch);
    const status_ = expectInjectedInvariants(pod);
    expect(status_.mounted).toHaveLength(96_000);
  }, 60_000);
});
