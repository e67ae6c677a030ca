/**
 * One load run against a server: h2load (`--h1`, keep-alive over TLS, POST body from a file) when installed,
 * else bench/load-generator.mjs. Both write the same per-request log; latency percentiles come from it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, has, pinned, run } from './procs.mjs';
import { ROOT } from './servers.mjs';

export const MUTATE_PATH = '/mutate?timeout=10s';

/**
 * Which load generator this machine has. h2load comes from Debian's nghttp2-client: installed here when
 * missing and we are root with apt-get (quietly; a failure falls back).
 */
export async function chooseGenerator({ install = true, say = console.log } = {}) {
  if (has('h2load')) return { name: 'h2load', version: await h2loadVersion() };
  if (install && process.getuid?.() === 0 && has('apt-get')) {
    say('h2load not found: installing Debian nghttp2-client (apt-get install -y nghttp2-client)…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let result = await run('apt-get', ['install', '-y', '-qq', 'nghttp2-client'], { env });
    if (result.code !== 0) {
      await run('apt-get', ['update', '-qq'], { env });
      result = await run('apt-get', ['install', '-y', '-qq', 'nghttp2-client'], { env });
    }
    if (result.code === 0 && has('h2load')) return { name: 'h2load', version: await h2loadVersion() };
    say(`could not install nghttp2-client: ${result.stderr.trim().split('\n').pop()}`);
  }
  say(
    'NOTE: h2load (Debian package nghttp2-client) is not available: using the Node keep-alive load generator ' +
      'bench/load-generator.mjs. Its figures compete for CPU with the server and it saturates below h2load: ' +
      'read saturation ratios, not absolute numbers. Install nghttp2-client for real figures.',
  );
  return { name: 'node', version: process.version };
}

async function h2loadVersion() {
  const { stdout, stderr } = await run('h2load', ['--version']);
  return (stdout + stderr).trim().split('\n')[0];
}

function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50/p99/max (ms) and counts from an h2load-format log (start µs, status, duration µs). */
export function summariseLog(path) {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { samples: 0 };
  }
  const durations = [];
  let non2xx = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [, status, us] = line.split('\t');
    durations.push(Number(us) / 1000);
    const code = Number(status);
    if (!(code >= 200 && code < 300)) non2xx += 1;
  }
  const sorted = Float64Array.from(durations).sort();
  return {
    samples: sorted.length,
    non2xx,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : undefined,
  };
}

function parseH2load(output) {
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(output);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  if (!finished || !requests || !codes) return undefined;
  return {
    reqPerSec: Number(finished[2]),
    done: Number(requests[3]),
    succeeded: Number(requests[4]),
    // h2load's "failed" includes errored and timed-out requests and non-2xx answers.
    failed: Number(requests[5]),
    errored: Number(requests[6]),
    timeout: Number(requests[7]),
    status2xx: Number(codes[1]),
  };
}

/**
 * One measured run. rate: total requests per second (spread over the clients), or undefined for saturation.
 * Returns {reqPerSec, done, errors, p50Ms, p99Ms, maxMs, samples, ...}.
 */
export async function loadRun({ generator, server, fixturePath, clients, seconds, warmUpSeconds, rate, cpu, tmpDir, caPath }) {
  const logFile = join(tmpDir, `load-${process.hrtime.bigint()}.log`);
  const perClient = rate === undefined ? undefined : rate / clients;
  if (perClient !== undefined && !Number.isInteger(perClient)) throw new Error(`rate ${rate} is not a multiple of ${clients} clients`);
  // The server's CPU time over the measured period (from the end of the warm-up to the generator's exit):
  // CPU per request does not depend on what else the machine runs, unlike requests per second.
  let cpuAtStart;
  const mark = setTimeout(() => (cpuAtStart = cpuSeconds(server.pid)), warmUpSeconds * 1000);
  let summary;
  if (generator.name === 'h2load') {
    const args = [
      '--h1',
      '-c', String(clients),
      '-t', '1',
      '-D', String(seconds),
      '--warm-up-time', String(warmUpSeconds),
      '-d', fixturePath,
      '-H', 'content-type: application/json',
      '--log-file', logFile,
      ...(perClient === undefined ? [] : ['--rps', String(perClient)]),
      `https://127.0.0.1:${server.port}${MUTATE_PATH}`,
    ];
    const [command, argv] = pinned(cpu, 'h2load', args);
    const result = await run(command, argv);
    summary = parseH2load(result.stdout);
    if (!summary) throw new Error(`h2load gave no summary (exit ${result.code}): ${(result.stdout + result.stderr).slice(-1500)}`);
  } else {
    const args = [
      join(ROOT, 'bench/load-generator.mjs'),
      '--port', String(server.port),
      '--path', MUTATE_PATH,
      '--data', fixturePath,
      '--ca', caPath,
      '--clients', String(clients),
      '--duration', String(seconds),
      '--warm-up', String(warmUpSeconds),
      '--log-file', logFile,
      ...(perClient === undefined ? [] : ['--rps', String(perClient)]),
    ];
    const [command, argv] = pinned(cpu, process.execPath, args);
    const result = await run(command, argv);
    try {
      summary = JSON.parse(result.stdout.trim().split('\n').pop());
    } catch {
      throw new Error(`load generator failed (exit ${result.code}): ${result.stderr.slice(-1500)}`);
    }
    summary.timeout = 0;
  }
  clearTimeout(mark);
  const cpuAtEnd = cpuSeconds(server.pid);
  const cpuUsPerRequest = cpuAtStart !== undefined && cpuAtEnd !== undefined && summary.done > 0 ? ((cpuAtEnd - cpuAtStart) * 1e6) / summary.done : undefined;
  const latency = summariseLog(logFile);
  rmSync(logFile, { force: true });
  const errors = Math.max(summary.failed, latency.non2xx ?? 0) + (summary.done === 0 ? 1 : 0);
  return {
    rate: rate ?? null,
    reqPerSec: summary.reqPerSec,
    done: summary.done,
    errors,
    cpuUsPerRequest,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    samples: latency.samples,
  };
}
