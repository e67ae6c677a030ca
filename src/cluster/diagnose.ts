/**
 * `sidecar-injector check`, the checks: what the fetched objects mean. Every check has a fixed id and always
 * appears, in a fixed order, so the JSON output has a stable shape. Pure: src/cluster/check-targets.ts says what
 * to fetch and holds the facts' shape, src/tls/chain.ts verifies certificates.
 */
import { X509Certificate } from 'node:crypto';
import type { MutatingWebhook, MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { SELECTION_LABEL, STATUS_ANNOTATION } from '../core/labels.js';
import { isStatusError, parseStatus } from '../core/status.js';
import type { PodSecurityLevel, SidecarMode } from '../core/types.js';
import { certificateValidity } from '../tls/certificates.js';
import { pemCertificates, subjectCn, day, readCaBundle, verifyServedChain } from '../tls/chain.js';
import { age, type Workload } from '../audit/workloads.js';
import { WEBHOOK_ENTRY_NAMES, DEFAULT_TLS_SECRET, ourEntries, entriesOrAll, webhookEndpoint, summariseNamespaces, type WebhookEndpoint, type CheckFacts, type NamespaceSummary } from './check-targets.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A serving certificate or CA this close to its end is worth a warning. */
const EXPIRY_WARNING_DAYS = 14;

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export type CheckId =
  | 'api-server'
  | 'webhook-configuration'
  | 'webhook-entries'
  | 'ca-bundle'
  | 'served-certificate'
  | 'service'
  | 'endpoints'
  | 'namespaces'
  | 'pod-security'
  | 'dry-run'
  | 'missed-pods';

export const CHECKS: readonly { id: CheckId; title: string }[] = [
  { id: 'api-server', title: 'API server' },
  { id: 'webhook-configuration', title: 'webhook configuration' },
  { id: 'webhook-entries', title: 'webhook entries' },
  { id: 'ca-bundle', title: 'caBundle' },
  { id: 'served-certificate', title: 'served certificate' },
  { id: 'service', title: 'Service' },
  { id: 'endpoints', title: 'endpoints' },
  { id: 'namespaces', title: 'labelled namespaces' },
  { id: 'pod-security', title: 'Pod Security' },
  { id: 'dry-run', title: 'dry-run pod' },
  { id: 'missed-pods', title: 'pods without the sidecar' },
];

export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  message: string;
  details: string[];
}


function result(id: CheckId, status: CheckStatus, message: string, details: string[] = []): CheckResult {
  return { id, status, message, details };
}

function worst(statuses: readonly CheckStatus[]): CheckStatus {
  if (statuses.includes('fail')) return 'fail';
  if (statuses.includes('warn')) return 'warn';
  return 'pass';
}

/** kubernetes-types leaves `resources` and `scope` out of RuleWithOperations (they come from an embedded Rule). */
type WebhookRule = NonNullable<MutatingWebhook['rules']>[number] & { resources?: string[]; scope?: string };

function coversPodCreate(entry: MutatingWebhook): boolean {
  return ((entry.rules ?? []) as WebhookRule[]).some(
    (rule) =>
      (rule.apiGroups ?? []).some((g) => g === '' || g === '*') &&
      (rule.apiVersions ?? []).some((v) => v === 'v1' || v === '*') &&
      (rule.resources ?? []).some((r) => r === 'pods' || r === '*') &&
      (rule.operations ?? []).some((o) => o === 'CREATE' || o === '*'),
  );
}

function selectsLabel(entry: MutatingWebhook, value: 'enabled' | 'absent'): boolean {
  const selector = entry.namespaceSelector;
  if (value === 'enabled') {
    return (
      selector?.matchLabels?.[SELECTION_LABEL] === 'enabled' ||
      (selector?.matchExpressions ?? []).some((e) => e.key === SELECTION_LABEL && e.operator === 'In' && e.values?.length === 1 && e.values[0] === 'enabled')
    );
  }
  return (selector?.matchExpressions ?? []).some((e) => e.key === SELECTION_LABEL && e.operator === 'DoesNotExist');
}

