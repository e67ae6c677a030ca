/**
 * Pod Security admission runs after mutating webhooks: an admissible pod must stay admissible once injected,
 * at every level, and the sidecar must be the strongest that level admits.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/defaults.js';
import { computeInjection } from '../../src/core/engine.js';
import { POD_SECURITY_LEVELS } from '../../src/core/types.js';
import { loadPodFixture, podFixtureFiles } from '../support/fixtures.js';
import { applyToCopy, sidecarOf } from '../support/pod-assertions.js';
import { podSecurityViolations } from '../support/pod-security-standards.js';

const context = { operation: 'CREATE', namespace: 'team-a', injectorNamespace: 'sidecar-injector' } as const;

describe('the Pod Security checker itself', () => {
  it.each([
    ['a privileged container', { containers: [{ name: 'a', image: 'x', securityContext: { privileged: true } }] }, 'baseline'],
    ['SYS_PTRACE', { containers: [{ name: 'a', image: 'x', securityContext: { capabilities: { add: ['SYS_PTRACE'] } } }] }, 'baseline'],
    ['hostPID', { hostPID: true, containers: [{ name: 'a', image: 'x' }] }, 'baseline'],
    ['a hostPath volume', { volumes: [{ name: 'h', hostPath: { path: '/' } }], containers: [{ name: 'a', image: 'x' }] }, 'baseline'],
    ['a root container', { containers: [{ name: 'a', image: 'x' }] }, 'restricted'],
  ] as const)('rejects %s at %s', (_what, spec, level) => {
    expect(podSecurityViolations({ spec: structuredClone(spec) as never }, level)).not.toEqual([]);
  });
});

describe('injection keeps admissible pods admissible', () => {
  const cases = podFixtureFiles().flatMap((file) => POD_SECURITY_LEVELS.map((level) => [file, level] as const));

  it.each(cases)('%s at %s', (file, level) => {
    const pod = loadPodFixture(file);
    const admissibleBefore = podSecurityViolations(pod, level).length === 0;
    const result = computeInjection(pod, defaultConfig(), { ...context, podSecurityLevel: level });
    if (result.decision.action !== 'inject' && result.decision.action !== 'update') return;
    const patched = applyToCopy(pod, result.patch);
    if (admissibleBefore) expect(podSecurityViolations(patched, level)).toEqual([]);
    if (result.decision.action === 'inject') {
      // The strongest sidecar the level admits: SYS_PTRACE exactly where Pod Security allows it.
      const capabilities = sidecarOf(patched).securityContext?.capabilities;
      expect(capabilities?.add?.includes('SYS_PTRACE') ?? false).toBe(level === 'privileged');
    }
  });

  it('covers fixtures that are restricted-compliant, so the restricted case is exercised', () => {
    const compliant = podFixtureFiles().filter((f) => podSecurityViolations(loadPodFixture(f), 'restricted').length === 0);
    expect(compliant.length).toBeGreaterThan(0);
  });
});
