#!/usr/bin/env node
/**
 * A rolling update under load, the way a Service and the API server see it (the longer version of
 * test/http/restart.test.ts). Two replicas of `node dist/main.js serve` run behind a round-robin client: many
 * callers, each sending its next POST /mutate as soon as the previous one answered, over keep-alive connections
 * (one agent per backend, a few sockets each). An "endpoints controller" polls every backend's /readyz every 100 ms:
 * 200 adds it to the rotation, anything else removes it. A response with `Connection: close` (or a socket closed
 * under a request) also takes that backend out of the client's rotation: its next connection would go through
 * the Service to another endpoint.
 *
 * Each round SIGTERMs the oldest replica and starts a replacement on a new port (Node 20 has no reusePort), as a
 * Deployment's rolling update does; by default two rounds, so both original replicas are replaced. No request is
 * ever retried: any error or non-200 is a failure, and the run exits 1 if there is one.
 *
 * Knobs (environment): RESTART_CALLERS (16), RESTART_SOCKETS per backend (4), RESTART_WARM_SECONDS (5),
 * RESTART_SETTLE_SECONDS after each round (5), RESTART_ROUNDS (2), RESTART_DRAIN_SECONDS (5, the shipped default),
 * RESTART_POLL_MS (100).
 *
 *   node bench/restart-under-load.mjs          (after `make build`)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { installCleanup, loadAverage, run, sleep } from './lib/procs.mjs';
import { MAIN, ROOT, httpsRequest, startServer } from './lib/servers.mjs';

const env = (name, fallback) => {
  const value = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
};
const CALLERS = env('RESTART_CALLERS', 16);
const SOCKETS = env('RESTART_SOCKETS', 4);
const WARM_SECONDS = env('RESTART_WARM_SECONDS', 5);
const SETTLE_SECONDS = env('RESTART_SETTLE_SECONDS', 5);
const ROUNDS = env('RESTART_ROUNDS', 2);
const DRAIN_SECONDS = env('RESTART_DRAIN_SECONDS', 5);
const POLL_MS = env('RESTART_POLL_MS', 100);

const fixturePath = join(ROOT, 'test', 'fixtures', 'kube-apiserver', 'create-pod.json');
const fixture = readFileSync(fixturePath);
const uid = JSON.parse(fixture.toString('utf8')).request.uid;
const HEADERS = {
  'user-agent': 'kube-apiserver-admission',
  'content-type': 'application/json',
  accept: 'application/json, */*',
  'content-length': String(fixture.length),
};

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function latencyLine(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v) => (Number.isFinite(v) ? v.toFixed(1) : '-');
  return `n=${sorted.length} p50=${f(percentile(sorted, 50))} p90=${f(percentile(sorted, 90))} p99=${f(percentile(sorted, 99))} max=${f(sorted.at(-1))} ms`;
}

class Backend {
  constructor(name, server, ca) {
    this.name = name;
    this.server = server;
    this.agent = new Agent({ keepAlive: true, maxSockets: SOCKETS, ca });
    this.inRotation = false;
    this.leaving = false;
    this.served = 0;
    this.closeAnswers = 0;
    this.signalledAt = undefined;
    this.exitedAt = undefined;
  }
  usable() {
    return this.inRotation && !this.leaving && this.exitedAt === undefined;
  }
}

