/**
 * The kube-apiserver captures replayed to a real server over real TLS, with the API server's headers and
 * `?timeout=10s`. Every patch is decoded, applied the way the API server applies it, and the pod is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_ANNOTATION } from '../../src/core/labels.js';
import { defaultConfig } from '../../src/core/defaults.js';
import type { InjectionContext, InjectionResult, PatchOperation, PodObject } from '../../src/core/types.js';
import { buildApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/http/metrics.js';
import { applyToCopy, expectInjectedInvariants } from '../support/pod-assertions.js';
import { APISERVER_HEADERS, decodePatch, LogSink, startTestServer, type AdmissionAnswer, type TestServer } from './helpers.js';
import { loadFixture, loadFixtures, type AdmissionReviewJson } from '../support/fixtures.js';

const fixtures = loadFixtures();

function answerOf(reply: { status: number; body: string }): AdmissionAnswer {
  expect(reply.status).toBe(200);
  expect(reply.body).not.toContain('\n');
  return JSON.parse(reply.body) as AdmissionAnswer;
}

function withDryRun(review: AdmissionReviewJson, dryRun: boolean): AdmissionReviewJson {
  const copy = structuredClone(review);
  copy.request.dryRun = dryRun;
  const options = copy.request.options as { dryRun?: string[] } | undefined;
  if (options !== undefined) {
    if (dryRun) options.dryRun = ['All'];
    else delete options.dryRun;
  }
  return copy;
}

/** What the README promises of an injected pod, checked on the pod itself. */
function expectInjectedPod(pod: PodObject): void {
  expectInjectedInvariants(pod);
  const sidecars = (pod.spec?.containers ?? []).filter((c) => c.name === 'sidecar');
  expect(sidecars).toHaveLength(1);
  const sidecar = sidecars[0]!;
  expect(sidecar.securityContext?.capabilities?.add).toContain('SYS_PTRACE');
  expect(sidecar.stdin).toBe(true);
  expect(sidecar.tty).toBe(true);
  expect((pod.spec?.volumes ?? []).filter((v) => v.name === 'shared-data')).toHaveLength(1);
  for (const app of (pod.spec?.containers ?? []).filter((c) => c.name !== 'sidecar')) {
    expect(app.volumeMounts?.filter((m) => m.name === 'shared-data')).toHaveLength(1);
  }
  expect(pod.spec?.shareProcessNamespace).toBe(true);
  expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeTypeOf('string');
}

function isRunToCompletion(review: AdmissionReviewJson): boolean {
  const spec = review.request.object.spec as { restartPolicy?: string } | undefined;
  return spec?.restartPolicy === 'Never' || spec?.restartPolicy === 'OnFailure';
}

