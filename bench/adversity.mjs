#!/usr/bin/env node
/**
 * `make bench` (second half): the server under adversity, in one run, against the built bundle.
 *  - big pods: answer time and the worst /healthz wait meanwhile, per shape up to 3 MiB (bench/big-pods.mjs);
 *  - floods: peak RSS under each flood against the Deployment's memory limit (bench/floods.mjs);
 *  - drain: admissions lost at the end of a drain, idle keep-alive and steady load (bench/drain.mjs);
 *  - audit: one missed-pods audit over 10,000 pods against the fake API server (bench/audit.mjs).
 * Prints a summary and writes bench/results/adversity.json. Exit status 1 when something is broken rather than
 * slow: a wrong answer, a flood over the memory limit or killing the server, an admission lost in a drain.
 *
 *   node bench/adversity.mjs [big-pods] [floods] [drain] [audit]   # default: all four
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runAuditBench } from './audit.mjs';
import { runBigPodBench } from './big-pods.mjs';
import { runDrainBench } from './drain.mjs';
import { runFloodBench } from './floods.mjs';
import { ROOT } from './lib/servers.mjs';

const TARGET_MS = 500;
const say = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line) => process.stderr.write(`  · ${line}\n`);
const load = () => loadavg()[0].toFixed(2);

const SECTIONS = {
  'big-pods': async () => {
    const report = await runBigPodBench({ say: progress });
    say('\nLargest pods (answer time and the worst /healthz wait meanwhile; target ≤ 500 ms each)');
    say('| shape | request | answer | answer size | worst /healthz wait | |');
    say('|---|---|---|---|---|---|');
    for (const r of report.results) {
      const miss = !r.ok ? 'WRONG' : r.answerMs > TARGET_MS || r.worstHealthzMs > TARGET_MS ? 'miss' : 'met';
      say(`| ${r.shape} | ${mib(r.requestBytes)} | ${r.answerMs} ms | ${mib(r.answerBytes)} | ${r.worstHealthzMs} ms | ${miss} |`);
    }
    return { report, broken: report.results.filter((r) => !r.ok).map((r) => `wrong answer: ${r.shape}`) };
  },
  floods: async () => {
    const report = await runFloodBench({ say: progress });
    say(`\nFloods (peak RSS of the server against the Deployment's limit, ${report.limitMiB} MiB; NODE_OPTIONS ${report.nodeOptions ?? '(none)'})`);
    say('| flood | idle RSS | peak RSS | within limit | server alive | keep-alive probes during the flood |');
    say('|---|---|---|---|---|---|');
    for (const f of report.floods) {
      say(`| ${f.flood} | ${f.idleMiB} MiB | ${f.peakMiB} MiB | ${f.withinLimit ? 'yes' : 'NO'} | ${f.alive ? 'yes' : 'NO'} | ${statuses(f.probes.keepAlive.statuses)} |`);
    }
    const broken = report.floods.filter((f) => !f.withinLimit || !f.alive).map((f) => `flood ${f.flood}: peak ${f.peakMiB} MiB, alive ${f.alive}`);
    return { report, broken };
  },
  drain: async () => {
    const report = await runDrainBench({ say: progress });
    say(`\nDrain (--drain-seconds ${report.drainSeconds}; failed = a request sent and not answered: a lost admission)`);
    say('| scenario | answered | refused (listener closed, nothing sent) | failed | exit |');
    say('|---|---|---|---|---|');
    for (const [name, s] of [['idle keep-alive connections, one request each around drain end', report.idle], ['steady load across the drain', report.steady]]) {
      say(`| ${name} | ${s.answered} | ${s.refused} | ${s.failed} | ${s.exit.code ?? s.exit.signal} |`);
    }
    const broken = [report.idle, report.steady].filter((s) => s.failed > 0 || s.exit.code !== 0).map((s) => `drain: ${s.failed} failed, exit ${JSON.stringify(s.exit)}`);
    return { report, broken };
  },
  audit: async () => {
    const report = await runAuditBench();
    say('\nMissed-pods audit against the fake API server');
    say(`| pods | requests | response bytes | time | heap growth | missed found |`);
    say('|---|---|---|---|---|---|');
    say(`| ${report.pods} | ${report.requests} | ${report.responseMiB} MiB | ${report.ms} ms | ${report.heapGrowthMiB} MiB | ${report.missed} |`);
    return { report, broken: [] };
  },
};

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

function statuses(counts) {
  return Object.entries(counts).map(([status, n]) => `${n}× ${status}`).join(', ');
}

const asked = process.argv.slice(2);
const chosen = asked.length === 0 ? Object.keys(SECTIONS) : asked;
const unknown = chosen.filter((name) => !(name in SECTIONS));
if (unknown.length > 0) {
  process.stderr.write(`unknown section(s): ${unknown.join(', ')}; choose from ${Object.keys(SECTIONS).join(', ')}\n`);
  process.exit(2);
}
say(`Adversity: ${cpus().length} CPUs, Node ${process.version}, load average ${load()} at the start, ${new Date().toISOString()}`);
const results = {};
const broken = [];
for (const name of chosen) {
  const outcome = await SECTIONS[name]();
  results[name] = outcome.report;
  broken.push(...outcome.broken);
}
say(`\nload average ${load()} at the end; ${broken.length === 0 ? 'nothing broken' : `BROKEN: ${broken.join('; ')}`}`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'adversity.json'), `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
process.exitCode = broken.length === 0 ? 0 : 1;
