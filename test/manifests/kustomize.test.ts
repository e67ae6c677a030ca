/**
 * Builds every kustomization under manifests/ with `kubectl kustomize` (offline) and checks the rendered objects
 * against the contract: who gets injected, the admission protocol, Pod Security of the injector itself and
 * least-privilege RBAC. Skips, saying why, when kubectl is not installed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { MutatingWebhook, MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Container, Namespace, PodSpec, Service } from 'kubernetes-types/core/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { ClusterRoleBinding, PolicyRule, Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_AUDIT, parseConfig } from '../../src/config/parse.js';
import { defaultConfig } from '../../src/core/defaults.js';
import { selectionSkipAmong } from '../../src/core/selection.js';
import { repoRoot } from '../support/fixtures.js';
import { WORKER_MAX_OLD_GENERATION_MB, WORKER_MAX_YOUNG_GENERATION_MB } from '../../src/http/offload.js';

const run = promisify(execFile);

function kubectlAvailable(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}

const hasKubectl = kubectlAvailable();
const suiteName = hasKubectl
  ? 'kustomize manifests'
  : 'kustomize manifests (SKIPPED: `kubectl` not found on PATH; install kubectl >= 1.27 to build manifests/)';
if (!hasKubectl) console.warn(`test/manifests: ${suiteName}`);

const manifestsDir = join(repoRoot, 'manifests');
const NAMESPACE = 'sidecar-injector';
const NAME = 'sidecar-injector';
const TLS_SECRET = 'sidecar-injector-tls';
const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

type BuildName = 'base' | 'self-managed' | 'cert-manager' | 'self-managed + fail-closed + network-policy';

interface Build {
  name: BuildName;
  docs: Manifest[];
  failurePolicy: 'Ignore' | 'Fail';
  /** The RBAC for self-managed certificates (Secret and caBundle writes) is granted. */
  certWrites: boolean;
  selfManagedFlag: boolean;
  networkPolicy: boolean;
  certManager: boolean;
}

async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
  return parseAllDocuments(stdout).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as Manifest;
  });
}

function all<T>(docs: Manifest[], kind: string): T[] {
  return docs.filter((d) => d.kind === kind) as unknown as T[];
}

function one<T>(docs: Manifest[], kind: string, name = NAME): T {
  const found = docs.filter((d) => d.kind === kind && d.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0] as unknown as T;
}

function podSpecOf(docs: Manifest[]): PodSpec {
  return one<Deployment>(docs, 'Deployment').spec!.template.spec!;
}

function injectorContainer(docs: Manifest[]): Container {
  const containers = podSpecOf(docs).containers;
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

function flagValue(args: readonly string[], flag: string): string {
  const index = args.indexOf(flag);
  expect(index, `${flag} in args`).toBeGreaterThanOrEqual(0);
  const value = args[index + 1];
  expect(value, `value of ${flag}`).toBeDefined();
  return value!;
}

/** Kubernetes label-selector semantics (an absent selector matches everything). */
function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = key in labels;
    const ok =
      operator === 'In' ? present && values.includes(labels[key]!)
      : operator === 'NotIn' ? !present || !values.includes(labels[key]!)
      : operator === 'Exists' ? present
      : operator === 'DoesNotExist' ? !present
      : (() => { throw new Error(`unknown operator ${operator}`); })();
    if (!ok) return false;
  }
  return true;
}

function sortedRule(rule: PolicyRule): PolicyRule {
  const sorted = (list?: string[]) => (list ? [...list].sort() : undefined);
  return {
    apiGroups: sorted(rule.apiGroups),
    resources: sorted(rule.resources),
    ...(rule.resourceNames ? { resourceNames: sorted(rule.resourceNames) } : {}),
    verbs: sorted(rule.verbs)!,
  };
}