describe('admission over TLS, default configuration', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(fixtures)('$file: echoes uid and apiVersion and is allowed', async (fixture) => {
    const answer = answerOf(await server.send({ body: fixture.text }));
    expect(answer.apiVersion).toBe('admission.k8s.io/v1');
    expect(answer.kind).toBe('AdmissionReview');
    expect(answer.response.uid).toBe(fixture.review.request.uid);
    expect(answer.response.allowed).toBe(true);
    if (isRunToCompletion(fixture.review)) {
      // A classic sidecar never exits, so a run-to-completion pod is skipped (classicRunToCompletion: skip).
      expect(answer.response.patch).toBeUndefined();
      expect(answer.response.warnings?.length ?? 0).toBeGreaterThan(0);
    } else {
      expect(answer.response.patchType).toBe('JSONPatch');
      expectInjectedPod(applyToCopy(fixture.review.request.object, decodePatch(answer) as PatchOperation[]));
    }
    for (const warning of answer.response.warnings ?? []) {
      expect(warning).not.toMatch(/[\r\n]/);
      expect(warning.length).toBeLessThanOrEqual(120);
    }
  });

  it('the no-volumes pod gets a patch that creates /spec/volumes', async () => {
    const fixture = loadFixture('create-pod-no-volumes.json');
    expect(fixture.review.request.object.spec).not.toHaveProperty('volumes');
    const patch = decodePatch(answerOf(await server.send({ body: fixture.text }))) as PatchOperation[];
    expect(patch.some((op) => op.op === 'add' && op.path === '/spec/volumes')).toBe(true);
    expect(patch.some((op) => op.path === '/spec/volumes/-')).toBe(false);
    expectInjectedPod(applyToCopy(fixture.review.request.object, patch));
  });

  it('answers v1beta1 in v1beta1, with the same response', async () => {
    const fixture = loadFixture('create-pod.json');
    const v1 = answerOf(await server.send({ body: fixture.text }));
    const beta = answerOf(
      await server.send({ body: JSON.stringify({ ...fixture.review, apiVersion: 'admission.k8s.io/v1beta1' }) }),
    );
    expect(beta.apiVersion).toBe('admission.k8s.io/v1beta1');
    expect(beta.response).toEqual(v1.response);
  });

  it('a dry run gets exactly the answer of the same request for real', async () => {
    for (const fixture of fixtures) {
      const dry = await server.send({ body: JSON.stringify(withDryRun(fixture.review, true)) });
      const real = await server.send({ body: JSON.stringify(withDryRun(fixture.review, false)) });
      expect(dry.body, fixture.file).toBe(real.body);
    }
    // And the captured dry run itself.
    const captured = loadFixture('create-pod-dry-run.json');
    expect(captured.review.request.dryRun).toBe(true);
    const dry = await server.send({ body: captured.text });
    const real = await server.send({ body: JSON.stringify(withDryRun(captured.review, false)) });
    expect(dry.body).toBe(real.body);
  });

  it('an already injected pod sent again gets no patch (reinvocation)', async () => {
    const fixture = loadFixture('create-pod.json');
    const first = answerOf(await server.send({ body: fixture.text }));
    const patched = applyToCopy(fixture.review.request.object, decodePatch(first) as PatchOperation[]);
    const again = structuredClone(fixture.review);
    again.request.uid = 'a0000000-0000-4000-8000-000000000001';
    again.request.object = patched as Record<string, unknown>;
    const second = answerOf(await server.send({ body: JSON.stringify(again) }));
    expect(second.response.uid).toBe(again.request.uid);
    expect(second.response.allowed).toBe(true);
    expect(second.response.patch).toBeUndefined();
    expect(second.response.patchType).toBeUndefined();
  });

  it('accepts application/json with a charset and routes on the path only', async () => {
    const fixture = loadFixture('create-pod.json');
    const reply = await server.send({
      path: '/mutate?timeout=30s&x=1',
      headers: { ...APISERVER_HEADERS, 'content-type': 'application/json; charset=utf-8' },
      body: fixture.text,
    });
    expect(answerOf(reply).response.uid).toBe(fixture.review.request.uid);
  });

  it('never answers for a namespace that is always excluded', async () => {
    const review = structuredClone(loadFixture('create-pod.json').review);
    review.request.namespace = 'kube-system';
    const answer = answerOf(await server.send({ body: JSON.stringify(review) }));
    expect(answer.response.allowed).toBe(true);
    expect(answer.response.patch).toBeUndefined();
  });

  it('logs one line per admission, bound to uid, namespace and pod, without the pod itself', async () => {
    const fixture = loadFixture('create-pod.json');
    const before = server.logs.lines.length;
    await server.send({ body: fixture.text });
    await new Promise((r) => setImmediate(r));
    const lines = server.logs.lines.slice(before);
    const mine = lines.filter((line) => line.uid === fixture.review.request.uid);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ namespace: 'inject', pod: 'plain', decision: 'injected', reason: 'none' });
    expect(mine[0]!.durationMs).toBeTypeOf('number');
    const text = server.logs.raw.join('\n');
    for (const secret of ['kube-api-access', 'managedFields', 'terminationMessagePath', 'lab-admin']) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('admission over TLS, run-to-completion pods injected (classicRunToCompletion: inject)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { ...defaultConfig(), classicRunToCompletion: 'inject' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(fixtures)('$file: the patched pod has the sidecar, the volume, the mounts', async (fixture) => {
    const answer = answerOf(await server.send({ body: fixture.text }));
    expect(answer.response.uid).toBe(fixture.review.request.uid);
    expect(answer.response.allowed).toBe(true);
    expect(answer.response.patchType).toBe('JSONPatch');
    expectInjectedPod(applyToCopy(fixture.review.request.object, decodePatch(answer) as PatchOperation[]));
  });

  it('the captured dry run gets the same patch as its real twin', async () => {
    const captured = loadFixture('create-pod-dry-run.json');
    const dry = answerOf(await server.send({ body: captured.text }));
    const real = answerOf(await server.send({ body: JSON.stringify(withDryRun(captured.review, false)) }));
    expect(dry.response.patch).toBeDefined();
    expect(dry).toEqual(real);
  });
});

