/**
 * Fuzzing the engine (`computeInjection`) with `request.object`-like values: real pods (the kube-apiserver captures
 * and the pod fixtures) with random sub-trees replaced by values of the wrong type, prototype keys, deep nesting,
 * and arbitrary JSON. The engine must never throw; whatever it decides, its result must be serialisable; it must
 * not touch its input; an inject/update patch must apply (fast-json-patch, validating every path, as the API
 * server does) and give one sidecar and a readable status; and running it again on the patched pod never injects
 * twice.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import type { InjectionContext, InjectionResult, InjectorConfig } from '../../src/core/types.js';
import { loadFixture, loadFixtures, loadPodFixture, podFixtureFiles } from '../support/fixtures.js';
import {
  adversarialValue,
  applyInPlace,
  applyMutations,
  Deep,
  expectPrototypesClean,
  fcParameters,
  insertProtoKey,
  jsonEqual,
  mutationsArbitrary,
  protoInsertionArbitrary,
  prototypeSnapshot,
  serialise,
  setAt,
  allPaths,
  share,
  STATUS_ANNOTATION_KEY,
  Tally,
  timeoutFor,
  type Value,
} from './fuzz-support.js';

const tally = new Tally();
const prototypesBefore = prototypeSnapshot();

/** Base pods as JSON text: every capture's `request.object` and every pod fixture. */
const BASE_PODS: string[] = [
  ...loadFixtures().map((fixture) => JSON.stringify(fixture.review.request.object)),
  ...podFixtureFiles().map((file) => JSON.stringify(loadPodFixture(file))),
];

const ACTIONS = ['inject', 'update', 'skip', 'error'] as const;

