/**
 * The offline CLI writes manifests that mean to kubectl exactly what the input meant, plus the injection. kubectl
 * reads YAML 1.1 (go-yaml v2 through sigs.k8s.io/yaml); where the kubectl client is installed it is the oracle,
 * and every test also checks what it can without it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Document, parseAllDocuments } from 'yaml';
import { runInject, runUninject } from '../../src/cli/inject.js';
import type { PodObject } from '../../src/core/types.js';
import { KUBECTL_YAML } from '../../src/offline/kubectl-schema.js';
import { repoRoot } from '../support/fixtures.js';
import { captureIo } from '../support/io.js';
import { expectInjectedInvariants } from '../support/pod-assertions.js';

const manifestDir = join(repoRoot, 'test', 'fixtures', 'manifests');
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!hasKubectl) console.warn('kubectl is not installed: the kubectl-oracle tests in yaml-meaning.test.ts are skipped');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What kubectl's own decoder makes of a manifest file, one object per document (with the label `oracle=1`). */
function kubectlReads<T = Json[]>(file: string): T {
  const run = spawnSync('kubectl', ['label', '--local', '-f', file, 'oracle=1', '-o', 'json'], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  // One pretty-printed object per document, each opening with `{` on a line of its own.
  return run.stdout.split(/\n(?=\{\n)/).map((object) => JSON.parse(object) as Json) as T;
}

async function tempFile(name: string, content: string | Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'offline-meaning-'));
  const file = join(dir, name);
  await writeFile(file, content);
  return file;
}

