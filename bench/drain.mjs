#!/usr/bin/env node
/**
 * The two ways a drain can lose an admission, against the built server (`node dist/bundle/main.js serve`), each
 * with its own server process which gets a real SIGTERM:
 *
 *  1. idle: DRAIN_IDLE_CONNECTIONS (300) keep-alive connections, each used once before SIGTERM and idle since,
 *     each sending one POST /mutate at a random moment between drain end − 0.3 s and drain end + 0.3 s. A
 *     connection the server closes while its client sends on it is a reset (the API server does not retry a
 *     POST on a reset connection: the pod is created without the sidecar).
 *  2. steady: DRAIN_CALLERS (20) callers sending back to back on keep-alive connections, from before SIGTERM
 *     until after the drain; the connections accepted in the last milliseconds of the drain must be answered.
 *
 * Every request is counted as answered (200), refused (ECONNREFUSED: the listener is closed, nothing was sent; a
 * real client's next connection goes through the Service to another replica) or failed (a reset, a hang-up, a
 * non-200: an admission lost). The run prints the counts and exits 1 on any failure. No retries.
 * Drain: DRAIN_SECONDS (5, the shipped default). Bounded: about 15 s.
 *
 *   node bench/drain.mjs          (after `make build`)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { installCleanup, run, sleep } from './lib/procs.mjs';
import { MAIN, ROOT, startServer } from './lib/servers.mjs';

const env = (name, fallback) => {
  const value = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
};
const IDLE_CONNECTIONS = env('DRAIN_IDLE_CONNECTIONS', 300);
const CALLERS = env('DRAIN_CALLERS', 20);
const DRAIN_SECONDS = env('DRAIN_SECONDS', 5);

const body = readFileSync(join(ROOT, 'bench/fixtures/typical.json'));

/** One POST /mutate; resolves 'answered' | 'refused' | 'failed: …' with when it was sent (ms since SIGTERM). */
function mutate(port, agent, ca) {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/mutate?timeout=10s',
        ca,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? 'answered' : `failed: status ${res.statusCode}`));
        res.on('error', (err) => resolve(`failed: ${err.code ?? err.message}`));
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : `failed: ${err.code ?? err.message}`));
    req.end(body);
  });
}

function tally(outcomes) {
  const counts = { answered: 0, refused: 0, failed: 0, failures: {} };
  for (const { outcome, at } of outcomes) {
    if (outcome === 'answered' || outcome === 'refused') counts[outcome] += 1;
    else {
      counts.failed += 1;
      (counts.failures[outcome] ??= []).push(Math.round(at));
    }
  }
  return counts;
}

async function withServer(certDir, tmpDir, scenario) {
  const server = await startServer({ kind: 'ours', certDir, tmpDir, extraArgs: ['--drain-seconds', String(DRAIN_SECONDS)] });
  try {
    return await scenario(server);
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
}

async function idleScenario(server) {
  const agent = new Agent({ keepAlive: true, maxSockets: IDLE_CONNECTIONS, maxFreeSockets: IDLE_CONNECTIONS, ca: server.ca });
  const warm = await Promise.all(Array.from({ length: IDLE_CONNECTIONS }, () => mutate(server.port, agent, server.ca)));
  if (warm.some((outcome) => outcome !== 'answered')) throw new Error(`warm-up failed: ${warm.find((o) => o !== 'answered')}`);
  const signalledAt = performance.now();
  server.child.kill('SIGTERM');
  const drainMs = DRAIN_SECONDS * 1000;
  const outcomes = await Promise.all(
    Array.from({ length: IDLE_CONNECTIONS }, async () => {
      await sleep(drainMs - 300 + Math.random() * 600);
      const at = performance.now() - signalledAt;
      return { outcome: await mutate(server.port, agent, server.ca), at };
    }),
  );
  agent.destroy();
  const exit = await server.child.exited;
  return { ...tally(outcomes), exit };
}

async function steadyScenario(server) {
  let signalledAt;
  const stopAt = () => signalledAt !== undefined && performance.now() - signalledAt > DRAIN_SECONDS * 1000 + 500;
  const outcomes = [];
  const callers = Array.from({ length: CALLERS }, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: server.ca });
    while (!stopAt()) {
      const at = signalledAt === undefined ? -1 : performance.now() - signalledAt;
      const outcome = await mutate(server.port, agent, server.ca);
      outcomes.push({ outcome, at });
      // After the listener closed every attempt is refused at once: do not spin.
      if (outcome === 'refused') await sleep(20);
    }
    agent.destroy();
  });
  await sleep(1_000);
  signalledAt = performance.now();
  server.child.kill('SIGTERM');
  await Promise.all(callers);
  const exit = await server.child.exited;
  return { ...tally(outcomes), exit };
}

export async function runDrainBench({ say = console.log } = {}) {
  installCleanup();
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-drain-'));
  try {
    const certDir = join(tmpDir, 'certs');
    const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
    if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
    say(`drain bench: ${MAIN}, --drain-seconds ${DRAIN_SECONDS}`);
    const idle = await withServer(certDir, tmpDir, idleScenario);
    say(`idle:   ${IDLE_CONNECTIONS} connections idle since before SIGTERM, one request each around drain end: ` +
      `${idle.answered} answered, ${idle.refused} refused (listener closed), ${idle.failed} failed ${JSON.stringify(idle.failures)}; exit ${JSON.stringify(idle.exit)}`);
    const steady = await withServer(certDir, tmpDir, steadyScenario);
    say(`steady: ${CALLERS} callers back to back across the drain: ` +
      `${steady.answered} answered, ${steady.refused} refused (listener closed), ${steady.failed} failed ${JSON.stringify(steady.failures)}; exit ${JSON.stringify(steady.exit)}`);
    return { drainSeconds: DRAIN_SECONDS, idle, steady };
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await runDrainBench();
  const failed = result.idle.failed + result.steady.failed;
  const badExit = [result.idle.exit, result.steady.exit].some((exit) => exit.code !== 0);
  process.exitCode = failed > 0 || badExit ? 1 : 0;
}