function checkEntries(config: MutatingWebhookConfiguration): CheckResult {
  const entries = ourEntries(config);
  const present = new Set(entries.map((e) => e.name));
  const missing = WEBHOOK_ENTRY_NAMES.filter((name) => !present.has(name));
  const problems: { status: CheckStatus; text: string }[] = [];
  for (const name of missing) {
    problems.push({ status: 'fail', text: `entry ${name} is missing` });
  }
  const others = (config.webhooks ?? []).filter((w) => !WEBHOOK_ENTRY_NAMES.includes(w.name)).map((w) => w.name);
  if (others.length > 0) problems.push({ status: 'warn', text: `other entries in this configuration: ${others.join(', ')}` });
  const endpoints = new Set<string>();
  for (const entry of entries) {
    const name = entry.name;
    if (!coversPodCreate(entry)) problems.push({ status: 'fail', text: `${name}: its rules do not cover pods CREATE (v1): never called for pods` });
    const versions = entry.admissionReviewVersions ?? [];
    if (!versions.includes('v1') && !versions.includes('v1beta1')) {
      problems.push({ status: 'fail', text: `${name}: admissionReviewVersions [${versions.join(', ')}] has neither v1 nor v1beta1` });
    }
    if (entry.sideEffects !== 'None' && entry.sideEffects !== 'NoneOnDryRun') {
      problems.push({ status: 'warn', text: `${name}: sideEffects ${entry.sideEffects ?? 'unset'}: dry-run requests (kubectl --dry-run=server) are refused` });
    }
    if (name === 'namespace.sidecar-injector.io' && !selectsLabel(entry, 'enabled')) {
      problems.push({ status: 'warn', text: `${name}: namespaceSelector does not require ${SELECTION_LABEL}=enabled` });
    }
    if (name === 'pod.sidecar-injector.io' && !selectsLabel(entry, 'absent')) {
      problems.push({
        status: 'warn',
        text: `${name}: namespaceSelector does not require ${SELECTION_LABEL} to be absent: a pod could be sent by both entries`,
      });
    }
    const clientConfig = entry.clientConfig;
    if (clientConfig.url === undefined && clientConfig.service === undefined) {
      problems.push({ status: 'fail', text: `${name}: clientConfig has neither url nor service` });
    }
    const service = clientConfig.service;
    endpoints.add(clientConfig.url ?? (service ? `${service.namespace}/${service.name}:${service.port ?? 443}${service.path ?? ''}` : ''));
  }
  if (endpoints.size > 1) problems.push({ status: 'warn', text: `the entries point at different endpoints: ${[...endpoints].join(', ')}` });
  const first = entries[0];
  const summary =
    first === undefined
      ? 'none of our entries'
      : `${entries.map((e) => e.name).join(', ')}: failurePolicy ${first.failurePolicy ?? 'Fail'}` +
        `${first.failurePolicy === 'Fail' ? ' (fail-closed)' : ''}, sideEffects ${first.sideEffects ?? 'unset'}, ` +
        `timeoutSeconds ${first.timeoutSeconds ?? 10}, reinvocationPolicy ${first.reinvocationPolicy ?? 'Never'}`;
  const status = worst(problems.map((p) => p.status));
  const message = status === 'pass' ? summary : problems.filter((p) => p.status === status).map((p) => p.text).join('; ');
  return result('webhook-entries', status, message, status === 'pass' ? [] : [summary, ...problems.filter((p) => p.status !== status).map((p) => p.text)]);
}

interface Bundles {
  certificates: string[];
  result: CheckResult;
}

