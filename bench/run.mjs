#!/usr/bin/env node
/**
 * `make bench`: our webhook (compiled, NODE_ENV=production, info logging, metrics, validation, pre-flight — all
 * on) against a bare node:https baseline doing the same work by hand (bench/baseline-server.mjs), on the same
 * machine in the same run, with h2load over HTTP/1.1 keep-alive TLS as the API server talks.
 *
 * Measures, per fixture (small ~3 KB, typical ~10 KB, large ~100 KB) and per server: throughput at saturation;
 * p50/p99/max latency and errors at fixed rates; plus RSS idle and after load, cold start, the engine alone
 * (pods/s on one core), and one ~3 MiB pod. Prints a table with our/baseline ratios and PASS/MISS per target,
 * writes bench/results/latest.json. Every process it starts is killed at the end, on failure and on Ctrl-C.
 *
 * Pinning (taskset, when there are ≥ 2 CPUs): servers and the engine benchmark on CPU 0, the load generator on
 * CPU 1. Only 127.0.0.1 is ever contacted.
 *
 * Environment (defaults): BENCH_SECONDS (10) and BENCH_WARMUP (2) for saturation runs; BENCH_RATE_SECONDS (5)
 * and BENCH_RATE_WARMUP (1) for fixed-rate runs; BENCH_RATES (200,1000) total req/s; BENCH_CONNECTIONS (25);
 * BENCH_COLD_RUNS (5); BENCH_FIXTURES (small,typical,large); BENCH_NO_INSTALL=1 never apt-get installs h2load.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFixtures } from './fixtures/generate.mjs';
import { chooseGenerator, loadRun, MUTATE_PATH } from './lib/load.mjs';
import { has, installCleanup, loadAverage, pinned, rssMiB, run, sleep, stop } from './lib/procs.mjs';
import { httpsRequest, MAIN, ROOT, startServer, truncateLog } from './lib/servers.mjs';
import { verifyAnswer } from './lib/verify.mjs';

const env = (name, fallback) => process.env[name] ?? fallback;
const settings = {
  seconds: Number(env('BENCH_SECONDS', '10')),
  warmUpSeconds: Number(env('BENCH_WARMUP', '2')),
  rateSeconds: Number(env('BENCH_RATE_SECONDS', '5')),
  rateWarmUpSeconds: Number(env('BENCH_RATE_WARMUP', '1')),
  rates: env('BENCH_RATES', '200,1000').split(',').map(Number),
  connections: Number(env('BENCH_CONNECTIONS', '25')),
  coldRuns: Number(env('BENCH_COLD_RUNS', '5')),
  fixtures: env('BENCH_FIXTURES', 'small,typical,large').split(','),
};

const TARGETS = {
  saturationRatio: 0.8,
  p99Ms: 1,
  p99RatioMax: 2,
  enginePodsPerSecond: 30000,
  idleRssMiB: 80,
  coldStartMs: 300,
};

const say = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line) => process.stderr.write(`  · ${line}\n`);

/** The config file the manifests ship (manifests/base/config.yaml): in a cluster the server always has one. */
const SHIPPED_CONFIG = join(ROOT, 'manifests/base/config.yaml');

async function coldStarts(common) {
  const variants = {
    ours: { kind: 'ours' },
    baseline: { kind: 'baseline' },
    ...(existsSync(SHIPPED_CONFIG) ? { oursWithConfig: { kind: 'ours', extraArgs: ['--config', SHIPPED_CONFIG] } } : {}),
  };
  const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  const readyRss = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < settings.coldRuns; i++) {
    // Interleaved, so a burst of load from elsewhere on the machine hits every variant alike.
    for (const [name, variant] of Object.entries(variants)) {
      const server = await startServer({ ...variant, ...common });
      runs[name].push(server.coldStartMs);
      readyRss[name].push(rssMiB(server.pid));
      await stop(server.child);
    }
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return Object.fromEntries(
    Object.keys(variants).map((k) => [k, { meanMs: mean(runs[k]), minMs: Math.min(...runs[k]), runsMs: runs[k], rssAtReadyMiB: mean(readyRss[k]) }]),
  );
}

async function ask(server, body) {
  const res = await httpsRequest({ port: server.port, path: MUTATE_PATH, method: 'POST', body, ca: server.ca, timeoutMs: 30000 });
  return res;
}

