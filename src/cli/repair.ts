/**
 * `sidecar-injector repair`: restarts the workloads whose pods were created without the sidecar, the way
 * `kubectl rollout restart` does (a `kubectl.kubernetes.io/restartedAt` annotation on the pod template, sent as a
 * strategic merge patch), so the workload's rollout strategy and PodDisruptionBudgets pace the new pods.
 *
 * A dry run unless `--yes`. Never deletes a pod: bare pods and the pods of Jobs are listed with the reason. Before
 * restarting anything it proves, with a server-side dry-run pod in each namespace concerned, that injection works:
 * restarting while the webhook fails open would only create more pods without the sidecar.
 */
import { auditCluster, auditSetup } from '../audit/cluster-audit.js';
import { RESTARTABLE, isRestartable, type Workload } from '../audit/workloads.js';
import { apiServerVersion, createDryRunPod, listNamespaces, patchAppsWorkload, replyMessage, type KubeApi } from '../cluster/check-api.js';
import { readInjection } from '../cluster/diagnose.js';
import type { DryRunOutcome } from '../cluster/check-targets.js';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
import { errorLine } from '../error-line.js';
import { openCluster, type CheckDeps, type CheckIo } from './check.js';
import { EXIT_FAILURE, EXIT_OK, parseFlags, UsageError } from './io.js';
import { injectorNamespace } from '../runtime/namespace.js';

export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

export const REPAIR_USAGE = `Usage: sidecar-injector repair [options]

Finds the pods that should carry the sidecar but do not (as check does) and restarts their workloads like
\`kubectl rollout restart\` (Deployments, StatefulSets, DaemonSets): the rollout strategy and PodDisruptionBudgets
apply. A dry run unless --yes. Never deletes a pod: bare pods and Job pods are listed with the reason. With
--yes it first proves injection works (a server-side dry-run pod in each namespace concerned must come back with
the sidecar) and refuses to restart anything otherwise. Exit status: 0 done (or nothing to do, or a dry run),
1 a failure (pods unreadable, injection not working, a restart refused), 2 usage error.

Options:
  --yes                     restart (default: only list what would be restarted)
  --namespace NS            only this namespace
  -l, --selector SELECTOR   only pods matching this label selector (e.g. app=web)
  --config FILE             the injector's configuration, to judge pods by (default: its ConfigMap
                            sidecar-injector-config in the injector's namespace, else the built-in defaults)
  --injector-namespace NS   the injector's namespace (default: POD_NAMESPACE, else ${DEFAULT_INJECTOR_NAMESPACE})
  --kubeconfig FILE         kubeconfig (default: KUBECONFIG, ~/.kube/config, or the pod's service account)
  --context NAME            kubeconfig context (default: the current one)
  --timeout SECONDS         per request (default 10)
  -o, --output FORMAT       text or json (default text)
  -h, --help                show this help
`;

