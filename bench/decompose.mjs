#!/usr/bin/env node
/**
 * Where our CPU per request goes, by difference: the same typical-pod load (h2load, pinned, CPU time read from
 * /proc) against five servers that each add one layer —
 *   baseline      bare node:https doing the work by hand (bench/baseline-server.mjs)
 *   fastify       the same hand-written work inside fastify (bench/fastify-floor.mjs): the framework's cost
 *   fastify+log   plus a pino child logger and one info line per request: the logging's cost
 *   ours-silent   our webhook with --log-level silent: our pipeline (envelope, engine, pre-flight, metrics)
 *   ours          our webhook as `make bench` runs it
 * Three interleaved rounds; the median CPU µs/request is printed. Not part of `make bench` (≈ 90 s).
 *
 * Usage: node bench/decompose.mjs [FIXTURE=typical] [RATE (total req/s); default saturation]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFixtures } from './fixtures/generate.mjs';
import { chooseGenerator, loadRun } from './lib/load.mjs';
import { has, installCleanup, loadAverage, run, stop } from './lib/procs.mjs';
import { freePort, MAIN, ROOT, startServer } from './lib/servers.mjs';

const [fixtureName = 'typical', rateText] = process.argv.slice(2);
const rate = rateText === undefined ? undefined : Number(rateText);

async function main() {
  installCleanup();
  const pin = has('taskset') && cpus().length >= 2;
  const generator = await chooseGenerator({ say: console.log });
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-decompose-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const certDir = join(tmpDir, 'certs');
  await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  const fixture = writeFixtures(join(ROOT, 'bench/fixtures'))[fixtureName];
  const floor = join(ROOT, 'bench/fastify-floor.mjs');
  const variants = [
    ['baseline', { kind: 'baseline' }],
    ['fastify', { kind: 'baseline', script: floor }],
    ['fastify+log', { kind: 'baseline', script: floor, extraArgs: ['--log'] }],
    // No "listening" line at this level: the port is chosen up front.
    ['ours-silent', { kind: 'ours', extraArgs: ['--log-level', 'silent'], knownPort: await freePort() }],
    ['ours', { kind: 'ours' }],
  ];
  const servers = [];
  for (const [name, variant] of variants) servers.push([name, await startServer({ ...variant, certDir, tmpDir, cpu: pin ? 0 : undefined })]);
  console.log(`${fixtureName}, ${rate === undefined ? 'saturation' : `${rate} req/s`}; load average ${loadAverage()}`);
  const cpu = {};
  for (let round = 0; round < 3; round++) {
    for (const [name, server] of servers) {
      const r = await loadRun({ generator, server, fixturePath: fixture.path, clients: 25, seconds: 4, warmUpSeconds: 1, rate, cpu: pin ? 1 : undefined, tmpDir, caPath: join(certDir, 'ca.crt') });
      (cpu[name] ??= []).push(r.cpuUsPerRequest);
      console.log(`  round ${round} ${name.padEnd(12)} ${r.reqPerSec.toFixed(0).padStart(6)} req/s  ${r.cpuUsPerRequest?.toFixed(0).padStart(5)} CPU µs/request  p50 ${r.p50Ms?.toFixed(2)} ms  errors ${r.errors}`);
    }
  }
  for (const [, server] of servers) await stop(server.child);
  console.log(`\nmedian CPU µs/request (load average now ${loadAverage()})`);
  const medians = Object.fromEntries(Object.entries(cpu).map(([name, xs]) => [name, xs.sort((a, b) => a - b)[1]]));
  const layer = { fastify: 'baseline', 'fastify+log': 'fastify', 'ours-silent': 'fastify', ours: 'ours-silent' };
  for (const [name, median] of Object.entries(medians)) {
    const below = layer[name];
    const delta = below === undefined ? '' : `  +${(median - medians[below]).toFixed(0)} over ${below}`;
    console.log(`  ${name.padEnd(12)} ${median.toFixed(0).padStart(5)}  (${(median / medians.baseline).toFixed(2)}× baseline)${delta}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`decompose failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