async function verifyBoth(servers, name, path) {
  const body = readFileSync(path);
  const request = JSON.parse(body.toString('utf8'));
  const out = {};
  for (const server of servers) {
    const t0 = performance.now();
    const res = await ask(server, body);
    const ms = performance.now() - t0;
    const verdict = verifyAnswer(request, res.status, res.body);
    out[server.kind] = { ok: verdict.ok, problems: verdict.problems, status: res.status, ms, patchBytes: verdict.patchBytes, patchedPod: verdict.patchedPod };
  }
  const same = out.ours.ok && out.baseline.ok && isDeepStrictEqual(out.ours.patchedPod, out.baseline.patchedPod);
  for (const kind of Object.keys(out)) delete out[kind].patchedPod;
  return { fixture: name, samePatchedPod: same, ...out };
}

const fmt = (value, digits = 2) => {
  if (value === undefined || value === null || Number.isNaN(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
};
const ratio = (a, b) => (a === undefined || b === undefined || !b ? '—' : (a / b).toFixed(2));

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r, n) => {
      const line = r.map((cell, i) => (i < 2 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))).join('  ');
      return n === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

async function main() {
  installCleanup();
  const began = performance.now();
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`make build\` first`);
  const cpuCount = cpus().length;
  const pin = has('taskset') && cpuCount >= 2;
  const serverCpu = pin ? 0 : undefined;
  const loadCpu = pin ? 1 : undefined;
  if (!pin) say(`NOTE: no pinning (${has('taskset') ? `${cpuCount} CPU` : 'taskset missing'}): server and load generator share cores.`);
  const generator = await chooseGenerator({ install: process.env.BENCH_NO_INSTALL !== '1', say });

  const tmpDir = mkdtempSync(join(tmpdir(), 'sidecar-bench-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const certDir = join(tmpDir, 'certs');
  const certs = await run(process.execPath, [MAIN, 'certs', '--out-dir', certDir]);
  if (certs.code !== 0) throw new Error(`certs failed: ${certs.stderr}`);
  const caPath = join(certDir, 'ca.crt');
  const fixtureFiles = writeFixtures(join(ROOT, 'bench/fixtures'));
  const loadBefore = loadAverage();

  progress(`cold start × ${settings.coldRuns} per server`);
  const common = { certDir, tmpDir, cpu: serverCpu };
  const cold = await coldStarts(common);

  progress('starting both servers');
  const ours = await startServer({ kind: 'ours', ...common });
  const baseline = await startServer({ kind: 'baseline', ...common });
  const servers = [ours, baseline];
  await sleep(1000);
  const rssIdle = { ours: rssMiB(ours.pid), baseline: rssMiB(baseline.pid) };

  progress('verifying answers');
  const verification = [];
  for (const name of settings.fixtures) verification.push(await verifyBoth(servers, name, fixtureFiles[name].path));
  const broken = verification.filter((v) => !v.ours.ok || !v.baseline.ok);
  if (broken.length > 0) {
    throw new Error(`wrong answers, nothing measured: ${JSON.stringify(broken, null, 1)}`);
  }

  progress('engine micro-benchmark (typical pod, one core)');
  const [engineCmd, engineArgs] = pinned(serverCpu, process.execPath, [join(ROOT, 'bench/engine.mjs'), fixtureFiles.typical.path, '--warm-up', '1', '--seconds', '2.5']);
  const engineRun = await run(engineCmd, engineArgs, { env: { ...process.env, NODE_ENV: 'production' } });
  if (engineRun.code !== 0) throw new Error(`engine benchmark failed: ${engineRun.stderr}`);
  const engine = JSON.parse(engineRun.stdout.trim());

  const load = {};
  for (const name of settings.fixtures) {
    load[name] = { ours: { rates: {} }, baseline: { rates: {} } };
    const base = { generator, fixturePath: fixtureFiles[name].path, clients: settings.connections, cpu: loadCpu, tmpDir, caPath };
    for (const server of servers) {
      progress(`${name}: ${server.kind} at saturation (${settings.warmUpSeconds} s + ${settings.seconds} s)`);
      load[name][server.kind].saturation = await loadRun({ ...base, server, seconds: settings.seconds, warmUpSeconds: settings.warmUpSeconds });
      truncateLog(server);
    }
    for (const rate of settings.rates) {
      for (const server of servers) {
        progress(`${name}: ${server.kind} at ${rate} req/s (${settings.rateWarmUpSeconds} s + ${settings.rateSeconds} s)`);
        load[name][server.kind].rates[rate] = await loadRun({ ...base, server, rate, seconds: settings.rateSeconds, warmUpSeconds: settings.rateWarmUpSeconds });
        truncateLog(server);
      }
    }
  }
  const rssAfterLoad = { ours: rssMiB(ours.pid), baseline: rssMiB(baseline.pid) };

  progress(`one ~${(fixtureFiles.huge.bytes / 1048576).toFixed(1)} MiB pod`);
  const huge = await verifyBoth(servers, 'huge', fixtureFiles.huge.path);
  huge.bytes = fixtureFiles.huge.bytes;
  const rssAfterHuge = { ours: rssMiB(ours.pid), baseline: rssMiB(baseline.pid) };
  const loadAfter = loadAverage();
  for (const server of servers) await stop(server.child);

  // ---- report ----
  const rows = [['fixture', 'measure', 'ours', 'baseline', 'ours/base']];
  for (const name of settings.fixtures) {
    const o = load[name].ours;
    const b = load[name].baseline;
    const label = `${name} ${(fixtureFiles[name].bytes / 1024).toFixed(1)}K`;
    rows.push([label, 'saturation req/s', fmt(o.saturation.reqPerSec, 0), fmt(b.saturation.reqPerSec, 0), ratio(o.saturation.reqPerSec, b.saturation.reqPerSec)]);
    rows.push([label, 'saturation CPU µs/request', fmt(o.saturation.cpuUsPerRequest, 0), fmt(b.saturation.cpuUsPerRequest, 0), ratio(o.saturation.cpuUsPerRequest, b.saturation.cpuUsPerRequest)]);
    rows.push([label, 'saturation p50 / p99 ms', `${fmt(o.saturation.p50Ms)} / ${fmt(o.saturation.p99Ms)}`, `${fmt(b.saturation.p50Ms)} / ${fmt(b.saturation.p99Ms)}`, ratio(o.saturation.p99Ms, b.saturation.p99Ms)]);
    for (const rate of settings.rates) {
      const or = o.rates[rate];
      const br = b.rates[rate];
      const achieved = (r) => (r.reqPerSec < rate * 0.95 ? ` (only ${fmt(r.reqPerSec, 0)}/s)` : '');
      rows.push([label, `@${rate}/s p50 ms`, fmt(or.p50Ms, 3), fmt(br.p50Ms, 3), ratio(or.p50Ms, br.p50Ms)]);
      rows.push([label, `@${rate}/s p99 ms`, fmt(or.p99Ms, 3), fmt(br.p99Ms, 3), ratio(or.p99Ms, br.p99Ms)]);
      rows.push([label, `@${rate}/s max ms`, fmt(or.maxMs, 3), fmt(br.maxMs, 3), ratio(or.maxMs, br.maxMs)]);
      rows.push([label, `@${rate}/s errors`, `${or.errors}${achieved(or)}`, `${br.errors}${achieved(br)}`, '']);
    }
    rows.push([label, 'saturation errors', String(o.saturation.errors), String(b.saturation.errors), '']);
  }
  rows.push(['process', 'RSS idle MiB', fmt(rssIdle.ours, 1), fmt(rssIdle.baseline, 1), ratio(rssIdle.ours, rssIdle.baseline)]);
  rows.push(['process', 'RSS after load MiB', fmt(rssAfterLoad.ours, 1), fmt(rssAfterLoad.baseline, 1), ratio(rssAfterLoad.ours, rssAfterLoad.baseline)]);
  rows.push(['process', 'RSS after 3 MiB pod MiB', fmt(rssAfterHuge.ours, 1), fmt(rssAfterHuge.baseline, 1), ratio(rssAfterHuge.ours, rssAfterHuge.baseline)]);
  rows.push(['process', `cold start ms (mean of ${settings.coldRuns})`, fmt(cold.ours.meanMs, 0), fmt(cold.baseline.meanMs, 0), ratio(cold.ours.meanMs, cold.baseline.meanMs)]);
  if (cold.oursWithConfig) {
    rows.push(['process', 'cold start ms, with --config', fmt(cold.oursWithConfig.meanMs, 0), '', ratio(cold.oursWithConfig.meanMs, cold.baseline.meanMs)]);
  }
  rows.push(['process', '3 MiB pod: status, ms', `${huge.ours.status}, ${fmt(huge.ours.ms, 0)}`, `${huge.baseline.status}, ${fmt(huge.baseline.ms, 0)}`, '']);
  rows.push(['engine', 'typical pods/s, 1 core', fmt(engine.podsPerSecond, 0), '', '']);
  rows.push(['engine', '+ JSON parse & base64, /s', fmt(engine.withJsonPerSecond, 0), '', '']);

  const typical = load.typical;
  const checks = [];
  const target = (ok, what, value) => checks.push({ pass: Boolean(ok), what, value });
  if (typical) {
    const satRatio = typical.ours.saturation.reqPerSec / typical.baseline.saturation.reqPerSec;
    const cpuRatio = typical.baseline.saturation.cpuUsPerRequest / typical.ours.saturation.cpuUsPerRequest;
    target(
      satRatio >= TARGETS.saturationRatio,
      `typical saturation ≥ ${TARGETS.saturationRatio * 100} % of baseline`,
      `${(satRatio * 100).toFixed(0)} % (${fmt(typical.ours.saturation.reqPerSec, 0)} vs ${fmt(typical.baseline.saturation.reqPerSec, 0)} req/s; by CPU per request ${(cpuRatio * 100).toFixed(0)} %)`,
    );
    const at = typical.ours.rates[1000];
    const bt = typical.baseline.rates[1000];
    if (at && bt) {
      target(at.p99Ms <= TARGETS.p99Ms, `typical p99 at 1000 req/s ≤ ${TARGETS.p99Ms} ms`, `${fmt(at.p99Ms, 3)} ms`);
      target(at.p99Ms <= TARGETS.p99RatioMax * bt.p99Ms, `typical p99 at 1000 req/s ≤ ${TARGETS.p99RatioMax}× baseline`, `${(at.p99Ms / bt.p99Ms).toFixed(2)}× (${fmt(at.p99Ms, 3)} vs ${fmt(bt.p99Ms, 3)} ms)`);
    }
  }
  const ourErrors = Object.values(load).reduce((sum, f) => sum + f.ours.saturation.errors + Object.values(f.ours.rates).reduce((s, r) => s + r.errors, 0), 0);
  target(ourErrors === 0, '0 errors (every run, ours)', String(ourErrors));
  target(engine.podsPerSecond >= TARGETS.enginePodsPerSecond, `engine ≥ ${fmt(TARGETS.enginePodsPerSecond, 0)} typical pods/s`, `${fmt(engine.podsPerSecond, 0)} /s (${engine.microsecondsPerPod.toFixed(1)} µs/pod)`);
  target(rssIdle.ours <= TARGETS.idleRssMiB, `idle RSS ≤ ${TARGETS.idleRssMiB} MiB`, `${fmt(rssIdle.ours, 1)} MiB`);
  target(cold.ours.meanMs <= TARGETS.coldStartMs, `cold start ≤ ${TARGETS.coldStartMs} ms`, `${fmt(cold.ours.meanMs, 0)} ms (runs: ${cold.ours.runsMs.map((m) => m.toFixed(0)).join(', ')}${cold.oursWithConfig ? `; with --config ${fmt(cold.oursWithConfig.meanMs, 0)} ms` : ''})`);
  target(huge.ours.ok, `${(huge.bytes / 1048576).toFixed(1)} MiB pod: 200 and a correct patch`, huge.ours.ok ? `HTTP ${huge.ours.status} in ${fmt(huge.ours.ms, 0)} ms` : huge.ours.problems.join('; '));
  target(verification.every((v) => v.samePatchedPod), 'baseline does the same work (identical patched pods)', verification.map((v) => `${v.fixture}: ${v.samePatchedPod ? 'same' : 'DIFFERENT'}`).join(', '));

  const runtimeSeconds = (performance.now() - began) / 1000;
  say();
  say(`sidecar-injector bench — ${new Date().toISOString()}  node ${process.version}  ${generator.name === 'h2load' ? generator.version : 'Node load generator (figures compete for cores)'}`);
  say(`${cpuCount} CPUs; ${pin ? `servers pinned to CPU ${serverCpu}, load generator to CPU ${loadCpu}` : 'no pinning'}; ${settings.connections} keep-alive TLS connections, HTTP/1.1, POST ${MUTATE_PATH}`);
  say(`saturation: ${settings.warmUpSeconds} s warm-up + ${settings.seconds} s; fixed rates: ${settings.rateWarmUpSeconds} s + ${settings.rateSeconds} s; load average before ${loadBefore}, after ${loadAfter}`);
  say();
  say(table(rows));
  say();
  say('targets (ours)');
  for (const c of checks) say(`  ${c.pass ? 'PASS' : 'MISS'}  ${c.what.padEnd(52)} ${c.value}`);
  say();

  const result = {
    date: new Date().toISOString(),
    runtimeSeconds,
    machine: { cpus: cpuCount, node: process.version, loadBefore, loadAfter, pinning: pin ? { server: serverCpu, load: loadCpu } : null },
    generator,
    settings,
    fixtures: Object.fromEntries(Object.entries(fixtureFiles).map(([n, f]) => [n, f.bytes])),
    verification,
    coldStart: cold,
    rss: { idle: rssIdle, afterLoad: rssAfterLoad, afterHugePod: rssAfterHuge },
    engine,
    load,
    hugePod: huge,
    targets: checks,
  };
  const resultsDir = join(ROOT, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, 'latest.json');
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  say(`${checks.filter((c) => c.pass).length}/${checks.length} targets met; JSON: ${out}; runtime ${runtimeSeconds.toFixed(0)} s`);
  // A miss is a finding, not a broken run: the exit code says whether the benchmark itself worked.
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
