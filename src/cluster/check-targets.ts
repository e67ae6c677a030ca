/**
 * `sidecar-injector check`: what to look at. Which webhook configuration, Secret and entries are ours, where the
 * API server sends admission requests, which namespaces are selected, where the dry-run pod goes and what it is,
 * and the shape of everything the caller fetches (CheckFacts). No client library, no network, no clock: the
 * caller (src/cluster/check-api.ts, src/cli/check.ts) fetches; src/cluster/diagnose.ts judges.
 */
import type { MutatingWebhook, MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Namespace, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { SELECTION_LABEL } from '../core/labels.js';
import { excludedNamespaceList, namespaceSelected } from '../core/selection.js';
import type { PodSecurityLevel } from '../core/types.js';
import type { MissedPodsFacts } from '../audit/cluster-audit.js';
import { enforceLevel } from './facts.js';

export const WEBHOOK_ENTRY_NAMES: readonly string[] = ['namespace.sidecar-injector.io', 'pod.sidecar-injector.io'];
export const DEFAULT_WEBHOOK_CONFIGURATION = 'sidecar-injector';
export const DEFAULT_TLS_SECRET = 'sidecar-injector-tls';
export const PROBE_POD_PREFIX = 'sidecar-injector-check-';

/** An object read by name: found, absent (404), or unreadable (403, a network error…). */
export type Lookup<T> = { found: true; object: T } | { found: false } | { error: string };

/** A list read from the API, or why it could not be. */
export type Listing<T> = { items: T[] } | { error: string };

/** Where the API server sends admission requests, from the first of our entries. */
export type WebhookEndpoint =
  | { kind: 'url'; url: string; host: string; port: number }
  | {
      kind: 'service';
      name: string;
      namespace: string;
      port: number;
      path: string;
      /** The name the API server verifies the certificate against (and dials, through the service network). */
      host: string;
    };

/** What connecting to the webhook showed: its certificate chain (PEM, leaf first), or why not. */
export type TlsProbe =
  | { reached: true; target: string; chain: string[] }
  | { reached: false; target: string; error: string }
  | { reached: false; skipped: string };

/** Where the dry-run pod goes; `none`: nowhere sensible (a warning); `skipped`: not wanted (--no-dry-run). */
export type DryRunTarget = { namespace: string; why: string } | { none: string } | { skipped: string };

export type DryRunOutcome =
  | { namespace: string; status: number; pod?: Pod; message?: string; warnings: string[] }
  | { namespace: string; error: string };

export interface CheckFacts {
  webhookConfigurationName: string;
  apiServer: { server: string; context?: string; version?: string } | { server: string; context?: string; error: string };
  webhookConfiguration?: Lookup<MutatingWebhookConfiguration>;
  service?: Lookup<Service>;
  endpointSlices?: Listing<EndpointSlice>;
  served?: TlsProbe;
  /** The Secret holding the serving pair, read when the webhook itself could not be reached. */
  tlsSecret?: Lookup<Secret> & { name?: string };
  namespaces?: Listing<Namespace>;
  dryRunTarget?: DryRunTarget;
  dryRun?: DryRunOutcome;
  /** Never injected, whatever their labels: the system namespaces and the injector's own. */
  excludedNamespaces: readonly string[];
  /** Level assumed for namespaces without an enforce label (the injector's `podSecurity.defaultLevel`). */
  podSecurityDefault: PodSecurityLevel;
  /** Where check runs: in a pod (Services are reachable) or not. */
  inCluster: boolean;
  /** The scan of the pods for ones created without the sidecar. */
  missedPods?: MissedPodsFacts;
  /** `--strict`: pods without the sidecar are a failure, not a warning. */
  strict?: boolean;
  now: Date;
}



export function excludedNamespaces(injectorNamespace: string, configured: readonly string[] = []): string[] {
  return excludedNamespaceList(injectorNamespace, configured);
}

/** Our entries, in WEBHOOK_ENTRY_NAMES order (absent ones left out). */
export function ourEntries(config: MutatingWebhookConfiguration): MutatingWebhook[] {
  const webhooks = config.webhooks ?? [];
  return WEBHOOK_ENTRY_NAMES.flatMap((name) => webhooks.filter((w) => w.name === name));
}

export function entriesOrAll(config: MutatingWebhookConfiguration): MutatingWebhook[] {
  const ours = ourEntries(config);
  return ours.length > 0 ? ours : (config.webhooks ?? []);
}

/** The endpoint of the first of our entries (or of any entry when none is ours); undefined when none is usable. */
export function webhookEndpoint(config: MutatingWebhookConfiguration): WebhookEndpoint | undefined {
  const entry = entriesOrAll(config)[0];
  const clientConfig = entry?.clientConfig;
  if (clientConfig === undefined) return undefined;
  if (clientConfig.url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(clientConfig.url);
    } catch {
      return undefined;
    }
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    return { kind: 'url', url: clientConfig.url, host, port: parsed.port === '' ? 443 : Number(parsed.port) };
  }
  const service = clientConfig.service;
  if (service === undefined) return undefined;
  return {
    kind: 'service',
    name: service.name,
    namespace: service.namespace,
    port: service.port ?? 443,
    path: service.path ?? '/',
    host: `${service.name}.${service.namespace}.svc`,
  };
}