function checkCaBundles(config: MutatingWebhookConfiguration, endpoint: WebhookEndpoint | undefined, now: Date): Bundles {
  const entries = entriesOrAll(config);
  const problems: string[] = [];
  const details: string[] = [];
  const all = new Set<string>();
  const texts = new Set<string>();
  for (const entry of entries) {
    const reading = readCaBundle(entry.clientConfig.caBundle);
    if (!reading.ok) {
      problems.push(`${entry.name}: caBundle ${reading.problem}`);
      continue;
    }
    texts.add(reading.certificates.join('\n'));
    for (const pem of reading.certificates) all.add(pem);
  }
  const certificates = [...all];
  const expiring: string[] = [];
  for (const pem of certificates) {
    const { notAfter } = certificateValidity(pem);
    const cn = subjectCn(new X509Certificate(pem));
    if (notAfter.getTime() <= now.getTime()) problems.push(`CA ${cn} expired at ${notAfter.toISOString()}`);
    else if (notAfter.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * DAY_MS) expiring.push(`CA ${cn} expires at ${notAfter.toISOString()}`);
  }
  if (texts.size > 1) details.push('the entries carry different caBundles (expected only while a CA rotates)');
  if (problems.length > 0) {
    // With a url, an absent caBundle means the system trust roots: legitimate for a publicly signed webhook.
    const onlyAbsentWithUrl = endpoint?.kind === 'url' && problems.every((p) => p.endsWith('caBundle absent'));
    const status: CheckStatus = onlyAbsentWithUrl ? 'warn' : 'fail';
    const hint = onlyAbsentWithUrl
      ? 'the API server will verify the webhook against its system trust roots'
      : 'the API server cannot verify the webhook, every call fails (self-managed: is the server running? cert-manager: is its CA injector running?)';
    return { certificates, result: result('ca-bundle', status, `${problems.join('; ')}: ${hint}`, details) };
  }
  const summary = certificates
    .map((pem) => `${subjectCn(new X509Certificate(pem))} (until ${day(certificateValidity(pem).notAfter)})`)
    .join(', ');
  if (expiring.length > 0) return { certificates, result: result('ca-bundle', 'warn', expiring.join('; '), [summary, ...details]) };
  return {
    certificates,
    result: result('ca-bundle', 'pass', `${certificates.length} CA certificate${certificates.length === 1 ? '' : 's'}: ${summary}`, details),
  };
}

function checkServed(facts: CheckFacts, endpoint: WebhookEndpoint | undefined, caCertificates: readonly string[]): CheckResult {
  const served = facts.served;
  if (endpoint === undefined) return result('served-certificate', 'skip', 'no usable clientConfig');
  if (caCertificates.length === 0) {
    if (served?.reached !== true) return result('served-certificate', 'skip', 'nothing to verify against (no caBundle)');
  }
  const now = facts.now;
  if (served !== undefined && served.reached) {
    if (caCertificates.length === 0) {
      return result('served-certificate', 'warn', `${served.target} answered; no caBundle to verify it against (system trust roots apply)`);
    }
    const verdict = verifyServedChain(served.chain, caCertificates, endpoint.host, now);
    if (!verdict.ok) return result('served-certificate', 'fail', `${served.target}: ${verdict.problem}: the API server will refuse it`);
    const soon = verdict.notAfter.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * DAY_MS;
    return result(
      'served-certificate',
      soon ? 'warn' : 'pass',
      `${served.target} presents ${verdict.summary}; verified against the caBundle for ${endpoint.host}${soon ? ' (renew it soon)' : ''}`,
    );
  }
  const unreachable =
    served === undefined
      ? 'not probed'
      : 'skipped' in served
        ? served.skipped
        : `${served.target} not reachable from here (${served.error})`;
  // The Service is out of reach from outside the cluster: the Secret the server serves from is the next best thing.
  const secret = facts.tlsSecret;
  if (endpoint.kind === 'service' && secret !== undefined) {
    const secretName = `Secret ${endpoint.namespace}/${secret.name ?? DEFAULT_TLS_SECRET}`;
    if ('found' in secret && secret.found) {
      const encoded = secret.object.data?.['tls.crt'];
      if (encoded === undefined) return result('served-certificate', 'fail', `${unreachable}; ${secretName} has no tls.crt`);
      const chain = pemCertificates(Buffer.from(encoded, 'base64').toString('utf8'));
      const verdict = verifyServedChain(chain, caCertificates, endpoint.host, now);
      if (!verdict.ok) return result('served-certificate', 'fail', `${unreachable}; ${secretName}: ${verdict.problem}`);
      return result('served-certificate', 'warn', unreachable, [`${secretName} holds ${verdict.summary}; verified against the caBundle for ${endpoint.host}`]);
    }
    const why = 'error' in secret ? secret.error : 'not found';
    return result('served-certificate', 'warn', unreachable, [`${secretName} could not be checked instead: ${why}`]);
  }
  return result('served-certificate', 'warn', unreachable, ['the dry-run pod below shows whether the API server reaches it']);
}

function readyEndpoints(slices: readonly EndpointSlice[]): string[] {
  const addresses: string[] = [];
  for (const slice of slices) {
    for (const endpoint of slice.endpoints) {
      // ready unset means unknown, which consumers treat as ready (discovery/v1 API docs).
      if (endpoint.conditions?.ready === false) continue;
      addresses.push(...endpoint.addresses);
    }
  }
  return [...new Set(addresses)];
}

