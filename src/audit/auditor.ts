/**
 * The continuous missed-pods audit, a Part of `serve`: with `audit.missingSidecars: true` it scans the pods every
 * `audit.intervalSeconds` (jittered) and exports, per namespace, how many pods should carry the sidecar but do
 * not, and how many carry one older than today's configuration. One log line per audit that changed the figures.
 *
 * Every replica audits, without leader election: one audit is a metadata-only, paged list of the enabled
 * namespaces' pods (about 20 requests and a few MB for 10,000 pods, bench/audit.mjs), cheaper than the Lease
 * traffic and RBAC an election would add. The replicas' gauges agree; alert on `max by (namespace)`.
 * The ±20 % jitter keeps replicas (and restarts) from listing at the same moment.
 *
 * The configuration is read at every tick, so a reload turns the audit on or off and changes its interval.
 */
import { Gauge, type Registry } from 'prom-client';
import { listNamespaces, type KubeApi } from '../cluster/check-api.js';
import { auditSettingsOf } from '../config/parse.js';
import type { AuditContext } from '../core/missed-sidecar.js';
import { excludedNamespaceList, namespaceSelected } from '../core/selection.js';
import type { InjectorConfig } from '../core/types.js';
import { errorLine } from '../error-line.js';
import type { Part } from '../runtime/part.js';
import { scanPods, type ScanResult } from './scan.js';

export interface AuditorLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface AuditorTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** In [0, 1): the jitter. */
  random(): number;
  /** For the last-success gauge. */
  now(): number;
}

export interface AuditorOptions {
  /** Reads namespaces and pods (needs `list` on both, cluster-wide: manifests/components/audit). */
  api: KubeApi;
  /** The configuration in force now (reloaded): the rule's and the audit's own settings. */
  config: () => InjectorConfig;
  /** The injector's namespace and the versions `nativeSidecar: auto` depends on, as the webhook knows them now. */
  context: () => AuditContext;
  metricsRegistry: Registry;
  log: AuditorLog;
  timers?: AuditorTimers;
  /** Delay of the first audit after start, before jitter (default 30 s: let the server settle first). */
  firstDelayMs?: number;
}

export interface MissedPodsAuditor extends Part {
  /** Runs one audit now (tests, and a future trigger); resolves when it is done. */
  auditNow(): Promise<void>;
}

const JITTER = 0.2;
const DEFAULT_FIRST_DELAY_MS = 30_000;

const realTimers: AuditorTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  random: Math.random,
  now: Date.now,
};

function jittered(ms: number, random: number): number {
  return Math.round(ms * (1 - JITTER + 2 * JITTER * random));
}

function gauges(registry: Registry) {
  const existing = (name: string) => registry.getSingleMetric(name) as Gauge<'namespace'> | undefined;
  const missing =
    existing('sidecar_injector_pods_missing_sidecar') ??
    new Gauge({
      name: 'sidecar_injector_pods_missing_sidecar',
      help: 'Pods that should carry the sidecar but do not, by namespace, at the last audit',
      labelNames: ['namespace'],
      registers: [registry],
    });
  const stale =
    existing('sidecar_injector_pods_stale_sidecar') ??
    new Gauge({
      name: 'sidecar_injector_pods_stale_sidecar',
      help: 'Pods whose sidecar image or mode differs from the configuration in force, by namespace, at the last audit',
      labelNames: ['namespace'],
      registers: [registry],
    });
  const lastSuccess =
    (registry.getSingleMetric('sidecar_injector_pods_audit_last_success_timestamp_seconds') as Gauge | undefined) ??
    new Gauge({
      name: 'sidecar_injector_pods_audit_last_success_timestamp_seconds',
      help: 'When the last missed-pods audit completed (Unix time); 0 while the audit is off',
      registers: [registry],
    });
  return { missing, stale, lastSuccess };
}

