/**
 * Starting the two servers under test and talking to them over TLS (127.0.0.1 only).
 *  - ours: `node dist/bundle/main.js serve` (the shipped bundle) with NODE_ENV=production, info logging to a file, metrics on.
 *  - baseline: bench/baseline-server.mjs.
 * Both print their port on stdout (ours in its JSON log, which goes to a file as in a container); the
 * cold-start figure is process spawn → first 200 from /readyz (ours) or /healthz (baseline).
 */
import { closeSync, openSync, readFileSync, truncateSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pinned, sleep, start } from './procs.mjs';

export const ROOT = new URL('../..', import.meta.url).pathname;
// What ships: the image and `make run` run the bundle.
export const MAIN = join(ROOT, 'dist/bundle/main.js');
export const BASELINE = join(ROOT, 'bench/baseline-server.mjs');

/** One HTTPS request; resolves {status, body (Buffer)}. A fresh connection unless an agent is given. */
export function httpsRequest({ port, path, method = 'GET', body, ca, agent = false, timeoutMs = 15000 }) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        ca,
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function lastJsonLineWith(text, key) {
  for (const line of text.split('\n').reverse()) {
    if (!line.includes(`"${key}"`)) continue;
    try {
      return JSON.parse(line);
    } catch {
      // a partial line
    }
  }
  return undefined;
}

/**
 * Starts a server and waits for its health path to answer 200.
 * kind: 'ours' | 'baseline' (or another script printing `{"listening":PORT}`, given as `script`); returns {kind, child, pid, port, metricsPort?, logPath, coldStartMs}.
 */
export async function startServer({ kind, certDir, tmpDir, cpu, extraArgs = [], nodeArgs = [], timeoutMs = 15000, knownPort, script }) {
  const ca = readFileSync(join(certDir, 'ca.crt'));
  const logPath = join(tmpDir, `${kind}-${process.hrtime.bigint()}.log`);
  const fd = openSync(logPath, 'a');
  const tls = ['--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'tls.key')];
  const args =
    kind === 'ours'
      ? [...nodeArgs, MAIN, 'serve', '--host', '127.0.0.1', '--port', String(knownPort ?? 0), '--metrics-port', '0', '--log-level', 'info', '--drain-seconds', '0', ...tls, ...extraArgs]
      : [...nodeArgs, script ?? BASELINE, '--host', '127.0.0.1', '--port', '0', ...tls, ...extraArgs];
  const [command, argv] = pinned(cpu, process.execPath, args);
  const t0 = performance.now();
  const child = start(command, argv, {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  closeSync(fd);
  const healthPath = kind === 'ours' ? '/readyz' : '/healthz';
  // knownPort: for log levels above info, where no "listening" line tells the port (experiments only).
  let port = knownPort;
  let metricsPort;
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${kind} server exited early (${child.exitCode ?? child.signalCode}): ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    if (port === undefined) {
      const text = readFileSync(logPath, 'utf8');
      const line = kind === 'ours' ? lastJsonLineWith(text, 'metricsPort') : lastJsonLineWith(text, 'listening');
      if (line) {
        port = kind === 'ours' ? line.port : line.listening;
        metricsPort = line.metricsPort;
      } else {
        await sleep(1);
        continue;
      }
    }
    try {
      const res = await httpsRequest({ port, path: healthPath, ca, timeoutMs: 2000 });
      if (res.status === 200) {
        const coldStartMs = performance.now() - t0;
        return { kind, child, pid: child.pid, port, metricsPort, logPath, ca, coldStartMs };
      }
    } catch {
      // not accepting yet
    }
    await sleep(2);
  }
  child.kill('SIGKILL');
  throw new Error(`${kind} server not ready within ${timeoutMs} ms`);
}

/** A port that was free a moment ago (for knownPort). */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Empties a server's log file between runs (it was opened for appending, so the writer follows). */
export function truncateLog(server) {
  try {
    truncateSync(server.logPath, 0);
  } catch {
    // the file may be gone with the temp dir
  }
}

/** Plain-HTTP GET of our /metrics; resolves the text. */
export async function scrapeMetrics(port) {
  const { request: httpRequest } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve(text));
    });
    req.setTimeout(5000, () => req.destroy(new Error('metrics scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Value of an unlabelled sample (or the sum over all label sets) in Prometheus text. */
export function metricValue(text, name) {
  let sum;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}