function checkService(facts: CheckFacts, endpoint: WebhookEndpoint | undefined, failurePolicy: string): CheckResult[] {
  if (endpoint?.kind !== 'service') {
    const why = endpoint === undefined ? 'no usable clientConfig' : `clientConfig.url ${endpoint.url}: no Service involved`;
    return [result('service', 'skip', why), result('endpoints', 'skip', why)];
  }
  const ref = `${endpoint.namespace}/${endpoint.name}`;
  const consequence =
    failurePolicy === 'Fail'
      ? 'the API server cannot reach the webhook: pods in selected namespaces are REFUSED (failurePolicy Fail)'
      : 'the API server cannot reach the webhook: pods are created WITHOUT the sidecar (failurePolicy Ignore)';
  const results: CheckResult[] = [];
  const lookup = facts.service;
  if (lookup === undefined || 'error' in lookup) {
    results.push(result('service', 'warn', `Service ${ref} could not be read: ${lookup && 'error' in lookup ? lookup.error : 'not fetched'}`));
  } else if (!lookup.found) {
    results.push(result('service', 'fail', `Service ${ref} not found: ${consequence}`));
  } else {
    const ports = lookup.object.spec?.ports ?? [];
    const port = ports.find((p) => p.port === endpoint.port);
    results.push(
      port === undefined
        ? result('service', 'fail', `Service ${ref} has no port ${endpoint.port} (ports: ${ports.map((p) => p.port).join(', ') || 'none'}): ${consequence}`)
        : result('service', 'pass', `Service ${ref} port ${endpoint.port} → ${String(port.targetPort ?? endpoint.port)}`),
    );
  }
  const slices = facts.endpointSlices;
  if (slices === undefined || 'error' in slices) {
    results.push(result('endpoints', 'warn', `EndpointSlices of ${ref} could not be read: ${slices && 'error' in slices ? slices.error : 'not fetched'}`));
  } else {
    const ready = readyEndpoints(slices.items);
    results.push(
      ready.length === 0
        ? result('endpoints', 'fail', `no ready endpoint behind Service ${ref}: ${consequence}`)
        : result('endpoints', 'pass', `${ready.length} ready endpoint${ready.length === 1 ? '' : 's'}: ${ready.join(', ')}`),
    );
  }
  return results;
}

function list(names: readonly string[], max = 10): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

function checkNamespaces(summary: NamespaceSummary): CheckResult {
  const details: string[] = [];
  if (summary.disabled.length > 0) details.push(`${SELECTION_LABEL}=disabled (pod opt-in blocked too): ${list(summary.disabled)}`);
  const warnings: string[] = [];
  if (summary.excludedButEnabled.length > 0) warnings.push(`labelled enabled but never injected (excluded): ${list(summary.excludedButEnabled)}`);
  if (summary.invalidLabel.length > 0) {
    warnings.push(
      `${SELECTION_LABEL} is neither enabled nor disabled, so no entry selects pods there: ` +
        list(summary.invalidLabel.map((n) => `${n.name} (${n.value})`)),
    );
  }
  const enabled = summary.enabled.map((n) => n.name);
  if (enabled.length === 0) {
    return result(
      'namespaces',
      'warn',
      `no namespace labelled ${SELECTION_LABEL}=enabled: only pods labelled ${SELECTION_LABEL}=enabled are injected`,
      [...warnings, ...details],
    );
  }
  const message = `${enabled.length} enabled: ${list(enabled)}`;
  if (warnings.length > 0) return result('namespaces', 'warn', warnings.join('; '), [message, ...details]);
  return result('namespaces', 'pass', message, details);
}

const REDUCTION: Record<PodSecurityLevel, string> = {
  privileged: 'full sidecar',
  baseline: 'sidecar without SYS_PTRACE: it cannot inspect or signal the app\'s processes',
  restricted: 'sidecar without capabilities, as user 65534: it cannot inspect or signal the app\'s processes',
};

function checkPodSecurity(summary: NamespaceSummary, podSecurityDefault: PodSecurityLevel): CheckResult {
  if (summary.enabled.length === 0) return result('pod-security', 'skip', 'no enabled namespace');
  const reduced = summary.enabled.filter((n) => n.podSecurity !== 'privileged');
  const details = reduced.map(
    (n) => `${n.name}: enforce ${n.podSecurity}${n.podSecurityLabelled ? '' : ' (podSecurity.defaultLevel)'}: ${REDUCTION[n.podSecurity]}`,
  );
  if (reduced.length === 0) {
    return result('pod-security', 'pass', `every enabled namespace allows the full sidecar (privileged; unlabelled ones assumed ${podSecurityDefault})`);
  }
  return result('pod-security', 'warn', `${reduced.length} of ${summary.enabled.length} enabled namespaces reduce the sidecar`, details);
}

