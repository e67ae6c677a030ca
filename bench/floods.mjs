#!/usr/bin/env node
/**
 * Memory under floods: each flood runs against a fresh child process of the BUILT server
 * (`node dist/bundle/main.js serve --cluster off …`, started with the V8 options of manifests/base/deployment.yaml),
 * whose peak RSS (VmHWM from /proc/PID/status) is compared with the Deployment's memory limit. During each flood
 * a typical pod is posted every 250 ms over a keep-alive connection opened before the flood (as the API server
 * keeps them), and one over a fresh connection: both are reported. 127.0.0.1 only; the whole run takes ~60 s.
 *
 *   node bench/floods.mjs [NAME-PART] [--node-options '…']   # a line per flood; exits 1 if one exceeded the limit
 *   import { runFloodBench } from './floods.mjs'   // the same figures as an object
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { installCleanup, run, sleep, stop } from './lib/procs.mjs';
import { MAIN, ROOT, startServer } from './lib/servers.mjs';

const MiB = 1024 * 1024;

/** The container's memory limit and NODE_OPTIONS, read from the base Deployment (plain text: no YAML parser). */
export function deploymentMemory(path = join(ROOT, 'manifests/base/deployment.yaml')) {
  const text = readFileSync(path, 'utf8');
  const limit = /limits:\s*\n(?:\s+\w+:.*\n)*?\s+memory:\s*(\d+)(Mi|Gi)/.exec(text);
  if (limit === null) throw new Error(`no memory limit in ${path}`);
  const limitMiB = Number(limit[1]) * (limit[2] === 'Gi' ? 1024 : 1);
  const nodeOptions = /- name: NODE_OPTIONS\s*\n\s+value:\s*"?([^"\n]+)"?/.exec(text)?.[1]?.trim();
  return { limitMiB, nodeOptions };
}

function procStatus(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** An AdmissionReview of about `bytes` bytes: the typical fixture with a padding annotation. */
function reviewOfSize(bytes) {
  const review = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/kube-apiserver/create-pod.json'), 'utf8'));
  review.request.object.metadata.annotations = { 'example.com/pad': '' };
  const base = JSON.stringify(review).length;
  review.request.object.metadata.annotations['example.com/pad'] = 'x'.repeat(Math.max(0, bytes - base));
  return Buffer.from(JSON.stringify(review));
}

function post({ port, ca, body, agent = false, timeoutMs = 15_000 }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(
      {
        host: '127.0.0.1', port, path: '/mutate?timeout=10s', method: 'POST', ca, agent, servername: 'localhost',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
        res.on('error', () => resolve({ status: 'reset', ms: performance.now() - started }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: err.message === 'timeout' ? 'timeout' : 'refused', ms: performance.now() - started }));
    req.end(body);
  });
}

function tally(values) {
  const out = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}

/** Opens `count` raw TCP connections that each send the first 3 bytes of a ClientHello and stall. */
async function stalledHellos(port, count) {
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(Buffer.from([0x16, 0x03, 0x01]));
    sockets.push(socket);
  }
  return sockets;
}

/** Opens `count` TLS connections, each sends one GET /healthz and then stays idle. */
async function idleKeepAlive(port, ca, count) {
  const sockets = [];
  const opened = [];
  for (let i = 0; i < count; i++) {
    opened.push(
      new Promise((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
          socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
          resolve('open');
        });
        socket.on('data', () => {});
        socket.once('error', () => resolve('refused'));
        socket.once('close', () => resolve('refused'));
        sockets.push(socket);
      }),
    );
    if (i % 200 === 199) await sleep(5);
  }
  return { sockets, outcomes: tally(await Promise.all(opened)) };
}

const FLOODS = [
  {
    name: 'stalled ClientHello ×2000, 3 rounds',
    async run({ port }) {
      const rounds = [];
      for (let round = 0; round < 3; round++) {
        const sockets = await stalledHellos(port, 2000);
        await sleep(3_500);
        rounds.push(sockets.filter((s) => s.destroyed || s.readyState === 'closed').length);
        for (const socket of sockets) socket.destroy();
      }
      return { closedWithin3500msPerRound: rounds };
    },
  },
  {
    name: 'idle keep-alive ×4000',
    async run({ port, ca }) {
      const { sockets, outcomes } = await idleKeepAlive(port, ca, 4000);
      await sleep(3_000);
      for (const socket of sockets) socket.destroy();
      return { connections: outcomes };
    },
  },
  {
    name: '5.3 MiB bodies ×30 concurrent',
    async run({ port, ca }) {
      const body = reviewOfSize(5.3 * MiB);
      return { statuses: tally((await Promise.all(Array.from({ length: 30 }, () => post({ port, ca, body })))).map((r) => r.status)) };
    },
  },
  {
    name: '3 MiB pods ×10 concurrent',
    async run({ port, ca }) {
      const body = reviewOfSize(3 * MiB);
      return { statuses: tally((await Promise.all(Array.from({ length: 10 }, () => post({ port, ca, body })))).map((r) => r.status)) };
    },
  },
];

