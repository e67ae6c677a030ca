#!/usr/bin/env node
/**
 * One legal pod must not stall a replica. Sends pods at the API server's 3 MiB object limit (and one near our
 * 6 MiB body limit), one shape at a time, to the built server (`dist/bundle/main.js serve --cluster off`), while a
 * worker thread polls `/healthz` every 10 ms on another connection. Prints per shape: request size, answer time,
 * answer size, the worst /healthz wait meanwhile, and whether the answer was right (the patch is applied and
 * checked afterwards, outside the measurement).
 *
 * Targets: every answer ≤ 500 ms, every /healthz wait ≤ 500 ms. Bounded: about 20-40 s in all.
 * Usage: node bench/big-pods.mjs   (after `make build`); or `import { runBigPodBench }` for the figures.
 * Only 127.0.0.1 is contacted; every process it starts is stopped at the end, on failure and on Ctrl-C.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { review } from './fixtures/generate.mjs';
import { HealthzPoller, sharedNow } from './lib/healthz-poller.mjs';
import { MUTATE_PATH } from './lib/load.mjs';
import { cpuSeconds, installCleanup, loadAverage, run, sleep, stop } from './lib/procs.mjs';
import { httpsRequest, MAIN, startServer } from './lib/servers.mjs';
import { verifyAnswer } from './lib/verify.mjs';

const MiB = 1024 * 1024;
/** The API server's limit on one object (etcd's request limit, with room for the envelope). */
const OBJECT_LIMIT = 3 * MiB;
const TARGET_MS = 500;

const range = (n) => Array.from({ length: n }, (_, i) => i);
/** A minimal container: 100,000 of them make a 2.9 MiB pod. */
const app = (name) => ({ name, image: 'app' });
const pod = (spec, metadata = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'big-', namespace: 'inject', ...metadata },
  spec: { containers: [app('app')], ...spec },
});

/** Pod shapes that grow with n (containers, volumes, mounts, env entries, annotations). */
const SHAPES = {
  'containers': (n) => pod({ containers: range(n).map((i) => app(`c${i}`)) }),
  'containers using /pod-data': (n) =>
    pod({
      containers: range(n).map((i) => ({ ...app(`c${i}`), volumeMounts: [{ name: 'data', mountPath: '/pod-data' }] })),
      volumes: [{ name: 'data', emptyDir: {} }],
    }),
  'volumes': (n) => pod({ volumes: range(n).map((i) => ({ name: `v${i}`, emptyDir: {} })) }),
  'mounts in one container': (n) =>
    pod({
      containers: [{ ...app('app'), volumeMounts: range(n).map((i) => ({ name: 'data', mountPath: `/m/${i}` })) }],
      volumes: [{ name: 'data', emptyDir: {} }],
    }),
  'env entries': (n) => pod({ containers: [{ ...app('app'), env: range(n).map((i) => ({ name: `E${i}`, value: 'v' })) }] }),
  'annotations': (n) => pod({}, { annotations: Object.fromEntries(range(n).map((i) => [`example.com/a${i}`, 'v'])) }),
};

/** An n whose pod JSON is just under `bytes` (names grow a digit now and then: refined by proportion). */
function sizeFor(make, bytes) {
  const size = (n) => Buffer.byteLength(JSON.stringify(make(n)));
  let n = 1000;
  for (let i = 0; i < 3; i++) n = Math.floor((n * bytes) / size(n));
  while (size(n) > bytes) n = Math.floor(n * 0.999);
  return n;
}


/** Sends one body while the poller watches /healthz; the answer is checked afterwards. */
async function measure(server, poller, agent, name, request) {
  const body = Buffer.from(JSON.stringify(request));
  const cpuBefore = cpuSeconds(server.pid);
  const from = sharedNow();
  const answer = await httpsRequest({ port: server.port, path: MUTATE_PATH, method: 'POST', body, ca: server.ca, agent, timeoutMs: 30_000 });
  const to = sharedNow();
  const cpuAfter = cpuSeconds(server.pid);
  const healthz = await poller.worstWait(from, to);
  const verdict = withoutRecordedSkips(verifyAnswer(request, answer.status, answer.body));
  const response = verdict.ok ? JSON.parse(answer.body.toString('utf8')).response : undefined;
  return {
    shape: name,
    requestBytes: body.length,
    status: answer.status,
    answerMs: Math.round(to - from),
    // The server's own CPU time (all its threads, 10 ms ticks): what a busy machine does not inflate.
    serverCpuMs: cpuBefore === undefined || cpuAfter === undefined ? undefined : Math.round((cpuAfter - cpuBefore) * 1000),
    answerBytes: answer.body.length,
    worstHealthzMs: Math.round(healthz.worstMs),
    healthzPolls: healthz.polls,
    healthzFailures: healthz.failures,
    ok: verdict.ok,
    problems: verdict.problems.slice(0, 3),
    warnings: response?.warnings?.length ?? 0,
    patchedPod: verdict.patchedPod,
  };
}