async function cli(run: typeof runInject, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await run(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** YAML 1.1 as an independent implementation (the `yaml` library's own 1.1 schema) reads it. */
function yaml11<T>(text: string): T {
  return parseAllDocuments(text, { version: '1.1', schema: 'yaml-1.1' }).map((d) => d.toJS() as Json) as T;
}

const legacyFile = join(manifestDir, 'yaml11-values.yaml');

describe('offline inject keeps YAML 1.1 meaning', () => {
  it('writes quoted yes/no/on/off/y/n and number-like strings so they stay strings', async () => {
    const { code, out, err } = await cli(runInject, ['-f', legacyFile]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const [deployment] = yaml11<[{ spec: { template: PodObject } }]>(out);
    const template = deployment.spec.template;
    expectInjectedInvariants(template);
    expect(template.spec?.containers[0]?.env).toEqual([
      { name: 'DEBUG', value: 'no' },
      { name: 'VERBOSE', value: 'Y' },
      { name: 'BATCH', value: '1_000' },
      { name: 'WINDOW', value: '1:20' },
      { name: 'FEATURES', value: 'n' },
    ]);
    expect(template.metadata?.annotations?.['config.example.com/mode']).toBe('On');
    expect(template.metadata?.annotations?.['config.example.com/umask']).toBe('0777');
    // The octal mode, the binary annotation and the comment are the user's nodes, written back as they were.
    expect(out).toMatch(/^ {12}defaultMode: 0644$/m);
    expect(out).toMatch(/^ {8}config\.example\.com\/checksum: !!binary c2hhMjU2OmFiYzEyMw==$/m);
    expect(out).toMatch(/# A leading zero is octal to kubectl: 0644 is 420\./);
  });

  it.skipIf(!hasKubectl)('kubectl reads the injected output as the input plus the injection (oracle: kubectl)', async () => {
    const { out } = await cli(runInject, ['-f', legacyFile]);
    const injected = kubectlReads<[{ spec: { template: PodObject } }]>(await tempFile('injected.yaml', out));
    const original = kubectlReads(legacyFile);
    const template = injected[0].spec.template;
    expectInjectedInvariants(template);
    expect((template.spec?.volumes ?? []).find((v) => v.name === 'scratch')?.configMap?.defaultMode).toBe(0o644);
    expect(template.metadata?.annotations?.['config.example.com/checksum']).toBe('sha256:abc123');
    // Round trip: uninject gives back exactly what kubectl read from the input.
    const back = await cli(runUninject, ['-f', await tempFile('back.yaml', out)]);
    expect(back.code).toBe(0);
    expect(kubectlReads(await tempFile('back.yaml', back.out))).toEqual(original);
  });

  it.each([
    ['workloads.yaml'],
    ['pods.json'],
    ['yaml11-values.yaml'],
  ])('%s: inject then uninject means to kubectl what the input meant (oracle: kubectl when installed)', async (name) => {
    const file = join(manifestDir, name);
    const injected = await cli(runInject, ['-f', file, '--kubernetes-version', '1.33']);
    expect(injected.code).toBe(0);
    const back = await cli(runUninject, ['-f', await tempFile(name, injected.out)]);
    expect(back.code).toBe(0);
    if (name.endsWith('.json')) expect(JSON.parse(back.out)).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    else expect(back.out).not.toMatch(/: (yes|no|on|off|y|n|Y|N|On|Off)$/m);
    if (hasKubectl) expect(kubectlReads(await tempFile(name, back.out))).toEqual(kubectlReads(file));
  });

  it('reads the input with kubectl’s meaning: yes is true, 0777 is 511, y is the key "true"', async () => {
    const file = await tempFile(
      'pod.yaml',
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {y: "1"}\nspec:\n  containers: [{name: app, image: nginx, stdin: yes, tty: On}]\n  volumes:\n  - {name: c, configMap: {name: c, defaultMode: 0777}}\n',
    );
    const { code, out } = await cli(runInject, ['-f', file]);
    expect(code).toBe(0);
    const [pod] = yaml11<[PodObject & { metadata: { labels: Record<string, string> } }]>(out);
    expect(pod.spec?.containers[0]).toMatchObject({ stdin: true, tty: true });
    expect(pod.spec?.volumes?.[0]?.configMap?.defaultMode).toBe(511);
    expect(pod.metadata.labels).toEqual({ true: '1' });
    if (hasKubectl) {
      const [read] = kubectlReads<[PodObject]>(await tempFile('out.yaml', out));
      expect(read.metadata?.labels).toEqual({ oracle: '1', true: '1' });
      expect(read.spec?.volumes?.[0]?.configMap?.defaultMode).toBe(511);
    }
  });

  const tricky = fc.constantFrom('yes', 'No', 'ON', 'off', 'y', 'N', '~', 'null', '', '0777', '0o7', '0x1f', '0b1', '1_000', '1e3', '.5', '1:20', '2001-12-14', '<<', '-', '? x', '- x', '#x', 'a: b', '"q"', "'s'", '@x', '`x', '%x', '!x', '&x', '*x', '|', '>', ' lead', 'trail ', 'a\nb', '\t', '\u00a0', 'é', '💥');
  const randomValues = fc.sample(fc.oneof(tricky, fc.string({ maxLength: 8 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)), { numRuns: 300, seed: 9 });

  it.skipIf(!hasKubectl)('untouched random scalars keep their meaning through inject (oracle: kubectl)', async () => {
    const input = await tempFile('random.yaml', `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: nginx}]}\ndata:\n${randomValues.map((v) => `  - ${JSON.stringify(v)}`).join('\n')}\n`);
    const { code, out, err } = await cli(runInject, ['-f', input]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const [before] = kubectlReads<[{ data: unknown[] }]>(input);
    const [after] = kubectlReads<[{ data: unknown[] }]>(await tempFile('random-out.yaml', out));
    expect(after.data).toEqual(before.data);
  });

  it.skipIf(!hasKubectl)('values the CLI writes anew are read by kubectl as those values (oracle: kubectl)', async () => {
    const object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: randomValues, keys: Object.fromEntries(randomValues.map((v) => [String(v), v])) };
    const text = new Document(object, KUBECTL_YAML).toString({ lineWidth: 0 });
    const [read] = kubectlReads<[{ data: unknown[]; keys: unknown }]>(await tempFile('written.yaml', text));
    expect(read.data).toEqual(JSON.parse(JSON.stringify(randomValues)));
    expect(read.keys).toEqual(JSON.parse(JSON.stringify(object.keys)));
  });

  it('passes comment-only documents through', async () => {
    const file = await tempFile('c.yaml', '# head\n---\n# only a comment\n---\nkind: ConfigMap\n');
    const { code, out, err } = await cli(runInject, ['-f', file]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/# only a comment\n---\nkind: ConfigMap\n$/);
  });

  it.each([
    ['!!set becomes a map of nulls, as kubectl reads it', 'items: !!set {a, b}', 0, /^items: !!set \{ a, b \}$/m],
    ['!!binary that is not UTF-8 text is refused', 'b: !!binary /w==', 1, /x\.yaml: document 2: !!binary value is not UTF-8 text/],
    ['a local tag is refused', 'v: !custom 12', 1, /x\.yaml: document 2: tag !custom is not supported/],
    ['.inf has no JSON form', 'v: .inf', 1, /x\.yaml: document 2: \.inf has no JSON form/],
    ['two keys meaning the same to kubectl are refused', 'yes: 1\n"true": 2', 1, /x\.yaml: document 2: two keys both mean "true"/],
  ])('%s', async (_what, extra, code, message) => {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: nginx}]}\n';
    const file = await tempFile('x.yaml', `kind: ConfigMap\n---\n${pod}${extra}\n`);
    const result = await cli(runInject, ['-f', file]);
    expect(result.code).toBe(code);
    expect(code === 0 ? result.out : result.err).toMatch(message);
    if (code !== 0) expect(result.out).toBe('');
  });
});
