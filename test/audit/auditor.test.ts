/**
 * The missed-pods auditor Part against the fake API server: off by default, gauges per namespace, one log line
 * per audit that changed the figures, jittered scheduling on hand-driven timers, reload, RBAC refusal, close.
 */
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMissedPodsAuditor, type AuditorTimers } from '../../src/audit/auditor.js';
import { kubeApi } from '../../src/cluster/check-api.js';
import { parseConfig, type ServerConfig } from '../../src/config/parse.js';
import type { FakeApiServer } from '../cluster/fake-apiserver.js';
import { kubeConfigFor, startWorld, storedPod } from './world.js';

function config(text: string): ServerConfig {
  const parsed = parseConfig(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
}

class ManualTimers implements AuditorTimers {
  pending: { callback: () => void; ms: number }[] = [];
  cleared = 0;
  setTimeout(callback: () => void, ms: number): unknown {
    const entry = { callback, ms };
    this.pending.push(entry);
    return entry;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p !== handle);
    this.cleared += 1;
  }
  random = (): number => 0;
  now = (): number => 1_764_000_000_000;
  /** Fires the next timer; resolves once the audit it started has finished and the next one is scheduled. */
  async fire(): Promise<number> {
    const next = this.pending.shift();
    if (next === undefined) throw new Error('nothing scheduled');
    const before = this.pending.length;
    next.callback();
    for (let i = 0; i < 500 && this.pending.length === before; i += 1) await new Promise((r) => setTimeout(r, 5));
    return next.ms;
  }
}

interface Line {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  message: string;
}

let api: FakeApiServer;
let registry: Registry;
let lines: Line[];
let current: ServerConfig;
let timers: ManualTimers;

beforeEach(async () => {
  api = await startWorld();
  registry = new Registry();
  lines = [];
  current = config('audit: { missingSidecars: true, intervalSeconds: 600 }');
  timers = new ManualTimers();
});
afterEach(async () => {
  await api.stop();
});

function auditor() {
  return createMissedPodsAuditor({
    api: kubeApi(kubeConfigFor(api), 5000),
    config: () => current,
    context: () => ({ injectorNamespace: 'sidecar-injector', apiServerVersion: '1.31', minKubeletVersion: '1.31' }),
    metricsRegistry: registry,
    log: {
      info: (fields, message) => lines.push({ level: 'info', fields, message }),
      warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    },
    timers,
  });
}

async function series(name: string): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.namespace ?? ''), v.value]));
}

describe('missed-pods auditor', () => {
  it('exports missing and stale pods per namespace (0 for clean enabled namespaces); logs only when figures change', async () => {
    const part = auditor();
    await part.auditNow();
    expect(await series('sidecar_injector_pods_missing_sidecar')).toEqual({ shop: 5, batch: 0, 'team-a': 1 });
    expect(await series('sidecar_injector_pods_stale_sidecar')).toEqual({ shop: 0, batch: 1 });
    expect(await series('sidecar_injector_pods_audit_last_success_timestamp_seconds')).toEqual({ '': 1_764_000_000 });
    expect(lines).toEqual([
      {
        level: 'info',
        message: 'missed-pods audit: figures changed',
        fields: expect.objectContaining({ missing: 6, stale: 1, missingByNamespace: { shop: 5, 'team-a': 1 }, staleByNamespace: { batch: 1 } }),
      },
    ]);
    await part.auditNow();
    expect(lines).toHaveLength(1);
    api.putPod(storedPod({ namespace: 'batch', name: 'late-pod' }));
    await part.auditNow();
    expect(lines).toHaveLength(2);
    expect(await series('sidecar_injector_pods_missing_sidecar')).toMatchObject({ batch: 1 });
    // Only metadata lists and the few full pods the rule needs: no pod list in full.
    expect(api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/batch/pods?'))).toHaveLength(6);
  });

  it('off by default and after a reload turns it off: no requests, no series', async () => {
    current = config('');
    const part = auditor();
    await part.auditNow();
    expect(api.requests).toEqual([]);
    expect(await series('sidecar_injector_pods_missing_sidecar')).toEqual({});
    current = config('audit: { missingSidecars: true }');
    await part.auditNow();
    expect(await series('sidecar_injector_pods_missing_sidecar')).toMatchObject({ shop: 5 });
    current = config('');
    await part.auditNow();
    expect(await series('sidecar_injector_pods_missing_sidecar')).toEqual({});
    expect(lines.at(-1)?.message).toBe('missed-pods audit turned off by the configuration');
  });

  it('schedules with jitter from the configured interval, re-read at each tick; close stops it', async () => {
    const part = auditor();
    await part.start();
    expect(part.ready()).toBe(true);
    expect(timers.pending.map((p) => p.ms)).toEqual([24_000]); // 30 s first delay, -20 % with random() = 0
    await timers.fire();
    expect(await series('sidecar_injector_pods_missing_sidecar')).toMatchObject({ shop: 5 });
    expect(timers.pending.map((p) => p.ms)).toEqual([480_000]); // 600 s, -20 %
    timers.random = () => 0.999_999;
    current = config('audit: { missingSidecars: true, intervalSeconds: 100 }');
    await timers.fire();
    expect(timers.pending.map((p) => p.ms)).toEqual([120_000]); // 100 s, +20 %
    await part.close();
    expect(timers.pending).toEqual([]);
    await part.close();
  });

  it('RBAC refusal: one warning naming the component, figures keep their last values', async () => {
    const part = auditor();
    await part.auditNow();
    api.forbidPodLists = true;
    await part.auditNow();
    await part.auditNow();
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.fields.error)).toMatch(/cannot list pods .*forbidden.*\(install manifests\/components\/audit\)$/);
    expect(await series('sidecar_injector_pods_missing_sidecar')).toMatchObject({ shop: 5 });
  });

  it('two auditors on one registry (a restarted part) share the gauges', () => {
    auditor();
    expect(() => auditor()).not.toThrow();
  });
});
