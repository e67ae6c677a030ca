/**
 * Where the webhook's cluster access comes from, and the KubeConfig that reaches it.
 *
 * `@kubernetes/client-node` costs ~300 ms and ~50 MiB to import, so this module only imports its types
 * statically; the library itself is loaded by `loadKubeConfig`, on the code path that runs only when cluster
 * access is on. Choosing the source is pure: the environment arrives as values (serve.ts reads it).
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorLine } from '../error-line.js';

export type ClusterMode = 'auto' | 'on' | 'off';
export const CLUSTER_MODES: readonly ClusterMode[] = ['auto', 'on', 'off'];

/** The service-account files the kubelet mounts into every pod that automounts its token. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeConfigSource =
  /** `--kubeconfig FILE` or `KUBECONFIG` (which may list several files, merged the way kubectl does). */
  | { kind: 'files'; files: string[]; origin: '--kubeconfig' | 'KUBECONFIG' }
  /** Running in a pod: the API server's Service address from the environment and the mounted token and CA. */
  | { kind: 'in-cluster'; host: string; port: string; serviceAccountDir: string };

export interface ClusterAccessInputs {
  mode: ClusterMode;
  /** The `--kubeconfig` flag. */
  kubeconfigFlag?: string;
  /** The environment, handed in: KUBECONFIG, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT. */
  env: Readonly<Record<string, string | undefined>>;
  /** Whether the service-account token and CA are mounted (see `serviceAccountMounted`). */
  serviceAccountMounted: boolean;
  serviceAccountDir?: string;
}

export type ClusterAccess =
  | { on: false; why: string }
  | { on: true; source: KubeConfigSource }
  | { error: string };

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** True when the token and CA of an automounted service account are present under `dir`. */
export function serviceAccountMounted(dir: string = SERVICE_ACCOUNT_DIR): boolean {
  return existsSync(join(dir, 'token')) && existsSync(join(dir, 'ca.crt'));
}

/**
 * Decides whether the webhook talks to the cluster and through what. An explicit kubeconfig (flag, then
 * KUBECONFIG) wins over the in-cluster service account, as with kubectl. `auto` is on when any source exists;
 * `on` without a source is an error rather than a silent webhook without Pod Security awareness.
 */
export function chooseClusterAccess(inputs: ClusterAccessInputs): ClusterAccess {
  const flag = nonEmpty(inputs.kubeconfigFlag);
  if (inputs.mode === 'off') {
    if (flag !== undefined) return { error: '--kubeconfig has no effect with --cluster off' };
    return { on: false, why: '--cluster off' };
  }
  if (flag !== undefined) return { on: true, source: { kind: 'files', files: [flag], origin: '--kubeconfig' } };
  const envFiles = (inputs.env.KUBECONFIG ?? '')
    .split(delimiter)
    .map((file) => file.trim())
    .filter((file) => file !== '');
  if (envFiles.length > 0) return { on: true, source: { kind: 'files', files: envFiles, origin: 'KUBECONFIG' } };
  const host = nonEmpty(inputs.env.KUBERNETES_SERVICE_HOST);
  if (inputs.serviceAccountMounted && host !== undefined) {
    return {
      on: true,
      source: {
        kind: 'in-cluster',
        host,
        port: nonEmpty(inputs.env.KUBERNETES_SERVICE_PORT) ?? '443',
        serviceAccountDir: inputs.serviceAccountDir ?? SERVICE_ACCOUNT_DIR,
      },
    };
  }
  if (inputs.mode === 'on') {
    return {
      error:
        '--cluster on needs --kubeconfig, KUBECONFIG, or a pod with its service account token mounted ' +
        '(and KUBERNETES_SERVICE_HOST set)',
    };
  }
  return { on: false, why: 'no --kubeconfig, no KUBECONFIG and no service account token: not in a cluster' };
}

/** For logs: where the KubeConfig came from, without credentials. */
export function describeSource(source: KubeConfigSource): string {
  return source.kind === 'in-cluster'
    ? `in-cluster service account (${source.serviceAccountDir})`
    : `${source.origin} ${source.files.join(delimiter)}`;
}

export type LoadedKubeConfig = { ok: true; kubeConfig: KubeConfig; server: string } | { ok: false; error: string };

/** `https://[::1]:443`: an IPv6 literal needs brackets in a URL. */
function serverUrl(host: string, port: string): string {
  return host.includes(':') && !host.startsWith('[') ? `https://[${host}]:${port}` : `https://${host}:${port}`;
}

/**
 * Loads `@kubernetes/client-node` and builds the KubeConfig. Problems (a missing or malformed file, no current
 * context, no cluster) come back as values with a one-line reason, for serve to print before it exits.
 */
export async function loadKubeConfig(source: KubeConfigSource): Promise<LoadedKubeConfig> {
  let k8s: typeof import('@kubernetes/client-node');
  try {
    k8s = await import('@kubernetes/client-node');
  } catch (err) {
    return { ok: false, error: `cannot load @kubernetes/client-node: ${errorLine(err)}` };
  }
  const kubeConfig = new k8s.KubeConfig();
  try {
    if (source.kind === 'in-cluster') {
      // Like KubeConfig.loadFromCluster, but with the address handed in instead of read from process.env.
      // The `tokenFile` provider re-reads the token every minute: bound service-account tokens rotate.
      kubeConfig.loadFromOptions({
        clusters: [
          {
            name: 'in-cluster',
            server: serverUrl(source.host, source.port),
            caFile: join(source.serviceAccountDir, 'ca.crt'),
            skipTLSVerify: false,
          },
        ],
        users: [
          {
            name: 'in-cluster',
            authProvider: { name: 'tokenFile', config: { tokenFile: join(source.serviceAccountDir, 'token') } },
          },
        ],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster' }],
        currentContext: 'in-cluster',
      });
    } else {
      const [first, ...rest] = source.files;
      if (first === undefined) return { ok: false, error: `${source.origin} names no file` };
      kubeConfig.loadFromFile(first);
      for (const file of rest) {
        const more = new k8s.KubeConfig();
        more.loadFromFile(file);
        // kubectl semantics: the first file that sets the current context wins.
        kubeConfig.mergeConfig(more, kubeConfig.currentContext !== undefined && kubeConfig.currentContext !== '');
      }
    }
  } catch (err) {
    return { ok: false, error: `cannot load ${describeSource(source)}: ${errorLine(err)}` };
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) {
    const context = kubeConfig.getCurrentContext();
    return {
      ok: false,
      error:
        context === undefined || context === ''
          ? `${describeSource(source)} sets no current-context`
          : `${describeSource(source)}: current-context "${context}" names no known cluster`,
    };
  }
  return { ok: true, kubeConfig, server: cluster.server };
}
