import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPatch as applyTextPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { runInject, runUninject } from '../../src/cli/inject.js';
import type { PodObject } from '../../src/core/types.js';
import { repoRoot } from '../support/fixtures.js';
import { captureIo } from '../support/io.js';
import { expectInjectedInvariants, normalise, sidecarOf } from '../support/pod-assertions.js';

const manifestDir = join(repoRoot, 'test', 'fixtures', 'manifests');
const workloadsFile = join(manifestDir, 'workloads.yaml');
const workloadsText = readFileSync(workloadsFile, 'utf8');

type Manifest = Record<string, unknown> & { kind: string; metadata: { name: string }; spec?: Record<string, unknown> };

function documents(text: string): Manifest[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Manifest);
}

function templateOf(object: Manifest): PodObject {
  const spec = object.spec as { template?: PodObject; jobTemplate?: { spec: { template: PodObject } } };
  return object.kind === 'CronJob' ? spec.jobTemplate!.spec.template : spec.template!;
}

async function inject(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(stdin);
  const code = await runInject(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe('sidecar-injector inject', () => {
  it('injects every pod template, passes other kinds through, keeps document order', async () => {
    const { code, out, err } = await inject(['-f', workloadsFile]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const before = documents(workloadsText);
    const after = documents(out);
    expect(after.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(before.map((d) => `${d.kind}/${d.metadata.name}`));
    const injectedKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController'];
    after.forEach((doc, index) => {
      if (injectedKinds.includes(doc.kind)) {
        const template = templateOf(doc);
        expectInjectedInvariants(template);
        // Everything outside the template is untouched.
        expect({ ...doc, spec: { ...doc.spec, template: undefined } }).toEqual({ ...before[index], spec: { ...before[index]!.spec, template: undefined } });
      } else {
        // ConfigMap, Service, and Job/CronJob (run-to-completion, classic mode) stay as they were.
        expect(doc).toEqual(before[index]);
      }
    });
    expect(out.split('---\n')[0]).toBe(workloadsText.split('---\n')[0]);
  });

  it('escapes annotation keys with ~ and / and keeps them', async () => {
    const { out } = await inject(['-f', workloadsFile]);
    const statefulSet = documents(out).find((d) => d.kind === 'StatefulSet')!;
    expect(templateOf(statefulSet).metadata?.annotations?.['example.com/owner~team']).toBe('data/platform');
  });

  it('injects Jobs and CronJobs as native sidecars on a 1.33 cluster', async () => {
    const { out } = await inject(['-f', workloadsFile, '--kubernetes-version', 'v1.33.1']);
    for (const doc of documents(out).filter((d) => d.kind === 'Job' || d.kind === 'CronJob')) {
      const status = expectInjectedInvariants(templateOf(doc));
      expect(status.mode).toBe('native');
    }
  });

  it('--explain tells each object’s decision and warnings', async () => {
    const { code, out } = await inject(['-f', workloadsFile, '--explain']);
    expect(code).toBe(0);
    expect(out).toMatch(/^document 2, Deployment web: injected \(classic sidecar, Pod Security privileged, mounted: nginx\)$/m);
    expect(out).toMatch(/^document 7, Job migrate: skipped: run-to-completion$/m);
    expect(out).toMatch(/^ {2}warning: .*Job/m);
    expect(out).not.toMatch(/ConfigMap|Service/);
  });

  it('--diff prints a unified diff that turns the input into the output', async () => {
    const { out: injected } = await inject(['-f', workloadsFile]);
    const { code, out: diff } = await inject(['-f', workloadsFile, '--diff']);
    expect(code).toBe(0);
    expect(diff).toMatch(/^@@ /m);
    expect(diff).toMatch(/^\+\s+- name: sidecar$/m);
    expect(applyTextPatch(workloadsText, diff)).toBe(injected);
  });

  it('reads standard input and honours Pod Security and namespace labels', async () => {
    const restricted = await inject(['--pod-security-level', 'restricted'], workloadsText);
    const deployment = documents(restricted.out).find((d) => d.kind === 'Deployment')!;
    expect(sidecarOf(templateOf(deployment)).securityContext?.capabilities).toEqual({ drop: ['ALL'] });

    const disabled = await inject(['--namespace-label', 'sidecar-injection=disabled'], workloadsText);
    expect(documents(disabled.out)).toEqual(documents(workloadsText));
  });

  it('handles a JSON List: injects pods, honours opt-out, keeps JSON', async () => {
    const { code, out } = await inject(['-f', join(manifestDir, 'pods.json')]);
    expect(code).toBe(0);
    const list = JSON.parse(out) as { items: Manifest[] };
    const source = JSON.parse(readFileSync(join(manifestDir, 'pods.json'), 'utf8')) as { items: Manifest[] };
    expectInjectedInvariants(list.items[0] as PodObject);
    expect(list.items[1]).toEqual(source.items[1]);
    expect(list.items[2]).toEqual(source.items[2]);
  });

  it('uses a configuration file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inject-config-'));
    await writeFile(join(dir, 'config.yaml'), 'sidecar: { name: debug }\nappMountPath: /shared\n');
    const { out } = await inject(['-f', join(manifestDir, 'pods.json'), '--config', join(dir, 'config.yaml')]);
    const pod = (JSON.parse(out) as { items: PodObject[] }).items[0]!;
    expectInjectedInvariants(pod, 'debug');
    expect(pod.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'shared-data', mountPath: '/shared' }]);
  });

  it.each([
    ['malformed YAML names the document', 'kind: ConfigMap\n---\nkind: Pod\n---\nkind: [unclosed\n', 1, /<stdin>: document 3: /],
    ['malformed JSON', '{"kind": "Pod",', 1, /<stdin>: document 1: not valid JSON/],
  ])('%s', async (_what, stdin, code, message) => {
    const result = await inject([], stdin);
    expect(result.code).toBe(code);
    expect(result.err).toMatch(message);
    expect(result.err.trim().split('\n')).toHaveLength(1);
    expect(result.out).toBe('');
  });

  it.each([
    [['-f', '/nonexistent/pods.yaml'], 1, /cannot read \/nonexistent\/pods.yaml \(ENOENT\)/],
    [['--bogus'], 2, /Unknown option '--bogus'/],
    [['--pod-security-level', 'strict'], 2, /--pod-security-level must be one of/],
    [['--namespace-label', 'novalue'], 2, /KEY=VALUE/],
    [['--kubernetes-version', 'latest'], 2, /--kubernetes-version expects a version/],
    [['--config', '/nonexistent/config.yaml'], 1, /configuration \/nonexistent\/config.yaml: cannot read/],
  ])('%j exits %i', async (args, code, message) => {
    const result = await inject(args, workloadsText);
    expect(result.code).toBe(code);
    expect(result.err).toMatch(message);
  });
});