export interface DryRunReading {
  injected: boolean;
  mode?: SidecarMode;
  podSecurityLevel?: PodSecurityLevel;
  reduced?: string[];
}

/** Whether a pod, as the API server returned it, carries our sidecar (by the status annotation it records). */
export function readInjection(pod: Pod | undefined): DryRunReading {
  const text = pod?.metadata?.annotations?.[STATUS_ANNOTATION];
  if (text === undefined) return { injected: false };
  const status = parseStatus(text);
  if (isStatusError(status)) return { injected: false };
  const containers = [...(pod?.spec?.containers ?? []), ...(pod?.spec?.initContainers ?? [])];
  if (!containers.some((c) => c.name === status.sidecar)) return { injected: false };
  return { injected: true, mode: status.mode, podSecurityLevel: status.podSecurityLevel, reduced: status.reduced };
}

function checkDryRun(facts: CheckFacts): CheckResult {
  const target = facts.dryRunTarget;
  if (target === undefined) return result('dry-run', 'skip', 'not attempted');
  if ('skipped' in target) return result('dry-run', 'skip', target.skipped);
  if ('none' in target) return result('dry-run', 'warn', `skipped: ${target.none}`);
  const outcome = facts.dryRun;
  if (outcome === undefined) return result('dry-run', 'skip', 'not attempted');
  const where = `in namespace ${outcome.namespace} (${target.why})`;
  if ('error' in outcome) return result('dry-run', 'fail', `could not create a dry-run pod ${where}: ${outcome.error}`);
  const warnings = outcome.warnings.map((w) => `warning: ${w}`);
  if (outcome.status >= 300 || outcome.pod === undefined) {
    return result('dry-run', 'fail', `dry-run pod ${where} refused (HTTP ${outcome.status}): ${outcome.message ?? 'no message'}`, warnings);
  }
  const reading = readInjection(outcome.pod);
  if (!reading.injected) {
    return result(
      'dry-run',
      'fail',
      `dry-run pod ${where} came back WITHOUT the sidecar: the API server did not call the webhook, or the call failed ` +
        '(failurePolicy Ignore hides that: see the API server and webhook logs)',
      warnings,
    );
  }
  const reduced = reading.reduced !== undefined && reading.reduced.length > 0 ? `, reduced: ${reading.reduced.join(', ')}` : '';
  return result(
    'dry-run',
    'pass',
    `dry-run pod ${where} came back with the sidecar (${reading.mode ?? '?'}, Pod Security ${reading.podSecurityLevel ?? '?'}${reduced})`,
    warnings,
  );
}

function workloadLine(workload: Workload, now: Date): string {
  const what = `${workload.namespace} ${workload.kind.toLowerCase()}/${workload.name}`;
  const count = `${workload.pods} pod${workload.pods === 1 ? '' : 's'}, oldest ${age(workload.oldest, now)}`;
  return `${what}: ${count}: ${workload.fix ?? `not restarted: ${workload.reason ?? 'unknown owner'}`}`;
}

function byNamespaceText(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([ns, n]) => `${ns} ${n}`)
    .join(', ');
}

