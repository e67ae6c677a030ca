#!/usr/bin/env node
/**
 * In-process micro-benchmark of the engine alone: `computeInjection` (decision, patch, pre-flight check) from
 * dist/core/engine.js on one already-parsed pod, as many times as it can on one core (run.mjs pins it with
 * taskset). A warm-up lets V8 optimise, then a fixed measured period. Prints one JSON line.
 * JSON parsing of the request and base64 of the answer are not included; `withJson` adds both, for scale.
 *
 * Usage: node bench/engine.mjs FIXTURE.json [--warm-up 1] [--seconds 2.5]
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'warm-up': { type: 'string', default: '1' }, seconds: { type: 'string', default: '2.5' } },
});
const root = new URL('..', import.meta.url);
const { computeInjection } = await import(new URL('dist/core/engine.js', root).href);
const { defaultConfig } = await import(new URL('dist/core/defaults.js', root).href);

const text = readFileSync(positionals[0], 'utf8');
const review = JSON.parse(text);
const pod = review.request.object;
const config = defaultConfig();
const context = { operation: 'CREATE', namespace: review.request.namespace, injectorNamespace: 'sidecar-injector' };

const first = computeInjection(pod, config, context);
if (first.decision.action !== 'inject') {
  process.stderr.write(`engine did not inject the fixture: ${JSON.stringify(first.decision)}\n`);
  process.exit(1);
}

let sink = 0;
/** Calls `fn` in batches until `ms` have passed; returns calls per second. */
function measure(fn, ms) {
  const t0 = performance.now();
  let calls = 0;
  let now = t0;
  while (now - t0 < ms) {
    for (let i = 0; i < 64; i++) sink += fn();
    calls += 64;
    now = performance.now();
  }
  return calls / ((now - t0) / 1000);
}

const engineOnly = () => computeInjection(pod, config, context).patch.length;
const withJson = () => {
  const result = computeInjection(JSON.parse(text).request.object, config, context);
  return Buffer.from(JSON.stringify(result.patch)).toString('base64').length;
};

const warmUpMs = Number(values['warm-up']) * 1000;
const measureMs = Number(values.seconds) * 1000;
measure(engineOnly, warmUpMs);
const podsPerSecond = measure(engineOnly, measureMs);
measure(withJson, warmUpMs / 2);
const withJsonPerSecond = measure(withJson, measureMs / 2);
process.stdout.write(
  `${JSON.stringify({ podsPerSecond, withJsonPerSecond, microsecondsPerPod: 1e6 / podsPerSecond, patchOperations: first.patch.length, sink: sink > 0 })}\n`,
);
