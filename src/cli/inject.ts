/**
 * `sidecar-injector inject` and `uninject`: the engine over manifests on disk, with the context a webhook would
 * learn from the cluster given as flags.
 */
import { readFile } from 'node:fs/promises';
import { createTwoFilesPatch } from 'diff';
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { loadConfigFile } from '../config/watch.js';
import { defaultConfig } from '../core/defaults.js';
import { computeInjection } from '../core/engine.js';
import { DEFAULT_INJECTOR_NAMESPACE } from '../core/labels.js';
import { POD_SECURITY_LEVELS, type InjectionContext, type InjectorConfig, type PodObject, type PodSecurityLevel } from '../core/types.js';
import { uninjectPod } from '../core/uninject.js';
import { parseMinorVersion } from '../core/versions.js';
import { transformManifests, type ObjectReport, type PodOutcome } from '../offline/transform.js';
import type { PodSite } from '../offline/workloads.js';
import { EXIT_FAILURE, EXIT_OK, flagsOrExit, parseFlags, readAllStdin, UsageError, type CommandIo } from './io.js';

const INJECT_USAGE = `Usage: sidecar-injector inject [-f FILE|-] [flags]

Injects the sidecar into Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Jobs, CronJobs and the items of Lists. Other kinds pass through unchanged.

  -f, --filename FILE          input (multi-document YAML or JSON); - or absent: standard input
      --config FILE            configuration file (as mounted from the ConfigMap); default: built-in defaults
      --namespace NS           namespace of objects that do not name one (default: default)
      --namespace-label K=V    a label of the namespace (repeatable); when given, selection is checked as the
                               webhook's entries would; when absent, every pod not opted out is injected
      --pod-security-level L   the namespace's enforce level: privileged, baseline or restricted
                               (default: podSecurity.defaultLevel of the configuration)
      --kubernetes-version V   API server version, e.g. 1.33 (decides nativeSidecar: auto)
      --kubelet-version V      oldest kubelet version (default: --kubernetes-version)
      --injector-namespace NS  the injector's own namespace, never injected (default: ${DEFAULT_INJECTOR_NAMESPACE})
      --diff                   print a unified diff instead of the manifests
      --explain                print, per object, the decision, reasons and warnings
  -h, --help                   this help

Exit codes: 0 done, 1 unreadable or malformed input or configuration, 2 usage error.
`;

const UNINJECT_USAGE = `Usage: sidecar-injector uninject [-f FILE|-] [--diff] [--explain]

Removes exactly what the sidecar-injector.io/status annotation records from Pods and pod templates.
Exit codes: 0 done, 1 unreadable or malformed input, 2 usage error.
`;

