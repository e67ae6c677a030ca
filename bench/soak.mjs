#!/usr/bin/env node
/**
 * `make soak`: our webhook (compiled, NODE_ENV=production, info logging, metrics on) under a steady 500 req/s
 * of typical pods for SOAK_SECONDS (default 600) with h2load in rate mode (or the Node load generator).
 * Every SOAK_SAMPLE_SECONDS (10) it samples RSS (/proc/PID/status) and scrapes our /metrics for the event-loop
 * delay of the last interval (prom-client's nodejs_eventloop_lag_*_seconds, reset at each scrape), heap use
 * and the admissions answered. At the end: whether RSS stayed within ±10 % of its value after warm-up (the
 * first minute, or half the run when it is shorter than two minutes) and the error count.
 *
 * Exit status: 0 all good; 1 errors (failed requests or error decisions) or a broken run; 2 RSS drifted.
 * Environment: SOAK_SECONDS (600), SOAK_RATE (500 total req/s), SOAK_SAMPLE_SECONDS (10), BENCH_CONNECTIONS (25).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFixtures } from './fixtures/generate.mjs';
import { chooseGenerator, loadRun } from './lib/load.mjs';
import { has, installCleanup, loadAverage, rssMiB, run, sleep, stop } from './lib/procs.mjs';
import { MAIN, ROOT, metricValue, scrapeMetrics, startServer, truncateLog } from './lib/servers.mjs';

const seconds = Number(process.env.SOAK_SECONDS ?? '600');
const rate = Number(process.env.SOAK_RATE ?? '500');
const sampleSeconds = Number(process.env.SOAK_SAMPLE_SECONDS ?? '10');
const connections = Number(process.env.BENCH_CONNECTIONS ?? '25');
const warmUpSeconds = Math.min(60, Math.floor(seconds / 2));
const RSS_BAND = 0.1;

const say = (line = '') => process.stdout.write(`${line}\n`);
const f = (v, d = 1) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d));

async function main() {
  installCleanup();
  const pin = has('taskset') && cpus().length >= 2;
  const generator = await chooseGenerator({ install: process.env.BENCH_NO_INSTALL !== '1', say });
  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-soak-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const certDir = join(tmpDir, 'certs');
  const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
  const fixture = writeFixtures(join(ROOT, 'bench/fixtures')).typical;

  const server = await startServer({ kind: 'ours', certDir, tmpDir, cpu: pin ? 0 : undefined });
  await sleep(500);
  say(`soak: ${seconds} s at ${rate} req/s of typical pods (${(fixture.bytes / 1024).toFixed(1)} KiB) over ${connections} keep-alive TLS connections, ${generator.name === 'h2load' ? generator.version : 'Node load generator'}`);
  say(`server pid ${server.pid}${pin ? ' on CPU 0, load on CPU 1' : ', no pinning'}; idle RSS ${f(rssMiB(server.pid))} MiB; load average ${loadAverage()}`);
  say(`warm-up: first ${warmUpSeconds} s; event-loop delay figures include prom-client's 10 ms sampling resolution (an idle loop reads ~10 ms)`);
  say();
  say('     t s   RSS MiB  heap MiB  req/s  loop p50 ms  loop p99 ms  loop max ms  errors');

  await scrapeMetrics(server.metricsPort); // resets the event-loop histogram: the first sample covers its own interval only
  const started = performance.now();
  const loadDone = loadRun({
    generator,
    server,
    fixturePath: fixture.path,
    clients: connections,
    seconds,
    warmUpSeconds: 0,
    rate,
    cpu: pin ? 1 : undefined,
    tmpDir,
    caPath: join(certDir, 'ca.crt'),
  });
  let finished;
  loadDone.then(
    (r) => (finished = { result: r }),
    (e) => (finished = { error: e }),
  );

  const samples = [];
  let lastAnswered = 0;
  let lastT = 0;
  for (let k = 1; ; k++) {
    const due = started + k * sampleSeconds * 1000;
    while (performance.now() < due && !finished) await sleep(Math.min(250, Math.max(1, due - performance.now())));
    if (finished) break;
    const t = (performance.now() - started) / 1000;
    const text = await scrapeMetrics(server.metricsPort);
    const answered = metricValue(text, 'sidecar_injector_admissions_total') ?? 0;
    const errorDecisions = sumMatching(text, 'sidecar_injector_admissions_total{', 'decision="error"');
    const sample = {
      t,
      rssMiB: rssMiB(server.pid),
      heapUsedMiB: (metricValue(text, 'nodejs_heap_size_used_bytes') ?? NaN) / 1048576,
      reqPerSec: (answered - lastAnswered) / (t - lastT),
      loopP50Ms: (metricValue(text, 'nodejs_eventloop_lag_p50_seconds') ?? NaN) * 1000,
      loopP99Ms: (metricValue(text, 'nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
      loopMaxMs: (metricValue(text, 'nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
      errorDecisions,
    };
    lastAnswered = answered;
    lastT = t;
    samples.push(sample);
    say(`${f(t, 0).padStart(8)}  ${f(sample.rssMiB).padStart(8)}  ${f(sample.heapUsedMiB).padStart(8)}  ${f(sample.reqPerSec, 0).padStart(5)}  ${f(sample.loopP50Ms, 2).padStart(11)}  ${f(sample.loopP99Ms, 2).padStart(11)}  ${f(sample.loopMaxMs, 2).padStart(11)}  ${String(errorDecisions).padStart(6)}`);
    truncateLog(server); // a container runtime would rotate; the disk should not fill during a long soak
  }
  while (!finished) await sleep(100);
  if (finished.error) throw finished.error;
  const load = finished.result;
  const finalText = await scrapeMetrics(server.metricsPort);
  const errorDecisions = sumMatching(finalText, 'sidecar_injector_admissions_total{', 'decision="error"');
  const rssEnd = rssMiB(server.pid);
  await stop(server.child);

  const reference = samples.find((s) => s.t >= warmUpSeconds - 0.5);
  const after = samples.filter((s) => reference && s.t >= reference.t);
  const outside = reference ? after.filter((s) => Math.abs(s.rssMiB - reference.rssMiB) > RSS_BAND * reference.rssMiB) : [];
  const rssMin = Math.min(...after.map((s) => s.rssMiB));
  const rssMax = Math.max(...after.map((s) => s.rssMiB));
  const errors = load.errors + errorDecisions;
  say();
  say(`load: ${load.done} requests in ${seconds} s (${f(load.reqPerSec, 0)} req/s), latency p50 ${f(load.p50Ms, 3)} ms, p99 ${f(load.p99Ms, 3)} ms, max ${f(load.maxMs, 3)} ms`);
  say(`errors: ${errors} (${load.errors} failed requests, ${errorDecisions} error decisions)`);
  const rssOk = reference !== undefined && outside.length === 0;
  say(
    reference
      ? `RSS after warm-up (t=${f(reference.t, 0)} s): ${f(reference.rssMiB)} MiB; since then ${f(rssMin)}–${f(rssMax)} MiB, end ${f(rssEnd)} MiB: ${rssOk ? 'within' : 'OUTSIDE'} ±${RSS_BAND * 100} %${outside.length ? ` (${outside.length} samples outside)` : ''}`
      : 'RSS: no sample after warm-up (run longer)',
  );
  say(`load average at the end: ${loadAverage()}`);

  const resultsDir = join(ROOT, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, 'soak-latest.json');
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), seconds, rate, connections, warmUpSeconds, generator, load, errors, errorDecisions, rss: { reference: reference?.rssMiB, min: rssMin, max: rssMax, end: rssEnd, withinBand: rssOk }, samples }, null, 2)}\n`);
  say(`JSON: ${out}`);
  if (errors > 0) return 1;
  return rssOk ? 0 : 2;
}

/** Sum of the samples of `prefix…` whose label set contains `needle`. */
function sumMatching(text, prefix, needle) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix) && line.includes(needle)) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
