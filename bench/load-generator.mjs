#!/usr/bin/env node
/**
 * Fallback load generator for machines without h2load: N keep-alive HTTPS/1.1 clients, one request in flight
 * each (as the API server does), POSTing one body, either as fast as possible or at a fixed rate per client.
 * Writes a per-request log in h2load's --log-file format (start µs since epoch, status, duration µs) for the
 * measured period and prints one JSON summary line.
 *
 * It is JavaScript on the same kind of runtime as the servers under test: on a small machine its figures
 * compete for cores with the server, and it saturates well below what h2load can offer. Prefer h2load.
 *
 * Usage: node bench/load-generator.mjs --port P --path /mutate --data FILE --ca FILE
 *          [--clients 25] [--duration 10] [--warm-up 2] [--rps N-per-client] [--log-file FILE]
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    path: { type: 'string', default: '/mutate?timeout=10s' },
    data: { type: 'string' },
    ca: { type: 'string' },
    clients: { type: 'string', default: '25' },
    duration: { type: 'string', default: '10' },
    'warm-up': { type: 'string', default: '0' },
    rps: { type: 'string' },
    'log-file': { type: 'string' },
  },
});

const body = readFileSync(values.data);
const clients = Number(values.clients);
const warmUpMs = Number(values['warm-up']) * 1000;
const durationMs = Number(values.duration) * 1000;
const interval = values.rps === undefined ? 0 : 1000 / Number(values.rps);
const agent = new Agent({ keepAlive: true, maxSockets: clients, ca: readFileSync(values.ca) });
const log = values['log-file'] ? createWriteStream(values['log-file']) : undefined;
const epochOffsetUs = Date.now() * 1000 - performance.now() * 1000;

const begin = performance.now();
const measureFrom = begin + warmUpMs;
const end = measureFrom + durationMs;
const counts = { done: 0, ok: 0, failed: 0, errored: 0 };
const statuses = {};

function once() {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(values.port),
        path: values.path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      },
    );
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function client(index) {
  // Spread the clients' schedules over one interval so a fixed rate does not arrive in bursts of N.
  let next = begin + (interval * index) / clients;
  while (true) {
    if (interval > 0) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next += interval;
    }
    const t = performance.now();
    if (t >= end) return;
    const status = await once();
    const after = performance.now();
    if (t < measureFrom || after > end) continue;
    counts.done += 1;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) counts.ok += 1;
    else {
      counts.failed += 1;
      if (status === 0) counts.errored += 1;
    }
    log?.write(`${Math.round(epochOffsetUs + t * 1000)}\t${status}\t${Math.round((after - t) * 1000)}\n`);
  }
}

await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
agent.destroy();
await new Promise((resolve) => (log ? log.end(resolve) : resolve()));
const seconds = durationMs / 1000;
process.stdout.write(
  `${JSON.stringify({ done: counts.done, succeeded: counts.ok, failed: counts.failed, errored: counts.errored, statuses, seconds, reqPerSec: counts.done / seconds })}\n`,
);