/** `ns=count` pairs, sorted: what the log line and the change detection compare. */
function figures(result: ScanResult): string {
  const part = (counts: Record<string, number>) => Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)).map(([ns, n]) => `${ns}=${n}`).join(',');
  return `${part(result.missedByNamespace)}|${part(result.staleByNamespace)}`;
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

type Metrics = ReturnType<typeof gauges>;

function publish(metrics: Metrics, result: ScanResult, namespaces: readonly string[], nowMs: number): void {
  metrics.missing.reset();
  metrics.stale.reset();
  // Every audited namespace gets a series (0 when clean), so an alert resolves instead of going stale; pods opted
  // in by label may sit in namespaces outside that list.
  for (const ns of new Set([...namespaces, ...Object.keys(result.missedByNamespace)])) {
    metrics.missing.set({ namespace: ns }, result.missedByNamespace[ns] ?? 0);
  }
  for (const ns of new Set([...namespaces, ...Object.keys(result.staleByNamespace)])) {
    metrics.stale.set({ namespace: ns }, result.staleByNamespace[ns] ?? 0);
  }
  metrics.lastSuccess.set(nowMs / 1000);
}

function logFigures(log: AuditorOptions['log'], result: ScanResult): void {
  log.info(
    {
      missing: total(result.missedByNamespace),
      stale: total(result.staleByNamespace),
      missingByNamespace: result.missedByNamespace,
      staleByNamespace: result.staleByNamespace,
      scanned: result.scanned,
      requests: result.requests,
    },
    'missed-pods audit: figures changed',
  );
}

export function createMissedPodsAuditor(options: AuditorOptions): MissedPodsAuditor {
  const timers = options.timers ?? realTimers;
  const metrics = gauges(options.metricsRegistry);
  let timer: unknown;
  let running: Promise<void> | undefined;
  let closed = false;
  let lastFigures: string | undefined;
  let lastError: string | undefined;

  const auditOnce = async (): Promise<void> => {
    const config = options.config();
    if (!auditSettingsOf(config).missingSidecars) {
      if (lastFigures !== undefined) options.log.info({}, 'missed-pods audit turned off by the configuration');
      metrics.missing.reset();
      metrics.stale.reset();
      metrics.lastSuccess.reset();
      lastFigures = undefined;
      return;
    }
    const failed = (error: string): void => {
      if (error !== lastError) options.log.warn({ error }, 'missed-pods audit failed; the figures keep their last values');
      lastError = error;
    };
    const listed = await listNamespaces(options.api);
    if ('error' in listed) return failed(`cannot list namespaces: ${listed.error}`);
    const namespaces = listed.items;
    const scan = await scanPods({ api: options.api, namespaces, config, context: options.context() });
    if (!scan.ok) return failed(scan.forbidden ? `${scan.error} (install manifests/components/audit)` : scan.error);
    lastError = undefined;
    const excluded = excludedNamespaceList(options.context().injectorNamespace, config.excludedNamespaces);
    const audited = namespaces
      .filter((ns) => namespaceSelected(excluded, ns.metadata?.name ?? '', ns.metadata?.labels ?? {}))
      .map((ns) => ns.metadata?.name ?? '');
    publish(metrics, scan.result, audited, timers.now());
    const now = figures(scan.result);
    if (now !== lastFigures) logFigures(options.log, scan.result);
    lastFigures = now;
  };

  const run = (): Promise<void> => {
    running ??= auditOnce()
      .catch((err: unknown) => options.log.warn({ error: errorLine(err) }, 'missed-pods audit failed'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const schedule = (ms: number): void => {
    if (closed) return;
    timer = timers.setTimeout(() => {
      void run().then(() => schedule(jittered(auditSettingsOf(options.config()).intervalSeconds * 1000, timers.random())));
    }, ms);
  };

  return {
    name: 'audit',
    async start() {
      closed = false;
      schedule(jittered(options.firstDelayMs ?? DEFAULT_FIRST_DELAY_MS, timers.random()));
    },
    // The audit reports; it never decides whether the webhook may serve.
    ready: () => true,
    async close() {
      closed = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      await running;
    },
    auditNow: run,
  };
}