/** Pods selected for injection that carry no sidecar: the webhook was not called, or failed open, at their creation. */
function checkMissedPods(facts: CheckFacts): CheckResult {
  const missed = facts.missedPods;
  if (missed === undefined) return result('missed-pods', 'skip', 'not looked at');
  if ('skipped' in missed) return result('missed-pods', 'skip', missed.skipped);
  const source = `judged with the configuration from ${missed.configSource}`;
  if (!missed.ok) {
    const hint = missed.forbidden ? ': check needs permission to list pods (cluster-wide for pods opted in by label)' : '';
    return result('missed-pods', 'warn', `${missed.error}${hint}`, [source]);
  }
  const { result: scan, workloads } = missed;
  const staleCount = Object.values(scan.staleByNamespace).reduce((a, b) => a + b, 0);
  const details: string[] = [];
  const stale =
    staleCount === 0
      ? []
      : [
          `${staleCount} pod${staleCount === 1 ? '' : 's'} carry a sidecar older than today's configuration (stale, by namespace: ` +
            `${byNamespaceText(scan.staleByNamespace)}), e.g. ${scan.staleExamples.map((e) => `${e.namespace}/${e.name} (${e.differences.join(', ')})`).join('; ')}`,
        ];
  const looked = `${scan.scanned} pod${scan.scanned === 1 ? '' : 's'} looked at in ${scan.requests} request${scan.requests === 1 ? '' : 's'}`;
  if (scan.missed.length === 0) return result('missed-pods', 'pass', `${looked}: none is missing the sidecar`, [...stale, source]);
  details.push(...workloads.map((w) => workloadLine(w, facts.now)));
  details.push(...stale, source, 'restart the workloads listed: sidecar-injector repair (a dry run unless --yes)');
  const message =
    `${scan.missed.length} pod${scan.missed.length === 1 ? '' : 's'} in ${workloads.length} workload${workloads.length === 1 ? '' : 's'} ` +
    `should carry the sidecar but do not (created while the webhook was not called or failed open; ${looked})`;
  return result('missed-pods', facts.strict === true ? 'fail' : 'warn', message, details);
}

/** Every check, in CHECKS order. Checks that depend on something that failed are skipped with the reason. */
export function diagnose(facts: CheckFacts): CheckResult[] {
  const results: CheckResult[] = [];
  const skipRest = (why: string): CheckResult[] => {
    const done = new Set(results.map((r) => r.id));
    return [...results, ...CHECKS.filter((c) => !done.has(c.id)).map((c) => result(c.id, 'skip', why))];
  };

  const api = facts.apiServer;
  if ('error' in api) {
    // No server at all means the kubeconfig itself was the problem: its error says everything.
    results.push(result('api-server', 'fail', api.server === '' ? api.error : `cannot reach ${api.server}: ${api.error}`));
    return skipRest('the API server is not reachable');
  }
  results.push(result('api-server', 'pass', `${api.server}${api.version === undefined ? '' : `, Kubernetes ${api.version}`}`));

  const lookup = facts.webhookConfiguration;
  const ref = `MutatingWebhookConfiguration ${facts.webhookConfigurationName}`;
  let config: MutatingWebhookConfiguration | undefined;
  if (lookup === undefined || 'error' in lookup) {
    results.push(result('webhook-configuration', 'fail', `${ref} could not be read: ${lookup && 'error' in lookup ? lookup.error : 'not fetched'}`));
  } else if (!lookup.found) {
    results.push(result('webhook-configuration', 'fail', `${ref} not found: nothing is injected (install an overlay from manifests/)`));
  } else {
    config = lookup.object;
    results.push(result('webhook-configuration', 'pass', `${ref} registered`));
  }

  let endpoint: WebhookEndpoint | undefined;
  if (config === undefined) {
    for (const id of ['webhook-entries', 'ca-bundle', 'served-certificate', 'service', 'endpoints'] as const) {
      results.push(result(id, 'skip', 'no webhook configuration'));
    }
  } else {
    endpoint = webhookEndpoint(config);
    results.push(checkEntries(config));
    const bundles = checkCaBundles(config, endpoint, facts.now);
    results.push(bundles.result);
    results.push(checkServed(facts, endpoint, bundles.certificates));
    const failurePolicy = entriesOrAll(config)[0]?.failurePolicy ?? 'Fail';
    results.push(...checkService(facts, endpoint, failurePolicy));
  }

  const namespaces = facts.namespaces;
  if (namespaces === undefined || 'error' in namespaces) {
    const why = namespaces && 'error' in namespaces ? namespaces.error : 'not fetched';
    results.push(result('namespaces', 'warn', `namespaces could not be listed: ${why}`));
    results.push(result('pod-security', 'skip', 'namespaces could not be listed'));
  } else {
    const summary = summariseNamespaces(namespaces.items, facts.excludedNamespaces, facts.podSecurityDefault);
    results.push(checkNamespaces(summary));
    results.push(checkPodSecurity(summary, facts.podSecurityDefault));
  }

  results.push(checkDryRun(facts));
  results.push(checkMissedPods(facts));
  const order = new Map(CHECKS.map((c, index) => [c.id, index]));
  return results.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
}

/** 0 when nothing failed, 1 otherwise. */
export function exitCodeFor(results: readonly CheckResult[]): number {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
