import { describe, expect, it } from 'vitest';
import { DEFAULT_AUDIT, parseConfig } from '../../src/config/parse.js';
import { defaultConfig } from '../../src/core/defaults.js';

describe('parseConfig', () => {
  it('an empty file is the defaults', () => {
    expect(parseConfig('')).toEqual({ ok: true, config: { ...defaultConfig(), audit: DEFAULT_AUDIT } });
    expect(parseConfig('# nothing but a comment\n')).toEqual({ ok: true, config: { ...defaultConfig(), audit: DEFAULT_AUDIT } });
  });

  it('the audit keys: off and every 300 s by default; bounds and unknown keys are refused', () => {
    const on = parseConfig('audit:\n  missingSidecars: true\n  intervalSeconds: 120\n');
    expect(on.ok && on.config.audit).toEqual({ missingSidecars: true, intervalSeconds: 120 });
    expect(parseConfig('audit:\n  intervalSeconds: 10\n')).toEqual({ ok: false, error: 'audit.intervalSeconds: must be >= 60' });
    expect(parseConfig('audit:\n  pods: true\n')).toEqual({ ok: false, error: 'audit.pods: unknown key' });
  });

  it('a full file sets every key', () => {
    const result = parseConfig(`
sidecar:
  name: debug
  image: busybox:1.36.1
  command: [/bin/sh, -c]
  args: ["sleep infinity"]
  resources: { cpu: 50m, memory: 64Mi }
  mountPath: /debug
appMountPath: /shared
volume:
  name: scratch
  source: { emptyDir: { medium: Memory, sizeLimit: 64Mi } }
shareProcessNamespace: false
nativeSidecar: always
classicRunToCompletion: inject
excludedNamespaces: [batch, legacy]
allowedImages: ['^busybox:1\\.3[67]\\.\\d+$']
failure: closed
podSecurity: { defaultLevel: baseline }
audit: { missingSidecars: true, intervalSeconds: 600 }
`);
    expect(result).toEqual({
      ok: true,
      config: {
        sidecar: {
          name: 'debug',
          image: 'busybox:1.36.1',
          command: ['/bin/sh', '-c'],
          args: ['sleep infinity'],
          resources: { cpu: '50m', memory: '64Mi' },
          mountPath: '/debug',
        },
        appMountPath: '/shared',
        volume: { name: 'scratch', source: { emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } } },
        shareProcessNamespace: false,
        nativeSidecar: 'always',
        classicRunToCompletion: 'inject',
        excludedNamespaces: ['batch', 'legacy'],
        allowedImages: ['^busybox:1\\.3[67]\\.\\d+$'],
        failure: 'closed',
        podSecurity: { defaultLevel: 'baseline' },
        audit: { missingSidecars: true, intervalSeconds: 600 },
      },
    });
  });

  it('moves the hello file with the sidecar mount path when args are not given', () => {
    const result = parseConfig('sidecar: { mountPath: /debug }');
    expect(result.ok && result.config.sidecar.args.join(' ')).toContain('/debug/index.html');
  });

  it.each([
    ['not YAML', 'sidecar: [unclosed', /not valid YAML/],
    ['a duplicate key', 'failure: open\nfailure: closed', /not valid YAML.*[Dd]uplicate|unique/],
    ['a list at the top', '- a\n- b', /\(top level\)/],
    ['an unknown top-level key', 'sidecars: {}', /^sidecars: unknown key/],
    ['an unknown nested key', 'sidecar: { imagePullPolicy: Always }', /^sidecar\.imagePullPolicy: unknown key/],
    ['a wrong type', 'shareProcessNamespace: "yes"', /^shareProcessNamespace: /],
    ['a value outside an enum', 'nativeSidecar: sometimes', /^nativeSidecar: must be one of "auto", "always", "never"/],
    ['a bad Pod Security level', 'podSecurity: { defaultLevel: strict }', /^podSecurity\.defaultLevel: must be one of/],
    ['an invalid container name', 'sidecar: { name: Debug_Box }', /^sidecar\.name: /],
    ['an unpinned image', 'sidecar: { image: busybox }', /^sidecar\.image: must be pinned/],
    ['a latest image', 'sidecar: { image: "busybox:latest" }', /^sidecar\.image: must be pinned/],
    ['a relative mount path', 'appMountPath: data', /^appMountPath: must be an absolute path/],
    ['a bad memory quantity', 'sidecar: { resources: { memory: 32MB } }', /^sidecar\.resources\.memory: /],
    ['a bad cpu quantity', 'sidecar: { resources: { cpu: lots } }', /^sidecar\.resources\.cpu: /],
    ['a bad regular expression', 'allowedImages: ["busybox(:"]', /^allowedImages\[0\]: not a regular expression/],
    ['an invalid namespace name', 'excludedNamespaces: ["Kube_System"]', /^excludedNamespaces\.0: /],
    ['two volume sources', 'volume: { source: { emptyDir: {}, hostPath: { path: /tmp } } }', /^volume\.source: /],
  ])('rejects %s naming the key', (_what, text, message) => {
    const result = parseConfig(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatch(message);
      expect(result.error).not.toMatch(/\n/);
    }
  });
});
