/**
 * Cluster facts: namespaces (labels, Pod Security level), nodes (kubelet versions) and the API server version,
 * from watches through @kubernetes/client-node — or nothing at all without cluster access, in which case the
 * client library is never loaded. /readyz waits for the watches' first lists.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterFacts } from '../admission/respond.js';
import type { ClusterAccess } from '../cluster/client.js';
import type { ClusterFactsSource } from '../cluster/cluster-facts.js';
import { errorLine } from '../error-line.js';
import type { Part } from './part.js';

export interface ClusterPart extends Part {
  /** The facts for a pod in `namespace` ({} without cluster access). */
  facts(namespace: string): ClusterFacts | Promise<ClusterFacts>;
  /** The loaded kubeconfig, once started with cluster access (self-managed certificates need it). */
  kubeConfig(): KubeConfig | undefined;
}

export function clusterPart(access: Exclude<ClusterAccess, { error: string }>, logger: () => FastifyBaseLogger): ClusterPart {
  let kubeConfig: KubeConfig | undefined;
  let source: ClusterFactsSource | undefined;
  return {
    name: 'cluster',
    facts: (namespace) => source?.clusterFacts(namespace) ?? {},
    kubeConfig: () => kubeConfig,
    async start() {
      const log = logger();
      if (!access.on) {
        log.info({ cluster: 'off', why: access.why }, 'cluster access');
        return;
      }
      const { describeSource, loadKubeConfig } = await import('../cluster/client.js');
      const loaded = await loadKubeConfig(access.source);
      if (!loaded.ok) throw new Error(loaded.error);
      kubeConfig = loaded.kubeConfig;
      log.info({ cluster: 'on', source: describeSource(access.source), server: loaded.server }, 'cluster access');
      const { startClusterFacts } = await import('../cluster/cluster-facts.js');
      try {
        source = await startClusterFacts({ kubeConfig: loaded.kubeConfig, log: log.child({ component: 'cluster' }) });
      } catch (err) {
        log.error({ err }, 'cannot start the cluster watches');
        throw new Error(`cannot start the cluster watches: ${errorLine(err)}`);
      }
    },
    ready: () => !access.on || (source?.ready() ?? false),
    async close() {
      await source?.close();
    },
  };
}