/** The shared check wants every app container mounted: containers the status records as skipped are not. */
function withoutRecordedSkips(verdict) {
  const text = verdict.patchedPod?.metadata?.annotations?.['sidecar-injector.io/status'];
  if (text === undefined) return verdict;
  const skipped = new Set(JSON.parse(text).skipped.map((s) => `app container ${s.container} does not mount shared-data`));
  const problems = verdict.problems.filter((p) => !skipped.has(p));
  return { ...verdict, ok: problems.length === 0, problems };
}

/** The requests, built before anything is measured. Reinvocation requests are built from earlier answers. */
function requests() {
  const list = Object.entries(SHAPES).map(([name, make]) => {
    const n = sizeFor(make, OBJECT_LIMIT - 64 * 1024);
    return { name: `${n} ${name}`, request: review(`big-${name}`, make(n)) };
  });
  const containers = SHAPES.containers;
  const n = sizeFor(containers, 5.3 * MiB);
  list.push({ name: `${n} containers (5.3 MiB, under the 6 MiB body limit)`, request: review('big-5mib', containers(n)) });
  return list;
}

/**
 * Reinvocation: the pod comes back injected (as the API server stores our patch), with one container another
 * webhook added since. Sized so that the injected pod stays under 3 MiB: mounts make each container ~2.5× larger.
 */
async function reinvocation(server, poller, agent) {
  const make = SHAPES.containers;
  const probe = make(1000);
  const first = await measure(server, poller, agent, 'probe', review('probe', probe));
  if (!first.ok) throw new Error(`probe answer wrong: ${first.problems.join('; ')}`);
  const grown = Buffer.byteLength(JSON.stringify(first.patchedPod)) / Buffer.byteLength(JSON.stringify(probe));
  const n = sizeFor(make, (OBJECT_LIMIT - 64 * 1024) / grown);
  const injected = await measure(server, poller, agent, 'inject', review('reinvoke-inject', make(n)));
  if (!injected.ok) throw new Error(`answer wrong before reinvocation: ${injected.problems.join('; ')}`);
  const pod = injected.patchedPod;
  pod.spec.containers.push(app('late-agent'));
  return { name: `${n} containers, injected, + 1 (reinvocation)`, request: review('big-reinvoke', pod) };
}

export async function runBigPodBench({ say = (line) => process.stdout.write(`${line}\n`) } = {}) {
  installCleanup();
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`make build\` first`);
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-big-pods-'));
  let server;
  let poller;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const certDir = join(tmpDir, 'certs');
    const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
    if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
    say('building pods…');
    const planned = requests();
    server = await startServer({ kind: 'ours', certDir, tmpDir, extraArgs: ['--cluster', 'off'] });
    poller = new HealthzPoller({ port: server.port, ca: server.ca });
    await poller.ready();
    // Warm the connection and the code paths with a small pod: the figures are about size, not first use.
    await measure(server, poller, agent, 'warm-up', review('warm-up', SHAPES.containers(10)));
    planned.push(await reinvocation(server, poller, agent));
    const loadBefore = loadAverage();
    const results = [];
    for (const { name, request } of planned) {
      await sleep(200);
      const { patchedPod: _dropped, ...figures } = await measure(server, poller, agent, name, request);
      results.push(figures);
      say(line(figures));
    }
    return { cpus: cpus().length, node: process.version, loadBefore, loadAfter: loadAverage(), targetMs: TARGET_MS, results };
  } finally {
    agent.destroy();
    await poller?.close();
    if (server) await stop(server.child);
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

function line(r) {
  const mib = (bytes) => `${(bytes / MiB).toFixed(2)} MiB`;
  const verdict = r.ok ? 'ok' : `WRONG (${r.problems.join('; ')})`;
  const slow = r.answerMs > TARGET_MS || r.worstHealthzMs > TARGET_MS ? '  MISS' : '';
  return `${r.shape.padEnd(58)} request ${mib(r.requestBytes).padStart(9)}  answer ${String(r.answerMs).padStart(5)} ms (server CPU ${String(r.serverCpuMs).padStart(5)} ms) ${mib(r.answerBytes).padStart(10)}  /healthz worst ${String(r.worstHealthzMs).padStart(4)} ms  ${verdict}${slow}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const began = performance.now();
  runBigPodBench()
    .then((report) => {
      const misses = report.results.filter((r) => !r.ok || r.answerMs > TARGET_MS || r.worstHealthzMs > TARGET_MS);
      process.stdout.write(
        `${report.cpus} CPUs, Node ${report.node}, load average ${report.loadBefore} → ${report.loadAfter}; ` +
          `${misses.length === 0 ? 'every target met' : `${misses.length} of ${report.results.length} missed`} ` +
          `(${((performance.now() - began) / 1000).toFixed(1)} s)\n`,
      );
      process.exitCode = misses.length === 0 ? 0 : 1;
    })
    .catch((err) => {
      process.stderr.write(`big-pods: ${err.stack ?? err}\n`);
      process.exitCode = 1;
    });
}