const EXPECTED_CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
];
const CABUNDLE_RULE: PolicyRule = {
  apiGroups: ['admissionregistration.k8s.io'],
  resources: ['mutatingwebhookconfigurations'],
  resourceNames: [NAME],
  verbs: ['get', 'patch', 'update'],
};
const EXPECTED_SECRET_RULES: PolicyRule[] = [
  // list/watch are name-restricted too: the API server authorizes a metadata.name field-selector list/watch as a
  // request for that name.
  { apiGroups: [''], resources: ['secrets'], resourceNames: [TLS_SECRET], verbs: ['get', 'list', 'patch', 'update', 'watch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

describe.skipIf(!hasKubectl)(suiteName, () => {
  const builds: Build[] = [];
  let tempOverlay = '';

  beforeAll(async () => {
    tempOverlay = await mkdtemp(join(tmpdir(), 'sidecar-injector-overlay-'));
    // kustomize refuses absolute paths as kustomization roots: refer to the repository relatively.
    const rel = (path: string) => relative(tempOverlay, join(manifestsDir, path));
    await writeFile(
      join(tempOverlay, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        `  - ${rel('overlays/self-managed')}`,
        'components:',
        `  - ${rel('components/fail-closed')}`,
        `  - ${rel('components/network-policy')}`,
        '',
      ].join('\n'),
    );
    const [base, selfManaged, certManager, combined] = await Promise.all([
      kustomize(join(manifestsDir, 'base')),
      kustomize(join(manifestsDir, 'overlays', 'self-managed')),
      kustomize(join(manifestsDir, 'overlays', 'cert-manager')),
      kustomize(tempOverlay),
    ]);
    const common = { failurePolicy: 'Ignore', certWrites: true, selfManagedFlag: false, networkPolicy: false, certManager: false } as const;
    builds.push(
      { ...common, name: 'base', docs: base! },
      { ...common, name: 'self-managed', docs: selfManaged!, selfManagedFlag: true },
      { ...common, name: 'cert-manager', docs: certManager!, certWrites: false, certManager: true },
      {
        ...common,
        name: 'self-managed + fail-closed + network-policy',
        docs: combined!,
        failurePolicy: 'Fail',
        selfManagedFlag: true,
        networkPolicy: true,
      },
    );
  });

  afterAll(async () => {
    if (tempOverlay) await rm(tempOverlay, { recursive: true, force: true });
  });

  const names: BuildName[] = ['base', 'self-managed', 'cert-manager', 'self-managed + fail-closed + network-policy'];
  const build = (name: BuildName): Build => builds.find((b) => b.name === name)!;

  describe.each(names)('%s', (name) => {
    it('renders the expected objects, namespaced ones in the injector namespace, cluster-scoped ones without', () => {
      const b = build(name);
      const kinds = b.docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
      const expected = [
        'Namespace/sidecar-injector',
        'ServiceAccount/sidecar-injector',
        'ClusterRole/sidecar-injector',
        'ClusterRoleBinding/sidecar-injector',
        'ConfigMap/sidecar-injector-config',
        'Deployment/sidecar-injector',
        'PodDisruptionBudget/sidecar-injector',
        'Service/sidecar-injector',
        'MutatingWebhookConfiguration/sidecar-injector',
        ...(b.certWrites ? ['Role/sidecar-injector', 'RoleBinding/sidecar-injector'] : []),
        ...(b.networkPolicy ? ['NetworkPolicy/sidecar-injector'] : []),
        ...(b.certManager
          ? [
              'Issuer/sidecar-injector-selfsigned',
              'Certificate/sidecar-injector-ca',
              'Issuer/sidecar-injector-ca',
              'Certificate/sidecar-injector-tls',
            ]
          : []),
      ].sort();
      expect(kinds).toEqual(expected);

      const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
      for (const doc of b.docs) {
        expect(doc.metadata.namespace, `${doc.kind}/${doc.metadata.name}`).toBe(
          clusterScoped.has(doc.kind) ? undefined : NAMESPACE,
        );
        expect(doc.metadata.labels?.['app.kubernetes.io/name'], `${doc.kind} label`).toBe(NAME);
      }
    });

    it('the injector namespace enforces the restricted Pod Security level and is never injected', () => {
      const ns = one<Namespace>(build(name).docs, 'Namespace', NAMESPACE);
      expect(ns.metadata!.labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
        'sidecar-injection': 'disabled',
      });
    });

    it('Deployment: two replicas, restricted security context, no root, no privilege escalation', () => {
      const b = build(name);
      const deployment = one<Deployment>(b.docs, 'Deployment');
      expect(deployment.spec!.replicas).toBe(2);
      const pod = podSpecOf(b.docs);
      const container = injectorContainer(b.docs);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 });
      expect(container.securityContext?.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
      expect(container.securityContext?.capabilities?.drop).toEqual(['ALL']);
      expect(container.securityContext?.capabilities?.add).toBeUndefined();
      expect(container.securityContext?.privileged).not.toBe(true);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      expect(pod.priorityClassName).toBeUndefined();
      expect(pod.serviceAccountName).toBe(NAME);
      expect(pod.automountServiceAccountToken).toBe(true);
      // SIGTERM: 5 s drain, then in-flight admissions (at most timeoutSeconds 5 each) finish.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(15);
      expect(container.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources?.limits?.memory).toEqual(expect.any(String));
      // V8's old generation is capped under the memory limit, with room for native memory (bench/floods.mjs).
      const limitMiB = mebibytes(String(container.resources?.limits?.memory));
      const nodeOptions = container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
      const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
      expect(oldSpace).toBeGreaterThan(0);
      // Both isolates' heaps (the event loop's and the big-pod worker's) and room for buffers fit in the limit.
      expect(oldSpace + WORKER_MAX_OLD_GENERATION_MB + WORKER_MAX_YOUNG_GENERATION_MB).toBeLessThanOrEqual(limitMiB - 48);
    });

    it('Deployment: ports, probes over HTTPS, POD_NAMESPACE from the downward API, serve arguments', () => {
      const b = build(name);
      const container = injectorContainer(b.docs);
      expect(container.image).toBe('sidecar-injector:0.1.0');
      expect(container.ports).toEqual([
        { name: 'https', containerPort: 8443, protocol: 'TCP' },
        { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
      ]);
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
      if (container.startupProbe) expect(container.startupProbe.httpGet).toMatchObject({ port: 'https', scheme: 'HTTPS' });
      expect(container.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });

      const args = container.args ?? [];
      expect(args[0]).toBe('serve');
      expect(flagValue(args, '--config')).toBe('/etc/sidecar-injector/config.yaml');
      expect(flagValue(args, '--tls-cert')).toBe('/etc/sidecar-injector/tls/tls.crt');
      expect(flagValue(args, '--tls-key')).toBe('/etc/sidecar-injector/tls/tls.key');
      expect(args.includes('--self-managed-certs')).toBe(b.selfManagedFlag);
    });

    it('Deployment: config and certificates mounted as directories (never subPath), so updates reach the pod', () => {
      const b = build(name);
      const pod = podSpecOf(b.docs);
      const container = injectorContainer(b.docs);
      const mounts = container.volumeMounts ?? [];
      for (const mount of mounts) expect(mount.subPath, mount.name).toBeUndefined();
      for (const mount of mounts) expect(mount.subPathExpr, mount.name).toBeUndefined();
      const args = container.args ?? [];

      const configVolume = pod.volumes?.find((v) => v.configMap?.name === 'sidecar-injector-config');
      expect(configVolume).toBeDefined();
      const configMount = mounts.find((m) => m.name === configVolume!.name);
      expect(configMount).toMatchObject({ mountPath: dirname(flagValue(args, '--config')), readOnly: true });
      one<ConfigMap>(b.docs, 'ConfigMap', 'sidecar-injector-config');

      const tlsVolume = pod.volumes?.find((v) => v.secret?.secretName === TLS_SECRET);
      expect(tlsVolume).toBeDefined();
      // Self-managed: the server creates the Secret, so the pod must start without it.
      expect(tlsVolume!.secret!.optional).toBe(b.selfManagedFlag);
      const tlsMount = mounts.find((m) => m.name === tlsVolume!.name);
      expect(tlsMount).toMatchObject({ mountPath: dirname(flagValue(args, '--tls-cert')), readOnly: true });
      expect(dirname(flagValue(args, '--tls-key'))).toBe(tlsMount!.mountPath);
    });

    it('Deployment: replicas spread over nodes; a PodDisruptionBudget keeps one', () => {
      const b = build(name);
      const pod = podSpecOf(b.docs);
      const podLabels = one<Deployment>(b.docs, 'Deployment').spec!.template.metadata!.labels!;
      const spread = pod.topologySpreadConstraints ?? [];
      expect(spread).toContainEqual(
        expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }),
      );
      for (const constraint of spread) expect(selects(constraint.labelSelector, podLabels)).toBe(true);
      const anti = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      expect(anti.length).toBeGreaterThan(0);
      for (const term of anti) expect(selects(term.podAffinityTerm.labelSelector, podLabels)).toBe(true);

      const pdb = one<PodDisruptionBudget>(b.docs, 'PodDisruptionBudget');
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.spec!.minAvailable).toBe(1);
      expect(selects(pdb.spec!.selector, podLabels)).toBe(true);
      expect(selects(one<Deployment>(b.docs, 'Deployment').spec!.selector, podLabels)).toBe(true);
    });

    it('Service: 443 → the https container port (8443), metrics on 9090, selecting the injector pods', () => {
      const b = build(name);
      const service = one<Service>(b.docs, 'Service');
      const podLabels = one<Deployment>(b.docs, 'Deployment').spec!.template.metadata!.labels!;
      expect(service.spec!.ports).toContainEqual(expect.objectContaining({ name: 'https', port: 443, targetPort: 'https' }));
      expect(service.spec!.ports).toContainEqual(expect.objectContaining({ name: 'metrics', port: 9090, targetPort: 'metrics' }));
      expect(selects({ matchLabels: service.spec!.selector ?? {} }, podLabels)).toBe(true);
      expect(Object.keys(service.spec!.selector ?? {}).length).toBeGreaterThan(0);
    });

    it('webhook: exactly the two entries of the contract, pod CREATE only, with the failure policy of this build', () => {
      const b = build(name);
      const config = one<MutatingWebhookConfiguration>(b.docs, 'MutatingWebhookConfiguration');
      expect(config.apiVersion).toBe('admissionregistration.k8s.io/v1');
      const webhooks = config.webhooks ?? [];
      expect(webhooks.map((w) => w.name)).toEqual(['namespace.sidecar-injector.io', 'pod.sidecar-injector.io']);
      for (const webhook of webhooks) {
        expect(webhook.rules).toEqual([
          { apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' },
        ]);
        expect(webhook.failurePolicy).toBe(b.failurePolicy);
        expect(webhook.sideEffects).toBe('None');
        expect(webhook.timeoutSeconds).toBe(5);
        expect(webhook.reinvocationPolicy).toBe('IfNeeded');
        expect(webhook.admissionReviewVersions).toEqual(['v1', 'v1beta1']);
        expect(webhook.matchPolicy).toBe('Equivalent');
        expect(webhook.clientConfig).toEqual({ service: { name: NAME, namespace: NAMESPACE, path: '/mutate', port: 443 } });
        // No caBundle at all: an empty one would wipe the run-time value on every apply.
        expect(webhook.clientConfig.caBundle).toBeUndefined();
      }
      const service = one<Service>(b.docs, 'Service', webhooks[0]!.clientConfig.service!.name);
      expect(service.metadata!.namespace).toBe(webhooks[0]!.clientConfig.service!.namespace);
    });

    it('webhook: selectors as in the contract; the two entries can never both match a pod', () => {
      const b = build(name);
      const [byNamespace, byPod] = one<MutatingWebhookConfiguration>(b.docs, 'MutatingWebhookConfiguration').webhooks as [
        MutatingWebhook,
        MutatingWebhook,
      ];
      expect(byNamespace.namespaceSelector?.matchLabels).toEqual({ 'sidecar-injection': 'enabled' });
      expect(byNamespace.namespaceSelector?.matchExpressions).toEqual([
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...SYSTEM_NAMESPACES, NAMESPACE] },
      ]);
      expect(byNamespace.objectSelector).toEqual({
        matchExpressions: [{ key: 'sidecar-injection', operator: 'NotIn', values: ['disabled'] }],
      });
      expect(byPod.namespaceSelector).toEqual({
        matchExpressions: [
          { key: 'sidecar-injection', operator: 'DoesNotExist' },
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...SYSTEM_NAMESPACES, NAMESPACE] },
        ],
      });
      expect(byPod.objectSelector).toEqual({ matchLabels: { 'sidecar-injection': 'enabled' } });

      // Evaluate both entries over every combination of namespace and pod labels.
      const labelValues = [undefined, 'enabled', 'disabled', 'other'];
      for (const nsName of ['default', 'team-a', ...SYSTEM_NAMESPACES, NAMESPACE]) {
        for (const nsValue of labelValues) {
          for (const podValue of labelValues) {
            const nsLabels: Record<string, string> = { 'kubernetes.io/metadata.name': nsName };
            if (nsValue) nsLabels['sidecar-injection'] = nsValue;
            const podLabels: Record<string, string> = podValue ? { 'sidecar-injection': podValue } : {};
            const matching = [byNamespace, byPod].filter(
              (w) => selects(w.namespaceSelector, nsLabels) && selects(w.objectSelector, podLabels),
            );
            // The code's rule (engine, check, repair, auditor): the YAML must agree with it on every cell.
            const wanted = selectionSkipAmong([...SYSTEM_NAMESPACES, NAMESPACE], nsName, podLabels, nsLabels) === undefined;
            const where = `namespace ${nsName} (${nsValue ?? 'unlabelled'}), pod ${podValue ?? 'unlabelled'}`;
            expect(matching.length, where).toBeLessThanOrEqual(1);
            expect(matching.length === 1, where).toBe(wanted);
          }
        }
      }
    });

    it('RBAC: least privilege, no wildcards, no cluster-wide Secret access, names wherever RBAC honours them', () => {
      const b = build(name);
      const clusterRules = all<Role>(b.docs, 'ClusterRole').flatMap((r) => r.rules ?? []);
      const namespacedRoles = all<Role>(b.docs, 'Role');
      for (const role of namespacedRoles) expect(role.metadata!.namespace).toBe(NAMESPACE);
      const roleRules = namespacedRoles.flatMap((r) => r.rules ?? []);

      for (const rule of [...clusterRules, ...roleRules]) {
        for (const list of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? [], rule.resourceNames ?? []]) {
          expect(list.some((v) => v.includes('*')), JSON.stringify(rule)).toBe(false);
        }
        expect(rule.nonResourceURLs).toBeUndefined();
        // RBAC cannot restrict create/deletecollection by name: such a rule would be dead (or, without names, broad).
        if (rule.verbs.includes('create')) {
          expect(rule.resourceNames, 'create with resourceNames never matches').toBeUndefined();
          expect(rule.verbs).toEqual(['create']);
        }
        for (const forbidden of ['delete', 'deletecollection', 'escalate', 'bind', 'impersonate']) {
          expect(rule.verbs, JSON.stringify(rule)).not.toContain(forbidden);
        }
        for (const resource of rule.resources ?? []) expect(resource.includes('/'), `subresource ${resource}`).toBe(false);
      }
      for (const rule of clusterRules) {
        for (const sensitive of ['secrets', 'configmaps', 'pods', 'serviceaccounts']) {
          expect(rule.resources, `ClusterRole grants ${sensitive}`).not.toContain(sensitive);
        }
      }
      // Objects whose name we know are only ever touched by name (except the unrestrictable create).
      for (const rule of [...clusterRules, ...roleRules]) {
        if (rule.resources?.some((r) => r === 'secrets' || r === 'mutatingwebhookconfigurations') && !rule.verbs.includes('create')) {
          expect(rule.resourceNames, JSON.stringify(rule)).toBeDefined();
        }
      }

      expect(clusterRules.map(sortedRule)).toEqual(
        [...EXPECTED_CLUSTER_RULES, ...(b.certWrites ? [CABUNDLE_RULE] : [])].map(sortedRule),
      );
      expect(roleRules.map(sortedRule)).toEqual(b.certWrites ? EXPECTED_SECRET_RULES.map(sortedRule) : []);

      const subject = { kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE };
      const clusterBinding = one<ClusterRoleBinding>(b.docs, 'ClusterRoleBinding');
      expect(clusterBinding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME });
      expect(clusterBinding.subjects).toEqual([subject]);
      if (b.certWrites) {
        const binding = one<RoleBinding>(b.docs, 'RoleBinding');
        expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME });
        expect(binding.subjects).toEqual([subject]);
      }
      one<Manifest>(b.docs, 'ServiceAccount');
    });

    it('the shipped config.yaml is valid for the server and spells out exactly the defaults', () => {
      const configMap = one<ConfigMap>(build(name).docs, 'ConfigMap', 'sidecar-injector-config');
      expect(Object.keys(configMap.data ?? {})).toEqual(['config.yaml']);
      const result = parseConfig(configMap.data!['config.yaml']!);
      expect(result).toEqual({ ok: true, config: { ...defaultConfig(), audit: DEFAULT_AUDIT } });
    });
  });

  it('self-managed: --self-managed-certs, optional Secret volume, and the rights to create and rotate it', () => {
    const docs = build('self-managed').docs;
    expect(injectorContainer(docs).args).toContain('--self-managed-certs');
    const tls = podSpecOf(docs).volumes!.find((v) => v.secret?.secretName === TLS_SECRET)!;
    expect(tls.secret!.optional).toBe(true);
    expect(all<Role>(docs, 'Role')).toHaveLength(1);
  });

  it('cert-manager: CA chain of Issuers and Certificates, CA injection annotation, files only', () => {
    const docs = build('cert-manager').docs;
    type Certificate = Manifest & {
      spec: {
        isCA?: boolean;
        secretName: string;
        dnsNames?: string[];
        duration?: string;
        renewBefore?: string;
        privateKey?: { algorithm?: string; size?: number };
        issuerRef: { name: string; kind?: string; group?: string };
      };
    };
    type Issuer = Manifest & { spec: { selfSigned?: object; ca?: { secretName: string } } };

    const serving = one<Certificate>(docs, 'Certificate', TLS_SECRET);
    expect(serving.apiVersion).toBe('cert-manager.io/v1');
    expect(serving.spec.secretName).toBe(TLS_SECRET);
    expect(serving.spec.dnsNames).toEqual(
      expect.arrayContaining([
        `${NAME}.${NAMESPACE}.svc`,
        `${NAME}.${NAMESPACE}.svc.cluster.local`,
        `${NAME}.${NAMESPACE}`,
        NAME,
      ]),
    );
    expect(serving.spec.duration).toBe('8760h');
    expect(serving.spec.renewBefore).toBe('2920h');
    expect(serving.spec.privateKey).toMatchObject({ algorithm: 'RSA', size: 2048 });
    expect(serving.spec.isCA ?? false).toBe(false);

    // serving Certificate ← CA Issuer ← CA Certificate ← selfSigned Issuer
    expect(serving.spec.issuerRef).toMatchObject({ kind: 'Issuer' });
    const caIssuer = one<Issuer>(docs, 'Issuer', serving.spec.issuerRef.name);
    expect(caIssuer.spec.ca).toBeDefined();
    const ca = all<Certificate>(docs, 'Certificate').find((c) => c.spec.secretName === caIssuer.spec.ca!.secretName);
    expect(ca).toBeDefined();
    expect(ca!.spec.isCA).toBe(true);
    expect(ca!.spec.privateKey).toMatchObject({ algorithm: 'RSA', size: 2048 });
    const root = one<Issuer>(docs, 'Issuer', ca!.spec.issuerRef.name);
    expect(root.spec.selfSigned).toEqual({});

    const webhook = one<MutatingWebhookConfiguration>(docs, 'MutatingWebhookConfiguration');
    expect(webhook.metadata!.annotations?.['cert-manager.io/inject-ca-from']).toBe(`${serving.metadata.namespace}/${serving.metadata.name}`);
    expect(webhook.webhooks).toHaveLength(2);

    const container = injectorContainer(docs);
    expect(container.args).not.toContain('--self-managed-certs');
    const tls = podSpecOf(docs).volumes!.find((v) => v.secret?.secretName === TLS_SECRET)!;
    expect(tls.secret!.optional).toBe(false);
  });

  it('audit component: read-only pods cluster-wide for the service account, nothing else; the base grants no pods', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sidecar-injector-audit-'));
    try {
      const rel = (path: string) => relative(dir, join(manifestsDir, path));
      await writeFile(
        join(dir, 'kustomization.yaml'),
        ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:', `  - ${rel('overlays/self-managed')}`, 'components:', `  - ${rel('components/audit')}`, ''].join('\n'),
      );
      const docs = await kustomize(dir);
      const role = one<Role>(docs, 'ClusterRole', 'sidecar-injector-audit');
      expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }]);
      const binding = one<ClusterRoleBinding>(docs, 'ClusterRoleBinding', 'sidecar-injector-audit');
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sidecar-injector-audit' });
      const account = one<Deployment>(docs, 'Deployment').spec!.template.spec!.serviceAccountName;
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account, namespace: NAMESPACE }]);
      // Without the component nobody is granted pods.
      const baseRules = all<Role>(build('self-managed').docs, 'ClusterRole').flatMap((r) => r.rules ?? []);
      expect(baseRules.some((r) => (r.resources ?? []).includes('pods'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('network-policy component: webhook port open to the API server, metrics from labelled namespaces, API and DNS egress', () => {
    const docs = build('self-managed + fail-closed + network-policy').docs;
    const policy = one<NetworkPolicy>(docs, 'NetworkPolicy');
    const podLabels = one<Deployment>(docs, 'Deployment').spec!.template.metadata!.labels!;
    expect(selects(policy.spec!.podSelector, podLabels)).toBe(true);
    expect(policy.spec!.policyTypes).toEqual(['Ingress', 'Egress']);

    const ingress = policy.spec!.ingress ?? [];
    const webhookRule = ingress.find((r) => r.ports?.some((p) => p.port === 8443));
    expect(webhookRule).toBeDefined();
    expect(webhookRule!.from).toBeUndefined(); // the API server's address is not predictable
    const metricsRule = ingress.find((r) => r.ports?.some((p) => p.port === 9090));
    expect(metricsRule?.from?.[0]?.namespaceSelector?.matchLabels).toBeDefined();

    const egressPorts = (policy.spec!.egress ?? []).flatMap((r) => r.ports ?? []).map((p) => `${p.protocol}/${p.port}`);
    expect(egressPorts).toEqual(expect.arrayContaining(['TCP/443', 'TCP/6443', 'UDP/53', 'TCP/53']));
  });
});

/** A Kubernetes memory quantity (`192Mi`, `1Gi`) in MiB. */
function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (match === null) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}
