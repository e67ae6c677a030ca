/**
 * Table-driven engine tests over realistic pods (test/fixtures/pods). Every injected pod is checked by applying
 * the patch with fast-json-patch and asserting on the result, never on the patch text alone.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { DEFAULT_CONTAINER_ANNOTATION } from '../../src/core/labels.js';
import type { InjectionContext, PodObject } from '../../src/core/types.js';
import { uninjectPod } from '../../src/core/uninject.js';
import { loadPodFixture, podFixtureFiles } from '../support/fixtures.js';
import { applyToCopy, expectInjectedInvariants, normalise, sidecarOf, statusOf } from '../support/pod-assertions.js';
import { engineCases } from './engine-cases.js';

const baseContext: InjectionContext = { operation: 'CREATE', namespace: 'team-a', injectorNamespace: 'sidecar-injector' };

function expectWarnings(warnings: string[], patterns: RegExp[] | undefined): void {
  for (const pattern of patterns ?? []) {
    expect(warnings.some((w) => pattern.test(w)), `a warning matching ${pattern} in ${JSON.stringify(warnings)}`).toBe(true);
  }
}

describe('engine over pod fixtures', () => {
  it('has a case for every fixture file and at least 25 fixtures', () => {
    const files = podFixtureFiles();
    expect(files.length).toBeGreaterThanOrEqual(25);
    const covered = new Set(engineCases.map((c) => c.fixture));
    expect(files.filter((f) => !covered.has(f))).toEqual([]);
  });

  it.each(engineCases.map((c) => [c.name, c] as const))('%s', (_name, testCase) => {
    const pod = loadPodFixture(testCase.fixture);
    const context: InjectionContext = { ...baseContext, ...testCase.context };
    const config = defaultConfig();
    const result = computeInjection(pod, config, context);
    const { expect: expected } = testCase;
    expect(result.decision.action, JSON.stringify(result.decision)).toBe(expected.action);
    expectWarnings(result.warnings, 'warnings' in expected ? expected.warnings : undefined);
    for (const warning of result.warnings) expect(warning).not.toMatch(/[\r\n]/);

    if (expected.action === 'skip') {
      expect(result.decision).toEqual({ action: 'skip', reason: expected.reason });
      expect(result.patch).toEqual([]);
      return;
    }

    const patched = applyToCopy(pod, result.patch);
    const status = expectInjectedInvariants(patched);
    expect(status).toEqual(result.status);
    // The same input always gives the same patch: no timestamps, no random names.
    expect(computeInjection(structuredClone(pod), config, context).patch).toEqual(result.patch);
    // Reinvocation of the result is a no-op.
    const again = computeInjection(patched, config, context);
    expect(again.decision).toEqual({ action: 'skip', reason: 'already-injected' });
    expect(again.patch).toEqual([]);

    if (expected.action === 'update') {
      const before = statusOf(pod);
      expect(status.mounted).toEqual([...before.mounted, ...expected.mountedAdded]);
      expect(result.patch.every((op) => op.op === 'add')).toBe(true);
      return;
    }

    if (expected.mode) expect(status.mode).toBe(expected.mode);
    if (status.mode === 'classic') expect(patched.spec?.containers.at(-1)?.name, 'classic sidecar appended last').toBe('sidecar');
    expect(status.skipped.map((s) => s.container)).toEqual(expected.skippedContainers ?? []);
    if (expected.volumeCreated !== undefined) expect(status.volume.created).toBe(expected.volumeCreated);
    if (expected.shareProcessNamespace !== undefined) {
      expect(patched.spec?.shareProcessNamespace === true).toBe(expected.shareProcessNamespace);
    }
    if (pod.spec?.hostPID) expect(patched.spec?.shareProcessNamespace).not.toBe(true);
    const sidecar = sidecarOf(patched);
    if (expected.sidecarResources === false) expect(sidecar.resources).toBeUndefined();
    else expect(sidecar.resources?.requests).toEqual(sidecar.resources?.limits);
    const presetDefault = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
    expect(patched.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION]).toBe(presetDefault ?? pod.spec?.containers[0]?.name);

    // Nothing of the user's pod is lost or changed: taking away what the status records gives the original back.
    const removed = uninjectPod(patched);
    expect(removed.outcome).toBe('removed');
    if (removed.outcome === 'removed') expect(normalise(removed.pod)).toEqual(normalise(pod));
  });
});

describe('sidecar per Pod Security level', () => {
  const pod = (): PodObject => loadPodFixture('nginx-single.yaml');
  const levels = [
    { level: 'privileged', securityContext: { capabilities: { add: ['SYS_PTRACE'] } }, reduced: [] },
    { level: 'baseline', securityContext: undefined, reduced: ['SYS_PTRACE'] },
    {
      level: 'restricted',
      securityContext: {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        runAsNonRoot: true,
        runAsUser: 65534,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      reduced: ['SYS_PTRACE', 'root'],
    },
  ] as const;

  it.each(levels)('$level', ({ level, securityContext, reduced }) => {
    const original = pod();
    delete original.spec?.securityContext;
    const result = computeInjection(original, defaultConfig(), { ...baseContext, podSecurityLevel: level });
    expect(result.decision.action).toBe('inject');
    const sidecar = sidecarOf(applyToCopy(original, result.patch));
    expect(sidecar.securityContext).toEqual(securityContext);
    expect(result.status?.reduced).toEqual(reduced);
    expect(result.warnings.some((w) => w.includes(level))).toBe(reduced.length > 0);
  });

  it('uses the configured default level when the namespace has none', () => {
    const config = defaultConfig();
    config.podSecurity.defaultLevel = 'baseline';
    const result = computeInjection(pod(), config, baseContext);
    expect(result.status?.podSecurityLevel).toBe('baseline');
    expect(sidecarOf(applyToCopy(pod(), result.patch)).securityContext?.capabilities).toBeUndefined();
  });

  it('names a non-root user when the pod demands runAsNonRoot without a user', () => {
    const original = pod();
    original.spec!.securityContext = { runAsNonRoot: true };
    const result = computeInjection(original, defaultConfig(), baseContext);
    const sidecar = sidecarOf(applyToCopy(original, result.patch));
    expect(sidecar.securityContext?.runAsUser).toBe(65534);
    expect(sidecar.securityContext?.capabilities?.add).toEqual(['SYS_PTRACE']);
  });
});