describe('our own faults', () => {
  const fixture = loadFixture('create-pod.json');

  function faultyApp(options: {
    engine?: (pod: unknown, config: unknown, context: InjectionContext) => InjectionResult;
    failure?: 'open' | 'closed';
    clusterFacts?: () => Promise<Record<string, never>>;
  }) {
    const metrics = createMetrics({ processMetrics: false });
    const logs = new LogSink();
    const app = buildApp({
      admission: {
        config: () => ({ ...defaultConfig(), failure: options.failure ?? 'open' }),
        injectorNamespace: 'sidecar-injector',
        clusterFacts: options.clusterFacts ?? (() => ({})),
        ...(options.engine === undefined ? {} : { engine: options.engine }),
      },
      metrics,
      ready: () => true,
      logger: { level: 'info', stream: logs.stream },
    });
    return { app, metrics, logs };
  }

  const throwing = (): InjectionResult => {
    throw new Error('boom');
  };
  const erroring = (): InjectionResult => ({
    decision: { action: 'error', reason: 'pre-flight check failed: two sidecars' },
    patch: [{ op: 'add', path: '/spec/x', value: 1 }],
    warnings: [],
  });

  it.each([
    ['the engine throws', { engine: throwing }, 'engine-exception'],
    ['the engine returns an error decision', { engine: erroring }, 'engine-error'],
    ['the cluster facts are unavailable', { clusterFacts: () => Promise.reject(new Error('no cache')) }, 'cluster-facts-unavailable'],
  ] as const)('%s: allowed without a patch, warned, logged, counted', async (_name, options, reason) => {
    const { app, metrics, logs } = faultyApp(options);
    try {
      const reply = await app.inject({
        method: 'POST',
        url: '/mutate?timeout=10s',
        headers: { ...APISERVER_HEADERS },
        payload: fixture.text,
      });
      expect(reply.statusCode).toBe(200);
      const answer = reply.json<AdmissionAnswer>();
      expect(answer.response).toMatchObject({ uid: fixture.review.request.uid, allowed: true });
      expect(answer.response.patch).toBeUndefined();
      expect(answer.response.patchType).toBeUndefined();
      expect(answer.response.warnings?.[0]).toMatch(/internal error/);
      const text = await metrics.registry.metrics();
      expect(text).toContain(`sidecar_injector_admissions_total{decision="error",reason="${reason}"} 1`);
      await new Promise((r) => setImmediate(r));
      const line = logs.lines.find((l) => l.uid === fixture.review.request.uid);
      expect(line).toMatchObject({ decision: 'error', reason, level: 50 });
    } finally {
      await app.close();
    }
  });

  it('with failure: closed, our fault is a denial with status 500', async () => {
    for (const engine of [throwing, erroring]) {
      const { app } = faultyApp({ engine, failure: 'closed' });
      try {
        const reply = await app.inject({
          method: 'POST',
          url: '/mutate',
          headers: { 'content-type': 'application/json' },
          payload: fixture.text,
        });
        expect(reply.statusCode).toBe(200);
        const answer = reply.json<AdmissionAnswer>();
        expect(answer.response.uid).toBe(fixture.review.request.uid);
        expect(answer.response.allowed).toBe(false);
        expect(answer.response.status?.code).toBe(500);
        expect(answer.response.status?.message).toMatch(/internal error/);
        expect(answer.response.patch).toBeUndefined();
        expect(reply.body).not.toMatch(/\n|at .*\(.*:\d+:\d+\)/);
      } finally {
        await app.close();
      }
    }
  });

  it('the engine gets request.namespace, or the pod namespace when the request has none', async () => {
    const seen: InjectionContext[] = [];
    const recording = (_pod: unknown, _config: unknown, context: InjectionContext): InjectionResult => {
      seen.push(context);
      return { decision: { action: 'skip', reason: 'not-a-pod' }, patch: [], warnings: [] };
    };
    const { app } = faultyApp({ engine: recording });
    try {
      await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: fixture.text });
      const noNamespace = structuredClone(fixture.review) as AdmissionReviewJson & { request: { namespace?: string } };
      delete noNamespace.request.namespace;
      await app.inject({
        method: 'POST',
        url: '/mutate',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(noNamespace),
      });
      expect(seen.map((c) => [c.namespace, c.operation, c.injectorNamespace])).toEqual([
        ['inject', 'CREATE', 'sidecar-injector'],
        ['inject', 'CREATE', 'sidecar-injector'],
      ]);
    } finally {
      await app.close();
    }
  });

  it('trims warnings to single lines of at most 120 characters, at most 10', async () => {
    const chatty = (): InjectionResult => ({
      decision: { action: 'skip', reason: 'name-clash' },
      patch: [],
      warnings: ['line one\nline two', 'x'.repeat(300), ...Array.from({ length: 20 }, (_, i) => `warning ${i}`)],
    });
    const { app } = faultyApp({ engine: chatty });
    try {
      const reply = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: fixture.text });
      const warnings = reply.json<AdmissionAnswer>().response.warnings ?? [];
      expect(warnings).toHaveLength(10);
      expect(warnings[0]).toBe('line one line two');
      expect(warnings[1]!.length).toBe(120);
      expect(warnings[9]).toMatch(/more warnings/);
      for (const w of warnings) expect(w).not.toMatch(/[\r\n]/);
    } finally {
      await app.close();
    }
  });
});