const contextArbitrary: fc.Arbitrary<InjectionContext> = fc.record(
  {
    operation: fc.oneof({ weight: 8, arbitrary: fc.constant('CREATE') }, { weight: 1, arbitrary: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT', '', 'create') }),
    namespace: fc.oneof(
      { weight: 8, arbitrary: fc.constant('inject') },
      { weight: 2, arbitrary: fc.constantFrom('default', 'kube-system', 'sidecar-injector', '', 'x'.repeat(300), '__proto__') },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    ),
    injectorNamespace: fc.constant('sidecar-injector'),
    // Mostly as in the webhook without cluster access (undefined) or an opted-in namespace: skips teach little.
    namespaceLabels: fc.oneof(
      { weight: 4, arbitrary: fc.constant<Record<string, string> | undefined>(undefined) },
      { weight: 2, arbitrary: fc.constant({ 'sidecar-injection': 'enabled' }) },
      { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('sidecar-injection', 'pod-security.kubernetes.io/enforce', 'x'), fc.constantFrom('enabled', 'disabled', 'restricted', ''), { maxKeys: 2 }) },
    ),
    podSecurityLevel: fc.constantFrom('privileged', 'baseline', 'restricted'),
    apiServerVersion: fc.constantFrom('1.28', '1.29', '1.33', '1.34', 'v1.33.1', '1.33+', 'garbage', '', '1.', '99999999999999999999.1'),
    minKubeletVersion: fc.constantFrom('1.28', '1.33', '1.35', 'v1.33.0-eks', 'x', ''),
  },
  { requiredKeys: ['operation', 'namespace', 'injectorNamespace'] },
);

const configArbitrary: fc.Arbitrary<InjectorConfig> = fc
  .record({
    nativeSidecar: fc.constantFrom('auto', 'always', 'never'),
    classicRunToCompletion: fc.constantFrom('skip', 'inject'),
    shareProcessNamespace: fc.boolean(),
    defaultLevel: fc.constantFrom('privileged', 'baseline', 'restricted'),
    appMountPath: fc.constantFrom('/pod-data', '/app', '/pod-data/'),
  })
  .map((c) => {
    const config = defaultConfig();
    return {
      ...config,
      nativeSidecar: c.nativeSidecar,
      classicRunToCompletion: c.classicRunToCompletion,
      shareProcessNamespace: c.shareProcessNamespace,
      podSecurity: { defaultLevel: c.defaultLevel },
      appMountPath: c.appMountPath,
    };
  });

interface Checked {
  result: InjectionResult;
  applied?: Record<string, unknown>;
}

function run(input: unknown, config: InjectorConfig, context: InjectionContext, label: string): InjectionResult {
  try {
    return computeInjection(input, config, context);
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new Error(`computeInjection threw on ${label}: ${message}`);
  }
}

/** Everything a result must satisfy; returns the patched pod for inject/update. */
function checkResult(text: string, config: InjectorConfig, context: InjectionContext): Checked {
  const input = JSON.parse(text) as unknown;
  const pristine = JSON.parse(text) as unknown;
  const result = run(input, config, context, 'the generated pod');

  expect(ACTIONS).toContain(result.decision.action);
  // `error` means the engine built a patch its own pre-flight check refused: a bug, whatever the input.
  expect(result.decision, 'no pre-flight failure').not.toMatchObject({ action: 'error' });
  expect(Array.isArray(result.patch)).toBe(true);
  expect(Array.isArray(result.warnings)).toBe(true);
  for (const warning of result.warnings) expect(warning).toBeTypeOf('string');
  // What the webhook does with a result (src/admission/respond.ts): it must not throw there either.
  expect(() => JSON.stringify(result.patch)).not.toThrow();
  expect(jsonEqual(input, pristine), 'the engine leaves its input untouched').toBe(true);

  if (result.decision.action === 'skip' || result.decision.action === 'error') {
    expect(result.patch).toEqual([]);
    return { result };
  }
  expect(result.patch.length).toBeGreaterThan(0);
  const applied = applyInPlace(JSON.parse(text), result.patch) as Record<string, unknown>;
  const spec = applied.spec as { containers?: { name?: unknown }[]; initContainers?: { name?: unknown }[] };
  const sidecars = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].filter((c) => c?.name === config.sidecar.name);
  expect(sidecars, 'exactly one sidecar after the patch').toHaveLength(1);
  const annotations = (applied.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations;
  expect(annotations?.[STATUS_ANNOTATION_KEY], 'status annotation').toBeTypeOf('string');
  expect(() => JSON.parse(annotations?.[STATUS_ANNOTATION_KEY] as string)).not.toThrow();
  return { result, applied };
}

/** Reinvocation on the patched pod: never a second injection, and an update's patch applies too. */
function checkReinvocation(applied: Record<string, unknown>, config: InjectorConfig, context: InjectionContext): string {
  const again = run(applied, config, context, 'the patched pod');
  expect(again.decision.action, 'never injects twice').not.toBe('inject');
  // Applied to the same object, after the engine is done with it (a copy would need JSON.stringify: too deep).
  if (again.decision.action === 'update') applyInPlace(applied, again.patch);
  else expect(again.patch).toEqual([]);
  return again.decision.action;
}

function outcome(result: InjectionResult): string {
  return result.decision.action === 'skip' ? `skip:${result.decision.reason}` : result.decision.action;
}

describe('fuzz: engine', () => {
  afterAll(() => {
    expectPrototypesClean(prototypesBefore);
    console.log(tally.report('engine'));
  });

  const podRuns = share(0.25, 300);
  it(`mutated real pods: never throws, results serialisable, input untouched, patches apply (${podRuns} cases)`, () => {
    const podValue = fc.oneof(
      {
        weight: 12,
        arbitrary: fc
          .tuple(
            fc.constantFrom(...BASE_PODS),
            mutationsArbitrary({}, 3),
            fc.option(protoInsertionArbitrary(), { freq: 6, nil: undefined }),
          )
          .map(([base, mutations, proto]) => {
            let root = applyMutations(JSON.parse(base) as Value, mutations);
            if (proto !== undefined) root = insertProtoKey(root, proto);
            return serialise(root);
          }),
      },
      { weight: 1, arbitrary: adversarialValue().map(serialise) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    );
    fc.assert(
      fc.property(podValue, configArbitrary, contextArbitrary, (text, config, context) => {
        const { result, applied } = checkResult(text, config, context);
        const reinvoked = applied === undefined ? '' : `→${checkReinvocation(applied, config, context)}`;
        tally.add('mutated pods', `${outcome(result)}${reinvoked}`);
        expectPrototypesClean(prototypesBefore);
      }),
      fcParameters(podRuns),
    );
  }, timeoutFor(podRuns, 2));

  const hugeRuns = share(0.01, 20);
  it(`deep nesting (to 100k levels), 1 MiB strings and wide arrays in real pods (${hugeRuns} cases)`, () => {
    const deepPod = fc
      .tuple(
        fc.constantFrom(...BASE_PODS),
        fc.nat(),
        fc.oneof(
          fc.constantFrom(1_000, 10_000, 100_000).chain((d) => fc.constantFrom<Value>(new Deep(d, 'array'), new Deep(d, 'object'))),
          fc.constant<Value>('w'.repeat(1024 * 1024)),
          fc.constant<Value>(Array.from({ length: 5_000 }, (_, i) => ({ name: `c${i}`, volumeMounts: [{ name: 'shared-data', mountPath: `/m${i}` }] }))),
        ),
      )
      .map(([base, pick, value]) => {
        const root = JSON.parse(base) as Value;
        const paths = allPaths(root);
        return serialise(setAt(root, paths[pick % paths.length]!, value));
      });
    fc.assert(
      fc.property(deepPod, configArbitrary, contextArbitrary, (text, config, context) => {
        const { result, applied } = checkResult(text, config, context);
        if (applied !== undefined) checkReinvocation(applied, config, context);
        tally.add('deep and huge pods', outcome(result));
      }),
      fcParameters(hugeRuns),
    );
  }, timeoutFor(hugeRuns, 300));

  // The API server calls mutating webhooks before it validates the pod, so malformed mounts can reach us.
  it.each([
    ['mountPath absent', { name: 'x' }],
    ['mountPath null', { name: 'x', mountPath: null }],
    ['name {"toString":null} at the app mount path', { name: { toString: null }, mountPath: '/pod-data' }],
  ])('an app container mount with %s never makes computeInjection throw', (_name, mount) => {
    const pod = structuredClone(loadFixture('create-pod.json').review.request.object) as { spec: { containers: { volumeMounts?: unknown[] }[] } };
    pod.spec.containers[0]!.volumeMounts = [mount];
    const context: InjectionContext = { operation: 'CREATE', namespace: 'inject', injectorNamespace: 'sidecar-injector' };
    expect(() => computeInjection(pod, defaultConfig(), context)).not.toThrow();
  });
});