const injectOptions = {
  filename: { type: 'string', short: 'f', default: '-' },
  config: { type: 'string' },
  namespace: { type: 'string', default: 'default' },
  'namespace-label': { type: 'string', multiple: true },
  'pod-security-level': { type: 'string' },
  'kubernetes-version': { type: 'string' },
  'kubelet-version': { type: 'string' },
  'injector-namespace': { type: 'string', default: DEFAULT_INJECTOR_NAMESPACE },
  diff: { type: 'boolean', default: false },
  explain: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const uninjectOptions = {
  filename: { type: 'string', short: 'f', default: '-' },
  diff: { type: 'boolean', default: false },
  explain: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseLabels(pairs: readonly string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--namespace-label expects KEY=VALUE, got "${pair}"`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

function parseLevel(value: string | undefined): PodSecurityLevel | undefined {
  if (value === undefined) return undefined;
  if (!POD_SECURITY_LEVELS.includes(value as PodSecurityLevel)) {
    throw new UsageError(`--pod-security-level must be one of ${POD_SECURITY_LEVELS.join(', ')}`);
  }
  return value as PodSecurityLevel;
}

function parseVersion(flag: string, value: string | undefined): string | undefined {
  if (value !== undefined && parseMinorVersion(value) === undefined) throw new UsageError(`${flag} expects a version such as 1.33`);
  return value;
}

async function readInput(file: string, io: CommandIo): Promise<{ bytes: Uint8Array | string; source: string } | { error: string }> {
  if (file === '-') return { bytes: await (io.readStdin ?? readAllStdin)(), source: '<stdin>' };
  try {
    return { bytes: await readFile(file), source: file };
  } catch (error) {
    return { error: `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})` };
  }
}

function applyPatchToCopy(pod: PodObject, patch: Operation[]): PodObject {
  return fastJsonPatch.applyPatch(pod, patch, true, false).newDocument;
}

export function injectSite(site: PodSite, config: InjectorConfig, context: InjectionContext): PodOutcome {
  const result = computeInjection(site.pod, config, { ...context, namespace: site.namespace ?? context.namespace });
  const { decision, warnings } = result;
  if (decision.action === 'inject' || decision.action === 'update') {
    const status = result.status!;
    const summary = `${decision.action === 'inject' ? 'injected' : 'updated'} (${status.mode} sidecar, Pod Security ${status.podSecurityLevel}, mounted: ${status.mounted.join(', ') || 'none'})`;
    return { outcome: 'changed', pod: applyPatchToCopy(site.pod, result.patch as Operation[]), summary, warnings };
  }
  return { outcome: 'unchanged', summary: `${decision.action === 'skip' ? 'skipped' : 'error'}: ${decision.reason}`, warnings };
}

function uninjectSite(site: PodSite): PodOutcome {
  const result = uninjectPod(site.pod);
  if (result.outcome === 'removed') return { outcome: 'changed', pod: result.pod, summary: 'sidecar removed', warnings: [] };
  if (result.outcome === 'not-injected') return { outcome: 'unchanged', summary: 'not injected', warnings: [] };
  return { outcome: 'unchanged', summary: `left unchanged: ${result.reason}`, warnings: [] };
}

function explanation(reports: readonly ObjectReport[]): string {
  if (reports.length === 0) return 'no pods or pod templates found\n';
  return reports
    .map((r) => [`document ${r.document}, ${r.object}: ${r.summary}`, ...r.warnings.map((w) => `  warning: ${w}`)].join('\n'))
    .join('\n')
    .concat('\n');
}

async function runTransform(
  io: CommandIo,
  filename: string,
  mode: { diff: boolean; explain: boolean },
  perPod: (site: PodSite) => PodOutcome,
): Promise<number> {
  const input = await readInput(filename, io);
  if ('error' in input) {
    io.stderr.write(`error: ${input.error}\n`);
    return EXIT_FAILURE;
  }
  const result = transformManifests(input.bytes, input.source, perPod);
  if (!result.ok) {
    io.stderr.write(`error: ${result.error}\n`);
    return EXIT_FAILURE;
  }
  if (mode.explain) io.stdout.write(explanation(result.reports));
  else if (mode.diff) io.stdout.write(createTwoFilesPatch(input.source, `${input.source} (injected)`, result.input, result.output));
  else io.stdout.write(result.output);
  return EXIT_OK;
}

interface TransformFlags {
  filename: string;
  diff: boolean;
  explain: boolean;
  help: boolean;
}

interface InjectFlags extends TransformFlags {
  config?: string;
  context: InjectionContext;
}

export function parseInjectFlags(argv: string[]): InjectFlags {
  const values = parseFlags(argv, injectOptions);
  const { filename, diff, explain, help } = values;
  const context: InjectionContext = { operation: 'CREATE', namespace: values.namespace, injectorNamespace: values['injector-namespace'] };
  const flags: InjectFlags = { filename, diff, explain, help, context, ...(values.config === undefined ? {} : { config: values.config }) };
  if (help) return flags;
  const labels = parseLabels(values['namespace-label']);
  if (labels) context.namespaceLabels = labels;
  const level = parseLevel(values['pod-security-level']);
  if (level) context.podSecurityLevel = level;
  const apiServerVersion = parseVersion('--kubernetes-version', values['kubernetes-version']);
  const kubeletVersion = parseVersion('--kubelet-version', values['kubelet-version']) ?? apiServerVersion;
  if (apiServerVersion) context.apiServerVersion = apiServerVersion;
  if (kubeletVersion) context.minKubeletVersion = kubeletVersion;
  return flags;
}

export async function runInject(argv: string[], io: CommandIo): Promise<number> {
  const parsed = flagsOrExit('inject', INJECT_USAGE, () => parseInjectFlags(argv), io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const { flags } = parsed;
  let config = defaultConfig();
  if (flags.config !== undefined) {
    const loaded = await loadConfigFile(flags.config);
    if (!loaded.ok) {
      io.stderr.write(`error: configuration ${flags.config}: ${loaded.error}\n`);
      return EXIT_FAILURE;
    }
    config = loaded.config;
  }
  return runTransform(io, flags.filename, flags, (site) => injectSite(site, config, flags.context));
}

export async function runUninject(argv: string[], io: CommandIo): Promise<number> {
  const parsed = flagsOrExit('uninject', UNINJECT_USAGE, (): TransformFlags => parseFlags(argv, uninjectOptions), io);
  if ('exitCode' in parsed) return parsed.exitCode;
  return runTransform(io, parsed.flags.filename, parsed.flags, uninjectSite);
}
