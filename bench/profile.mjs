#!/usr/bin/env node
/**
 * CPU profile of our webhook, summarised: where a miss in `make bench` comes from.
 *   node bench/profile.mjs load [FIXTURE=typical] [SECONDS=10] [RATE]   under h2load (saturation, or RATE req/s)
 *   node bench/profile.mjs startup                                       spawn → ready, then stop
 * PROFILE_SERVER=baseline profiles bench/baseline-server.mjs instead, for comparison.
 * The server runs as in the benchmark (NODE_ENV=production, info logging, metrics) plus `--cpu-prof`, pinned
 * to CPU 0 with the load on CPU 1. The .cpuprofile is kept in bench/results/ (open it in Chrome DevTools).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarise } from './cpuprofile-top.mjs';
import { writeFixtures } from './fixtures/generate.mjs';
import { chooseGenerator, loadRun } from './lib/load.mjs';
import { has, installCleanup, run, stop } from './lib/procs.mjs';
import { MAIN, ROOT, startServer } from './lib/servers.mjs';

const [mode = 'load', fixtureName = 'typical', secondsText = '10', rateText] = process.argv.slice(2);
const kind = process.env.PROFILE_SERVER === 'baseline' ? 'baseline' : 'ours';

async function main() {
  installCleanup();
  const pin = has('taskset') && cpus().length >= 2;
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-profile-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const certDir = join(tmpDir, 'certs');
  await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  const profDir = join(tmpDir, 'prof');
  mkdirSync(profDir);
  const server = await startServer({ kind, certDir, tmpDir, cpu: pin ? 0 : undefined, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  console.log(`ready after ${server.coldStartMs.toFixed(0)} ms (with the profiler on)`);
  if (mode === 'load') {
    const generator = await chooseGenerator({ say: console.log });
    const fixture = writeFixtures(join(ROOT, 'bench/fixtures'))[fixtureName];
    const result = await loadRun({
      generator,
      server,
      fixturePath: fixture.path,
      clients: 25,
      seconds: Number(secondsText),
      warmUpSeconds: 1,
      rate: rateText === undefined ? undefined : Number(rateText),
      cpu: pin ? 1 : undefined,
      tmpDir,
      caPath: join(certDir, 'ca.crt'),
    });
    console.log(`${fixtureName}: ${result.reqPerSec.toFixed(0)} req/s, p50 ${result.p50Ms?.toFixed(3)} ms, p99 ${result.p99Ms?.toFixed(3)} ms, errors ${result.errors}`);
  }
  await stop(server.child, 10000);
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (the server did not exit cleanly)');
  const resultsDir = join(ROOT, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const kept = join(resultsDir, `profile-${kind}-${mode}${mode === 'load' ? `-${fixtureName}` : ''}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  const summary = summarise(JSON.parse(readFileSync(kept, 'utf8')), 30);
  const line = (r) => `${r.ms.toFixed(1).padStart(9)} ms ${r.percent.toFixed(1).padStart(5)} %  ${r.what}`;
  console.log(`\nprofile ${kept}: ${summary.totalMs.toFixed(0)} ms sampled\n\nself time by function`);
  for (const r of summary.functions) console.log(line(r));
  console.log('\nself time by place');
  for (const r of summary.places) console.log(line(r));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`profile failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