/** POST /mutate on the backend's keep-alive agent; never retried. */
function mutate(backend) {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const done = (fields) => resolve({ backend: backend.name, startedAt, ms: performance.now() - startedAt, ...fields });
    const req = request(
      { host: '127.0.0.1', port: backend.server.port, method: 'POST', path: '/mutate?timeout=10s', headers: HEADERS, agent: backend.agent },
      (res) => {
        const socket = res.socket;
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', (err) => done({ ok: false, error: err.code ?? err.message }));
        res.on('end', () => {
          const connection = String(res.headers.connection ?? '');
          let ok = res.statusCode === 200;
          if (ok) {
            try {
              const answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              ok = answer.response?.uid === uid && answer.response?.allowed === true && answer.response?.patchType === 'JSONPatch';
            } catch {
              ok = false;
            }
          }
          if (connection === 'close' || socket.destroyed) backend.leaving = true;
          done({ ok, status: res.statusCode, connection, ...(ok ? {} : { error: `HTTP ${res.statusCode}` }) });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => done({ ok: false, error: err.code ?? err.message }));
    req.end(fixture);
  });
}

async function main() {
  installCleanup();
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-restart-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const certDir = join(tmpDir, 'certs');
  const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
  const ca = readFileSync(join(certDir, 'ca.crt'));

  let counter = 0;
  const launch = async () => {
    const name = String.fromCharCode(97 + counter++);
    const server = await startServer({
      kind: 'ours',
      certDir,
      tmpDir,
      extraArgs: ['--drain-seconds', String(DRAIN_SECONDS), '--cluster', 'off'],
    });
    return new Backend(name, server, ca);
  };

  console.log(
    `rolling restart under load: ${CALLERS} callers, ${SOCKETS} keep-alive sockets per backend, drain ${DRAIN_SECONDS} s, ` +
      `${ROUNDS} round(s), endpoints polled every ${POLL_MS} ms; load average ${loadAverage()}`,
  );
  const backends = await Promise.all([launch(), launch()]);
  const outcomes = [];
  let stopping = false;
  let next = 0;

  const pick = () => {
    const usable = backends.filter((b) => b.usable());
    if (usable.length === 0) return undefined;
    next = (next + 1) % usable.length;
    return usable[next];
  };
  const endpoints = (async () => {
    while (!stopping) {
      await Promise.all(
        backends
          .filter((b) => b.exitedAt === undefined)
          .map(async (b) => {
            const status = await httpsRequest({ port: b.server.port, path: '/readyz', ca, timeoutMs: 1000 }).then((r) => r.status, () => 0);
            b.inRotation = status === 200;
          }),
      );
      await sleep(POLL_MS);
    }
  })();
  let idleWaits = 0;
  const caller = async () => {
    while (!stopping) {
      const backend = pick();
      if (backend === undefined) {
        idleWaits += 1;
        await sleep(5);
        continue;
      }
      const outcome = await mutate(backend);
      outcomes.push(outcome);
      if (outcome.ok) {
        backend.served += 1;
        if (outcome.connection === 'close') backend.closeAnswers += 1;
      }
    }
  };

  // Traffic starts once the endpoints controller has seen both replicas ready.
  while (!backends.every((b) => b.inRotation)) await sleep(10);
  const started = performance.now();
  const callers = Array.from({ length: CALLERS }, () => caller());
  const rounds = [];
  try {
    await sleep(WARM_SECONDS * 1000);
    for (let round = 1; round <= ROUNDS; round++) {
      const old = backends.filter((b) => b.exitedAt === undefined)[0];
      const before = outcomes.length;
      old.signalledAt = performance.now();
      old.server.child.kill('SIGTERM');
      const replacement = await launch();
      backends.push(replacement);
      const joinedAfterMs = performance.now() - old.signalledAt;
      const exit = await old.server.child.exited;
      old.exitedAt = performance.now();
      await sleep(SETTLE_SECONDS * 1000);
      const window = outcomes.slice(before).filter((o) => o.startedAt >= old.signalledAt && o.startedAt <= old.exitedAt);
      rounds.push({
        round,
        old: old.name,
        replacement: replacement.name,
        exit,
        replacementReadyMs: Math.round(joinedAfterMs),
        oldExitedAfterMs: Math.round(old.exitedAt - old.signalledAt),
        requestsDuringDrain: window.length,
        failedDuringDrain: window.filter((o) => !o.ok).length,
        drainLatency: latencyLine(window.map((o) => o.ms)),
        closeAnswers: old.closeAnswers,
        stopped: readFileSync(old.server.logPath, 'utf8').includes('"msg":"stopped"'),
      });
    }
  } finally {
    stopping = true;
    await Promise.allSettled([...callers, endpoints]);
    for (const b of backends) b.agent.destroy();
    for (const b of backends) if (b.exitedAt === undefined) b.server.child.kill('SIGTERM');
    await Promise.allSettled(backends.map((b) => b.server.child.exited));
  }
  const seconds = (performance.now() - started) / 1000;

  const failures = outcomes.filter((o) => !o.ok);
  const byError = new Map();
  for (const f of failures) byError.set(`${f.backend}: ${f.error}`, (byError.get(`${f.backend}: ${f.error}`) ?? 0) + 1);
  console.log(`\n${outcomes.length} requests in ${seconds.toFixed(1)} s (${(outcomes.length / seconds).toFixed(0)} req/s), ${failures.length} failed`);
  console.log(`latency, all requests: ${latencyLine(outcomes.map((o) => o.ms))}`);
  console.log(`callers found no backend in rotation ${idleWaits} time(s)`);
  for (const b of backends) {
    console.log(`  backend ${b.name} (port ${b.server.port}): ${b.served} served, ${b.closeAnswers} answered with Connection: close`);
  }
  for (const r of rounds) {
    console.log(
      `  round ${r.round}: SIGTERM ${r.old} → ${r.replacement} ready after ${r.replacementReadyMs} ms; ${r.old} exited ` +
        `${JSON.stringify(r.exit)} after ${r.oldExitedAfterMs} ms (log says stopped: ${r.stopped}); ` +
        `${r.requestsDuringDrain} requests during the drain (${r.failedDuringDrain} failed), ${r.closeAnswers} Connection: close; drain latency ${r.drainLatency}`,
    );
  }
  for (const [what, n] of byError) console.log(`  FAILED ${n}× ${what}`);

  const problems = [];
  if (failures.length > 0) problems.push(`${failures.length} failed requests`);
  for (const r of rounds) {
    if (r.exit.code !== 0 || r.exit.signal !== null) problems.push(`${r.old} exited ${JSON.stringify(r.exit)}`);
    if (r.closeAnswers === 0) problems.push(`${r.old} never answered with Connection: close while draining`);
  }
  for (const b of backends) if (b.served === 0) problems.push(`${b.name} served nothing`);
  console.log(problems.length === 0 ? '\nPASS: zero failed requests through every restart' : `\nFAIL: ${problems.join('; ')}`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exitCode = 1;
});