describe('sidecar-injector uninject', () => {
  it('removes exactly what inject added, for every document', async () => {
    const { out: injected } = await inject(['-f', workloadsFile, '--kubernetes-version', '1.33']);
    const io = captureIo(injected);
    expect(await runUninject([], io)).toBe(0);
    expect(documents(io.out()).map(normalise)).toEqual(documents(workloadsText).map(normalise));
  });

  it('leaves pods that were never injected alone and explains', async () => {
    const io = captureIo(workloadsText);
    expect(await runUninject(['--explain'], io)).toBe(0);
    expect(io.out()).toMatch(/^document 2, Deployment web: not injected$/m);
  });

  it('refuses a malformed status annotation without touching the pod', async () => {
    const pod = parse(`
apiVersion: v1
kind: Pod
metadata:
  name: broken
  annotations:
    sidecar-injector.io/status: "{not json"
spec:
  containers: [{ name: app, image: nginx:1.27.3 }, { name: sidecar, image: busybox:1.37.0 }]
`) as PodObject;
    const io = captureIo(JSON.stringify(pod));
    expect(await runUninject(['--explain'], io)).toBe(0);
    expect(io.out()).toMatch(/left unchanged: status annotation is not JSON/);
  });
});

describe('inject and uninject flags', () => {
  it.each([
    { name: 'inject, an unknown flag', run: runInject, argv: ['--bogus'], error: "sidecar-injector inject: Unknown option '--bogus'" },
    { name: 'inject, a bad label', run: runInject, argv: ['--namespace-label', 'nolabel'], error: 'sidecar-injector inject: --namespace-label expects KEY=VALUE, got "nolabel"' },
    { name: 'uninject, a positional argument', run: runUninject, argv: ['x'], error: "sidecar-injector uninject: Unexpected argument 'x'" },
  ])('$name: exit 2, one line naming the subcommand, then the usage', async ({ run, argv, error }) => {
    const io = captureIo('');
    expect(await run(argv, io)).toBe(2);
    expect(io.out()).toBe('');
    const [first, second, third] = io.err().split('\n');
    expect(first).toBe(error);
    expect(second).toBe('');
    expect(third).toMatch(/^Usage: sidecar-injector (un)?inject /);
  });

  it.each([
    { run: runInject, argv: ['--help', '--namespace-label', 'not-checked-with-help'], usage: 'Usage: sidecar-injector inject ' },
    { run: runUninject, argv: ['--help'], usage: 'Usage: sidecar-injector uninject ' },
  ])('--help prints $usage on stdout and exits 0', async ({ run, argv, usage }) => {
    const io = captureIo('');
    expect(await run(argv, io)).toBe(0);
    expect(io.out().startsWith(usage)).toBe(true);
    expect(io.err()).toBe('');
  });
});