export function isExcluded(namespace: string, excluded: readonly string[]): boolean {
  return excluded.includes(namespace);
}

function labelOf(namespace: Namespace, key: string): string | undefined {
  return namespace.metadata?.labels?.[key];
}

function nameOf(namespace: Namespace): string {
  return namespace.metadata?.name ?? '';
}

/** Live (not terminating) namespaces labelled enabled, not excluded, by name. */
export function enabledNamespaces(namespaces: readonly Namespace[], excluded: readonly string[]): Namespace[] {
  return namespaces
    .filter((ns) => namespaceSelected(excluded, nameOf(ns), ns.metadata?.labels ?? {}))
    .filter((ns) => ns.status?.phase !== 'Terminating' && ns.metadata?.deletionTimestamp === undefined)
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
}

/** The namespace for the dry-run pod: the flag, else the first enabled namespace by name. */
export function dryRunTarget(namespaces: readonly Namespace[], flag: string | undefined, excluded: readonly string[]): DryRunTarget {
  if (flag !== undefined) return { namespace: flag, why: '--namespace' };
  const first = enabledNamespaces(namespaces, excluded)[0];
  if (first === undefined) {
    return { none: `no namespace is labelled ${SELECTION_LABEL}=enabled; pass --namespace to try one (the probe pod opts in)` };
  }
  return { namespace: nameOf(first), why: `first namespace labelled ${SELECTION_LABEL}=enabled` };
}

/**
 * The pod created with dryRun=All. It opts in by label, so it is selected in an enabled namespace (the namespace
 * entry) and in an unlabelled one (the pod entry) alike. Its own container meets the restricted Pod Security
 * level, so a rejection can only come from what was injected. Nothing is stored, nothing is pulled.
 */
export function probePod(): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: PROBE_POD_PREFIX,
      labels: { [SELECTION_LABEL]: 'enabled', 'app.kubernetes.io/name': 'sidecar-injector-check' },
    },
    spec: {
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65535, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.9',
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '10m', memory: '16Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

export interface NamespaceSummary {
  enabled: { name: string; podSecurity: PodSecurityLevel; podSecurityLabelled: boolean }[];
  disabled: string[];
  /** Labelled enabled but never injected (system namespaces, the injector's own). */
  excludedButEnabled: string[];
  /** A label value that is neither enabled nor disabled: no entry selects such a namespace. */
  invalidLabel: { name: string; value: string }[];
}

export function summariseNamespaces(
  namespaces: readonly Namespace[],
  excluded: readonly string[],
  podSecurityDefault: PodSecurityLevel,
): NamespaceSummary {
  const summary: NamespaceSummary = { enabled: [], disabled: [], excludedButEnabled: [], invalidLabel: [] };
  for (const ns of enabledNamespaces(namespaces, excluded)) {
    const level = enforceLevel(ns.metadata?.labels);
    summary.enabled.push({ name: nameOf(ns), podSecurity: level ?? podSecurityDefault, podSecurityLabelled: level !== undefined });
  }
  for (const ns of [...namespaces].sort((a, b) => nameOf(a).localeCompare(nameOf(b)))) {
    const value = labelOf(ns, SELECTION_LABEL);
    if (value === undefined) continue;
    if (value === 'disabled') summary.disabled.push(nameOf(ns));
    else if (value === 'enabled' && isExcluded(nameOf(ns), excluded)) summary.excludedButEnabled.push(nameOf(ns));
    else if (value !== 'enabled') summary.invalidLabel.push({ name: nameOf(ns), value });
  }
  return summary;
}

