/**
 * `sidecar-injector check`, the pure half: what to look at (the webhook's endpoint, the namespace for the dry-run,
 * the probe pod) and what the fetched objects mean. No client library, no network, no clock: the caller fetches
 * (src/cluster/check-api.ts), passes everything in, and prints the results (src/cli/check.ts).
 *
 * Every check has a fixed id and always appears, in a fixed order, so the JSON output has a stable shape.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { MutatingWebhook, MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Namespace, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { SELECTION_LABEL, STATUS_ANNOTATION } from '../core/labels.js';
import { excludedNamespaceList, namespaceSelected } from '../core/selection.js';
import { isStatusError, parseStatus } from '../core/status.js';
import type { PodSecurityLevel, SidecarMode } from '../core/types.js';
import { certificateValidity } from '../tls/certificates.js';
import type { MissedPodsFacts } from '../audit/cluster-audit.js';
import { age, type Workload } from '../audit/workloads.js';
import { enforceLevel } from './facts.js';

export const WEBHOOK_ENTRY_NAMES: readonly string[] = ['namespace.sidecar-injector.io', 'pod.sidecar-injector.io'];
export const DEFAULT_WEBHOOK_CONFIGURATION = 'sidecar-injector';
export const DEFAULT_TLS_SECRET = 'sidecar-injector-tls';
export const PROBE_POD_PREFIX = 'sidecar-injector-check-';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A serving certificate or CA this close to its end is worth a warning. */
const EXPIRY_WARNING_DAYS = 14;
const MAX_CHAIN_DEPTH = 5;

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

// ---------------------------------------------------------------------------------------------------------------
// What to look at.

export function excludedNamespaces(injectorNamespace: string, configured: readonly string[] = []): string[] {
  return excludedNamespaceList(injectorNamespace, configured);
}

/** Our entries, in WEBHOOK_ENTRY_NAMES order (absent ones left out). */
export function ourEntries(config: MutatingWebhookConfiguration): MutatingWebhook[] {
  const webhooks = config.webhooks ?? [];
  return WEBHOOK_ENTRY_NAMES.flatMap((name) => webhooks.filter((w) => w.name === name));
}

function entriesOrAll(config: MutatingWebhookConfiguration): MutatingWebhook[] {
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

// ---------------------------------------------------------------------------------------------------------------
// Certificates.

/** Every certificate in a PEM bundle. */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** The CN of a distinguished name as Node prints it (one `KEY=value` per line), else the whole name. */
function commonName(dn: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? dn.replace(/\n/g, ', ');
}

function subjectCn(cert: X509Certificate): string {
  return commonName(cert.subject);
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export type CaBundleReading =
  | { ok: true; certificates: string[]; summary: string }
  | { ok: false; problem: string };

/** A caBundle as the API server reads it: base64 of one or more PEM certificates. */
export function readCaBundle(caBundle: string | undefined): CaBundleReading {
  if (caBundle === undefined || caBundle.trim() === '') return { ok: false, problem: 'absent' };
  let text: string;
  try {
    text = Buffer.from(caBundle, 'base64').toString('utf8');
  } catch {
    return { ok: false, problem: 'not base64' };
  }
  const certificates = pemCertificates(text);
  if (certificates.length === 0) return { ok: false, problem: 'holds no PEM certificate' };
  const names: string[] = [];
  for (const pem of certificates) {
    try {
      const cert = new X509Certificate(pem);
      names.push(`${subjectCn(cert)} (until ${day(certificateValidity(pem).notAfter)})`);
    } catch {
      return { ok: false, problem: 'holds a certificate that does not parse' };
    }
  }
  return { ok: true, certificates, summary: names.join(', ') };
}

export type ChainVerdict = { ok: true; summary: string; notAfter: Date } | { ok: false; problem: string };

/**
 * Verifies a served chain (leaf first) the way the API server does: some caBundle certificate signed the leaf,
 * directly or through intermediates the server sent; the leaf's SANs cover `host` (never the CN: Go ignores it);
 * every certificate on the path is within its validity period.
 */
export function verifyServedChain(chain: readonly string[], caBundle: readonly string[], host: string, now: Date): ChainVerdict {
  const [leafPem, ...intermediatePems] = chain;
  if (leafPem === undefined) return { ok: false, problem: 'no certificate was presented' };
  let leaf: X509Certificate;
  let intermediates: X509Certificate[];
  let roots: X509Certificate[];
  try {
    leaf = new X509Certificate(leafPem);
    intermediates = intermediatePems.map((pem) => new X509Certificate(pem));
    roots = caBundle.map((pem) => new X509Certificate(pem));
  } catch (err) {
    return { ok: false, problem: `a certificate does not parse: ${err instanceof Error ? err.message : String(err)}` };
  }
  const covers = isIP(host) !== 0 ? leaf.checkIP(host) !== undefined : leaf.checkHost(host, { subject: 'never' }) !== undefined;
  if (!covers) {
    return { ok: false, problem: `certificate ${subjectCn(leaf)} does not cover ${host} (subjectAltName: ${leaf.subjectAltName ?? 'none'})` };
  }
  const expired = (cert: X509Certificate, what: string): string | undefined => {
    const { notBefore, notAfter } = certificateValidity(cert.toString());
    if (now.getTime() < notBefore.getTime()) return `${what} ${subjectCn(cert)} is not valid before ${notBefore.toISOString()}`;
    if (now.getTime() >= notAfter.getTime()) return `${what} ${subjectCn(cert)} expired at ${notAfter.toISOString()}`;
    return undefined;
  };
  const leafTime = expired(leaf, 'certificate');
  if (leafTime !== undefined) return { ok: false, problem: leafTime };
  const signs = (issuer: X509Certificate, subject: X509Certificate): boolean =>
    subject.checkIssued(issuer) && subject.verify(issuer.publicKey);

  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth += 1) {
    const root = roots.find((r) => signs(r, current));
    if (root !== undefined) {
      const rootTime = expired(root, 'caBundle CA');
      if (rootTime !== undefined) return { ok: false, problem: rootTime };
      const notAfter = certificateValidity(leafPem).notAfter;
      return { ok: true, notAfter, summary: `${subjectCn(leaf)}, signed by ${subjectCn(root)}, valid until ${day(notAfter)}` };
    }
    const next = intermediates.find((i) => i !== current && signs(i, current));
    if (next === undefined) break;
    const nextTime = expired(next, 'intermediate');
    if (nextTime !== undefined) return { ok: false, problem: nextTime };
    current = next;
  }
  return {
    ok: false,
    problem: `certificate ${subjectCn(leaf)} (issuer ${commonName(leaf.issuer)}) is not signed by any caBundle certificate`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The checks.

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