/** Posts a typical pod every 250 ms until stopped: over a pre-opened keep-alive agent and over a fresh connection. */
function probe(port, ca, agent, body) {
  const kept = [];
  const fresh = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [a, b] = await Promise.all([post({ port, ca, body, agent, timeoutMs: 5_000 }), post({ port, ca, body, timeoutMs: 5_000 })]);
      kept.push(a);
      fresh.push(b);
      await sleep(250);
    }
  })();
  return async () => {
    running = false;
    await loop;
    const summary = (results) => ({
      statuses: tally(results.map((r) => r.status)),
      maxMs: Math.round(Math.max(0, ...results.filter((r) => r.status === 200).map((r) => r.ms))),
    });
    return { keepAlive: summary(kept), fresh: summary(fresh) };
  };
}

/** `only`: run the floods whose name contains this text. `nodeOptions`: instead of the Deployment's (experiments). */
export async function runFloodBench({ say = console.log, only, nodeOptions: override } = {}) {
  installCleanup();
  const { limitMiB, nodeOptions: deployed } = deploymentMemory();
  const nodeOptions = override ?? deployed;
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-floods-'));
  const certDir = join(tmpDir, 'certs');
  const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
  const nodeArgs = nodeOptions === undefined ? [] : nodeOptions.split(/\s+/);
  const typical = reviewOfSize(0);
  const results = [];
  try {
    for (const flood of FLOODS.filter((f) => only === undefined || f.name.includes(only))) {
      const server = await startServer({ kind: 'ours', certDir, tmpDir, nodeArgs, extraArgs: ['--cluster', 'off'] });
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: server.ca });
      const warm = await post({ port: server.port, ca: server.ca, body: typical, agent });
      if (warm.status !== 200) throw new Error(`warm-up answered ${warm.status}`);
      const idleMiB = procStatus(server.pid, 'VmRSS');
      let peakSampled = 0;
      const sampler = setInterval(() => (peakSampled = Math.max(peakSampled, procStatus(server.pid, 'VmRSS') ?? 0)), 50);
      const stopProbe = probe(server.port, server.ca, agent, typical);
      const started = performance.now();
      const detail = await flood.run({ port: server.port, ca: server.ca });
      const probes = await stopProbe();
      clearInterval(sampler);
      const peakMiB = procStatus(server.pid, 'VmHWM');
      const alive = server.child.exitCode === null && server.child.signalCode === null;
      agent.destroy();
      await stop(server.child);
      const row = {
        flood: flood.name,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        idleMiB: Math.round(idleMiB ?? 0),
        peakMiB: Math.round(peakMiB ?? peakSampled),
        limitMiB,
        withinLimit: (peakMiB ?? peakSampled) < limitMiB,
        alive,
        probes,
        detail,
      };
      results.push(row);
      say(
        `${row.flood.padEnd(38)} peak ${String(row.peakMiB).padStart(4)} MiB / limit ${limitMiB} MiB ` +
          `(idle ${row.idleMiB})  keep-alive probes ${JSON.stringify(probes.keepAlive.statuses)} ` +
          `fresh ${JSON.stringify(probes.fresh.statuses)}  ${JSON.stringify(detail)}`,
      );
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return { limitMiB, nodeOptions: nodeOptions ?? null, floods: results };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // node bench/floods.mjs [NAME-PART] [--node-options "…"]
  const args = process.argv.slice(2);
  const at = args.indexOf('--node-options');
  const override = at === -1 ? undefined : args.splice(at, 2)[1];
  const { limitMiB, nodeOptions, floods } = await runFloodBench({ only: args[0], nodeOptions: override });
  // Exit status: memory (the point of this bench) and survival. Probes are printed: under the handshake burst they
  // compete for CPU with the flood's own client on the same cores.
  const failed = floods.filter((f) => !f.withinLimit || !f.alive);
  const total = (statuses) => Object.values(statuses).reduce((a, b) => a + b, 0);
  const slowProbes = floods.filter((f) => (f.probes.keepAlive.statuses[200] ?? 0) !== total(f.probes.keepAlive.statuses));
  console.log(
    `memory limit ${limitMiB} MiB, NODE_OPTIONS ${nodeOptions ?? '(none)'}: ` +
      (failed.length === 0 ? 'every flood stayed under it, the server survived each' : `${failed.length} flood(s) exceeded it or killed the server`) +
      (slowProbes.length === 0 ? '; every keep-alive probe answered 200' : `; keep-alive probes not all 200 during: ${slowProbes.map((f) => f.flood).join(', ')}`),
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}