const OPTIONS = {
  yes: { type: 'boolean', default: false },
  namespace: { type: 'string' },
  selector: { type: 'string', short: 'l' },
  config: { type: 'string' },
  'injector-namespace': { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  timeout: { type: 'string', default: '10' },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface RepairFlags {
  yes: boolean;
  namespace?: string;
  selector?: string;
  config?: string;
  injectorNamespace?: string;
  kubeconfig?: string;
  context?: string;
  timeoutMs: number;
  output: 'text' | 'json';
  help: boolean;
}

export function parseRepairFlags(argv: string[]): RepairFlags {
  const values = parseFlags(argv, OPTIONS);
  const output = values.output;
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got "${output}"`);
  const timeout = Number(values.timeout);
  if (values.timeout.trim() === '' || !Number.isFinite(timeout) || timeout <= 0) {
    throw new UsageError(`--timeout must be a number of seconds > 0, got "${values.timeout}"`);
  }
  const flags: RepairFlags = { yes: values.yes, timeoutMs: Math.round(timeout * 1000), output, help: values.help };
  for (const [key, field] of [
    ['namespace', 'namespace'],
    ['selector', 'selector'],
    ['config', 'config'],
    ['injector-namespace', 'injectorNamespace'],
    ['kubeconfig', 'kubeconfig'],
    ['context', 'context'],
  ] as const) {
    const value = values[key]?.trim();
    if (value === '') throw new UsageError(`--${key} must not be empty`);
    if (value !== undefined) flags[field] = value;
  }
  return flags;
}

export type RestartOutcome = 'would restart' | 'restarted' | { failed: string };

export interface RepairReport {
  ok: boolean;
  dryRun: boolean;
  scanned: number;
  missed: number;
  /** Why nothing was restarted although --yes was given (injection not proven). */
  refused: string | null;
  restart: (Workload & { outcome: RestartOutcome })[];
  leftAlone: Workload[];
}

/** Whether a dry-run pod proves injection works in its namespace; the reason when it does not. */
export function injectionProblem(outcome: DryRunOutcome): string | undefined {
  const where = `dry-run pod in namespace ${outcome.namespace}`;
  if ('error' in outcome) return `${where} could not be created: ${outcome.error}`;
  if (outcome.status >= 300 || outcome.pod === undefined) return `${where} refused: ${outcome.message ?? `HTTP ${outcome.status}`}`;
  if (!readInjection(outcome.pod).injected) return `${where} came back WITHOUT the sidecar: the webhook is not answering (or fails open)`;
  return undefined;
}

/** The patch `kubectl rollout restart` sends. */
export function restartPatch(at: Date): unknown {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: stamp } } } } };
}

async function restartWorkload(api: KubeApi, workload: Workload, at: Date): Promise<RestartOutcome> {
  if (!isRestartable(workload.kind)) return { failed: `cannot restart a ${workload.kind}` };
  try {
    const reply = await patchAppsWorkload(api, RESTARTABLE[workload.kind], workload.namespace, workload.name, restartPatch(at));
    return reply.status === 200 ? 'restarted' : { failed: replyMessage(reply) };
  } catch (err) {
    return { failed: errorLine(err) };
  }
}

/** The first namespace whose dry-run pod does not come back injected, with why; undefined when all do. */
async function proveInjection(api: KubeApi, namespaces: readonly string[]): Promise<string | undefined> {
  for (const namespace of namespaces) {
    const problem = injectionProblem(await createDryRunPod(api, namespace));
    if (problem !== undefined) return problem;
  }
  return undefined;
}

async function repair(api: KubeApi, flags: RepairFlags, env: CheckIo['env'], now: () => Date, configFile?: { path: string; text: string }): Promise<RepairReport | { error: string }> {
  let version: string | undefined;
  try {
    version = await apiServerVersion(api);
  } catch (err) {
    return { error: errorLine(err) };
  }
  const listed = await listNamespaces(api);
  if ('error' in listed) return { error: `cannot list namespaces: ${listed.error}` };
  const namespaces = listed.items;
  const ownNamespace = injectorNamespace(env, { flag: flags.injectorNamespace });
  const setup = await auditSetup(api, ownNamespace, version, configFile);
  const narrow = { ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }), ...(flags.selector === undefined ? {} : { selector: flags.selector }) };
  const audit = await auditCluster(api, namespaces, setup, narrow);
  if ('skipped' in audit) return { error: audit.skipped };
  if (!audit.ok) return { error: audit.forbidden ? `${audit.error}: repair needs permission to list pods` : audit.error };
  const restartable = audit.workloads.filter((w) => w.fix !== undefined);
  const leftAlone = audit.workloads.filter((w) => w.fix === undefined);
  const base = { scanned: audit.result.scanned, missed: audit.result.missed.length, leftAlone, dryRun: !flags.yes };
  if (!flags.yes || restartable.length === 0) {
    return { ...base, ok: true, refused: null, restart: restartable.map((w) => ({ ...w, outcome: 'would restart' as const })) };
  }
  const refused = await proveInjection(api, [...new Set(restartable.map((w) => w.namespace))]);
  if (refused !== undefined) {
    return { ...base, ok: false, refused, restart: restartable.map((w) => ({ ...w, outcome: 'would restart' as const })) };
  }
  const at = now();
  const restarted: RepairReport["restart"] = [];
  for (const workload of restartable) restarted.push({ ...workload, outcome: await restartWorkload(api, workload, at) });
  return { ...base, ok: restarted.every((r) => typeof r.outcome === "string"), refused: null, restart: restarted };
}

export function renderRepair(report: RepairReport): string {
  const lines: string[] = [];
  lines.push(`${report.missed} pod${report.missed === 1 ? '' : 's'} without the sidecar among ${report.scanned} looked at`);
  for (const r of report.restart) {
    const what = `${r.namespace} ${r.kind.toLowerCase()}/${r.name} (${r.pods} pod${r.pods === 1 ? '' : 's'})`;
    const outcome = typeof r.outcome === 'string' ? r.outcome : `FAILED: ${r.outcome.failed}`;
    lines.push(`${outcome === 'restarted' ? '✓' : typeof r.outcome === 'string' ? '-' : '✗'} ${outcome}: ${what}`);
  }
  for (const w of report.leftAlone) {
    lines.push(`! left alone: ${w.namespace} ${w.kind.toLowerCase()}/${w.name} (${w.pods} pod${w.pods === 1 ? '' : 's'}): ${w.reason ?? ''}`);
  }
  if (report.refused !== null) lines.push(`✗ nothing restarted: ${report.refused}`);
  else if (report.dryRun && report.restart.length > 0) lines.push('dry run: nothing changed; run again with --yes to restart');
  return `${lines.join('\n')}\n`;
}

export async function runRepair(argv: string[], io: CheckIo & { deps?: CheckDeps }): Promise<number> {
  const opened = await openCluster('repair', REPAIR_USAGE, () => parseRepairFlags(argv), io);
  if ('exitCode' in opened) return opened.exitCode;
  const { flags, configFile, deps, connection } = opened;
  const report = 'error' in connection ? connection : await repair(connection.api, flags, io.env, deps.now, configFile);
  if ('error' in report) {
    if (flags.output === 'json') io.stdout.write(`${JSON.stringify({ ok: false, error: report.error }, null, 2)}\n`);
    else io.stderr.write(`sidecar-injector repair: ${report.error}\n`);
    return EXIT_FAILURE;
  }
  io.stdout.write(flags.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderRepair(report));
  return report.ok ? EXIT_OK : EXIT_FAILURE;
}
