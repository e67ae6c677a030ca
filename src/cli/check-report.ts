/**
 * What `sidecar-injector check` prints: the JSON report (every key always present, checks in a fixed order) and
 * the text rendering of it.
 */
import type { MissedPodsFacts } from '../audit/cluster-audit.js';
import type { Workload } from '../audit/workloads.js';
import { summariseNamespaces, type CheckFacts } from '../cluster/check-targets.js';
import { CHECKS, exitCodeFor, readInjection, type CheckResult, type CheckStatus } from '../cluster/diagnose.js';
import type { PodSecurityLevel } from '../core/types.js';

const SYMBOL: Record<CheckStatus, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };

export interface CheckReport {
  ok: boolean;
  server: string;
  context: string | null;
  webhookConfiguration: string;
  summary: Record<CheckStatus, number>;
  checks: CheckResult[];
  namespaces: { enabled: { name: string; podSecurity: PodSecurityLevel }[]; disabled: string[] } | null;
  dryRun: { namespace: string; injected: boolean; mode: string | null } | null;
  /** Pods that should carry the sidecar but do not, by workload; null when not looked at or unreadable. */
  missedPods: {
    scanned: number;
    requests: number;
    missed: number;
    missedByNamespace: Record<string, number>;
    stale: number;
    staleByNamespace: Record<string, number>;
    configuration: string;
    workloads: Workload[];
  } | null;
}

/** The JSON document `--output json` prints: every key always present, checks in a fixed order. */
export function buildReport(facts: CheckFacts, results: CheckResult[]): CheckReport {
  const summary: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) summary[r.status] += 1;
  const namespaces =
    facts.namespaces !== undefined && 'items' in facts.namespaces
      ? summariseNamespaces(facts.namespaces.items, facts.excludedNamespaces, facts.podSecurityDefault)
      : undefined;
  const dryRun = facts.dryRun;
  const reading = dryRun !== undefined && 'pod' in dryRun ? readInjection(dryRun.pod) : undefined;
  return {
    ok: exitCodeFor(results) === 0,
    server: facts.apiServer.server,
    context: facts.apiServer.context ?? null,
    webhookConfiguration: facts.webhookConfigurationName,
    summary,
    checks: results,
    namespaces:
      namespaces === undefined
        ? null
        : { enabled: namespaces.enabled.map((n) => ({ name: n.name, podSecurity: n.podSecurity })), disabled: namespaces.disabled },
    dryRun: dryRun === undefined ? null : { namespace: dryRun.namespace, injected: reading?.injected ?? false, mode: reading?.mode ?? null },
    missedPods: missedPodsReport(facts.missedPods),
  };
}

function missedPodsReport(facts: MissedPodsFacts | undefined): CheckReport['missedPods'] {
  if (facts === undefined || !('ok' in facts) || !facts.ok) return null;
  const { result, workloads, configSource } = facts;
  return {
    scanned: result.scanned,
    requests: result.requests,
    missed: result.missed.length,
    missedByNamespace: result.missedByNamespace,
    stale: Object.values(result.staleByNamespace).reduce((a, b) => a + b, 0),
    staleByNamespace: result.staleByNamespace,
    configuration: configSource,
    workloads,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function renderText(report: CheckReport): string {
  const width = Math.max(...CHECKS.map((c) => c.title.length));
  const titles = new Map(CHECKS.map((c) => [c.id, c.title]));
  const lines = [
    `sidecar-injector check: ${report.server || 'no connection'}${report.context === null ? '' : ` (context ${report.context})`}, ` +
      `MutatingWebhookConfiguration ${report.webhookConfiguration}`,
  ];
  for (const check of report.checks) {
    lines.push(`${SYMBOL[check.status]} ${(titles.get(check.id) ?? check.id).padEnd(width)}  ${check.message}`);
    for (const detail of check.details) lines.push(`  ${' '.repeat(width)}    ${detail}`);
  }
  const { pass, warn, fail, skip } = report.summary;
  lines.push(
    `${fail > 0 ? 'FAILED' : 'OK'}: ${plural(pass, 'check')} passed, ${plural(warn, 'warning')}, ${plural(fail, 'failure')}` +
      `${skip > 0 ? `, ${skip} skipped` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
