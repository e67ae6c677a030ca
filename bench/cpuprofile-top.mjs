#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time, and self time
 * grouped by where the code lives (a package in node_modules, our dist/ file, node: internals, GC/idle).
 *
 * Usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [--top 25] [--json]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: attribute it to this sample's node.
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const places = new Map();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const name = functionName || '(anonymous)';
    const where = shortUrl(url);
    const key = `${name}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const place = placeOf(name, url);
    places.set(place, (places.get(place) ?? 0) + us);
  }
  // Inclusive time: a function's own time plus everything it called (recursion counted once).
  const inclusive = new Map();
  const root = profile.nodes[0];
  const walk = (node, active) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'}  ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ''}`;
    const entered = !active.has(key);
    if (entered) active.add(key);
    let sum = selfUs.get(node.id) ?? 0;
    for (const childId of node.children ?? []) sum += walk(byId.get(childId), active);
    if (entered) {
      active.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
    }
    return sum;
  };
  if (root) walk(root, new Set());
  inclusive.delete(`(root)  `);
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([what, us]) => ({ what, ms: us / 1000, percent: (100 * us) / total }));
  return { totalMs: total / 1000, functions: rank(fns), inclusive: rank(inclusive), places: rank(places) };
}

function shortUrl(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

function placeOf(name, url) {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } },
  });
  const result = summarise(JSON.parse(readFileSync(positionals[0], 'utf8')), Number(values.top));
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const line = (r) => `${r.ms.toFixed(1).padStart(9)} ms ${r.percent.toFixed(1).padStart(5)} %  ${r.what}`;
    console.log(`profile: ${result.totalMs.toFixed(0)} ms sampled`);
    console.log('\nself time by function');
    for (const r of result.functions) console.log(line(r));
    console.log('\ninclusive time by function (self + callees)');
    for (const r of result.inclusive) console.log(line(r));
    console.log('\nself time by place');
    for (const r of result.places) console.log(line(r));
  }
}
