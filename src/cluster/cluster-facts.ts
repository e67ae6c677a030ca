/**
 * Cluster facts for the webhook, kept current by watches (@kubernetes/client-node informers):
 * - each namespace's labels and Pod Security `enforce` level (namespace watch);
 * - each node's kubelet version, for the oldest one (node watch);
 * - the API server version (`/version`, read at start and every few minutes: clusters get upgraded).
 *
 * Admissions read the caches synchronously; only a namespace the watch has not shown yet costs an API call.
 * Watch failures are logged and the watch restarts with backoff; nothing here ever crashes the process.
 * The decisions themselves live in `facts.ts` (pure, unit-tested); this file is the glue.
 *
 * RBAC: get/list/watch on namespaces, list/watch on nodes; `/version` is readable by everyone.
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { ClusterFacts } from '../admission/respond.js';
import {
  DEFAULT_BACKOFF,
  backoffDelay,
  clusterFactsFrom,
  errorSummary,
  minorVersionOf,
  namespaceFactsOf,
  oldestKubeletVersion,
  slimNamespace,
  slimNode,
  type Backoff,
  type NamespaceFacts,
  type SlimNamespace,
  type SlimNode,
} from './facts.js';
import { stoppableTimers, superviseInformer, type Supervision, type Timers } from './informers.js';

/** Structured logging, as pino (fastify's `log`) provides it. */
export interface ClusterLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface ClusterFactsOptions {
  kubeConfig: KubeConfig;
  log: ClusterLog;
  /** Delays between restarts of a failed watch and retries of `/version`. */
  backoff?: Backoff;
  /**
   * How long an admission waits for a namespace the watch has not shown yet. The API server gives the whole
   * webhook call 5 s (timeoutSeconds), and a late answer is worse than an early fail-open.
   */
  namespaceReadTimeoutMs?: number;
  /** How often `/version` is read again once known. */
  versionRefreshMs?: number;
  /** For jitter; tests pass a constant. */
  random?: () => number;
}

export interface ClusterFactsSource {
  /**
   * The facts for a pod in `namespace`: synchronous from the caches; a namespace missing from the cache is
   * read from the API server (and cached). If that read fails the promise rejects, and the admission treats
   * it as our own fault: the pod is admitted without a sidecar, with a warning and a metric (or denied with
   * `failure: closed`). Guessing instead would be worse either way: the config's default level may be
   * `privileged` where the namespace enforces `restricted` (a sidecar with SYS_PTRACE would get the pod
   * rejected), and the namespace labels are what the defence-in-depth selection check reads. Istio and
   * Linkerd likewise admit unchanged whatever they cannot work out.
   */
  clusterFacts(namespace: string): ClusterFacts | Promise<ClusterFacts>;
  /** True once both watches have listed their objects and `/version` has been tried at least once. */
  ready(): boolean;
  /** Stops the watches and timers. */
  close(): Promise<void>;
}

const DEFAULT_NAMESPACE_READ_TIMEOUT_MS = 2_000;
const DEFAULT_VERSION_REFRESH_MS = 10 * 60_000;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the watches and the version reader, and returns at once: `ready()` says when the caches are filled.
 * Loads @kubernetes/client-node: call it only when cluster access is on.
 */
export async function startClusterFacts(options: ClusterFactsOptions): Promise<ClusterFactsSource> {
  const k8s = await import('@kubernetes/client-node');
  const { kubeConfig, log } = options;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const random = options.random ?? Math.random;
  const readTimeoutMs = options.namespaceReadTimeoutMs ?? DEFAULT_NAMESPACE_READ_TIMEOUT_MS;
  const versionRefreshMs = options.versionRefreshMs ?? DEFAULT_VERSION_REFRESH_MS;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const versionApi = kubeConfig.makeApiClient(k8s.VersionApi);

  const timers = stoppableTimers();
  const supervision: Supervision = { k8s, kubeConfig, timers, backoff, random, log };

  // Namespaces: facts computed per watch event, so an admission only looks them up.
  const namespaces = new Map<string, NamespaceFacts>();
  const namespaceWatch = superviseInformer<SlimNamespace & KubernetesObject>(supervision, {
    name: 'namespaces',
    path: '/api/v1/namespaces',
    list: async () => {
      const list = await core.listNamespace();
      return { metadata: list.metadata, items: list.items.map(slimNamespace) };
    },
    slim: slimNamespace,
    onEvent: {
      set: (namespace) => namespaces.set(namespace.metadata.name, namespaceFactsOf(namespace.metadata.labels)),
      remove: (namespace) => namespaces.delete(namespace.metadata.name),
    },
    onSynced: () => logSynced(),
  });

  // Nodes: each kubelet version, for the oldest one.
  const kubelets = kubeletCache();
  const nodeWatch = superviseInformer<SlimNode & KubernetesObject>(supervision, {
    name: 'nodes',
    path: '/api/v1/nodes',
    list: async () => {
      const list = await core.listNode();
      return { metadata: list.metadata, items: list.items.map(slimNode) };
    },
    slim: slimNode,
    onEvent: kubelets,
    onSynced: () => logSynced(),
  });
  // Before the first list the map is empty or partial: no evidence yet.
  const minKubeletVersion = (): string | undefined => (nodeWatch.synced() ? kubelets.oldest() : undefined);

  function logSynced(): void {
    if (!namespaceWatch.synced() || !nodeWatch.synced()) return;
    log.info(
      { namespaces: namespaces.size, nodes: kubelets.size(), minKubeletVersion: minKubeletVersion() ?? 'unknown' },
      'cluster: namespace and node caches synced',
    );
  }

  const version = versionReader(versionApi, { timers, backoff, random, log, refreshMs: versionRefreshMs });
  const readThrough = namespaceReadThrough(core, namespaces, timers, log, readTimeoutMs);
  const readNamespace = async (name: string): Promise<ClusterFacts> => {
    const facts = await readThrough(name);
    return clusterFactsFrom(facts, { apiServerVersion: version.minor(), minKubeletVersion: minKubeletVersion() });
  };

  namespaceWatch.start();
  nodeWatch.start();
  version.start();

  return {
    clusterFacts(namespace: string): ClusterFacts | Promise<ClusterFacts> {
      const cached = namespaces.get(namespace);
      if (cached === undefined) return readNamespace(namespace);
      return clusterFactsFrom(cached, { apiServerVersion: version.minor(), minKubeletVersion: minKubeletVersion() });
    },
    ready: () => !timers.closed() && namespaceWatch.synced() && nodeWatch.synced() && version.tried(),
    async close(): Promise<void> {
      timers.close();
      await Promise.all([namespaceWatch.stop(), nodeWatch.stop()]);
    },
  };
}

/** Each node's kubelet version; the oldest is recomputed lazily, once per change, not once per node event or request. */
function kubeletCache(): { set(node: SlimNode): void; remove(node: SlimNode): void; oldest(): string | undefined; size(): number } {
  const kubelets = new Map<string, string | undefined>();
  let oldestKubelet: string | undefined;
  let changed = true;
  return {
    set(node) {
      const version = node.status.nodeInfo.kubeletVersion;
      if (kubelets.has(node.metadata.name) && kubelets.get(node.metadata.name) === version) return;
      kubelets.set(node.metadata.name, version);
      changed = true;
    },
    remove(node) {
      changed = kubelets.delete(node.metadata.name) || changed;
    },
    oldest() {
      if (changed) {
        oldestKubelet = oldestKubeletVersion(kubelets.values());
        changed = false;
      }
      return oldestKubelet;
    },
    size: () => kubelets.size,
  };
}

type VersionApi = InstanceType<typeof import('@kubernetes/client-node').VersionApi>;

/** The API server version: unknown until read (the engine then picks classic sidecars), then read again now and then. */
function versionReader(
  versionApi: VersionApi,
  how: Pick<Supervision, 'timers' | 'backoff' | 'random'> & { log: ClusterLog; refreshMs: number },
): { start(): void; minor(): string | undefined; tried(): boolean } {
  const { timers, log } = how;
  let apiServerVersion: string | undefined;
  let apiServerGitVersion: string | undefined;
  let versionTried = false;
  const readVersion = (attempt: number): void => {
    versionApi.getCode().then(
      (info) => {
        versionTried = true;
        const minor = minorVersionOf(info.gitVersion) ?? minorVersionOf(`${info.major}.${info.minor}`);
        if (info.gitVersion !== apiServerGitVersion) {
          log.info({ apiServerVersion: info.gitVersion }, 'cluster: API server version');
          apiServerGitVersion = info.gitVersion;
        }
        // A refresh that cannot be read keeps the version known before.
        if (minor !== undefined) apiServerVersion = minor;
        timers.later(how.refreshMs, () => readVersion(0));
      },
      (err: unknown) => {
        versionTried = true;
        const delay = backoffDelay(attempt, how.backoff, how.random());
        log.warn(
          { error: errorSummary(err), retryInMs: delay, apiServerVersion: apiServerGitVersion ?? 'unknown' },
          'cluster: cannot read the API server version, retrying',
        );
        timers.later(delay, () => readVersion(attempt + 1));
      },
    );
  };
  return { start: () => readVersion(0), minor: () => apiServerVersion, tried: () => versionTried };
}

type CoreApi = InstanceType<typeof import('@kubernetes/client-node').CoreV1Api>;

/**
 * Reads a namespace the watch has not shown yet, into the cache. A Deployment scaling up asks about one new
 * namespace many times at once: one read serves them all.
 */
function namespaceReadThrough(
  core: CoreApi,
  namespaces: Map<string, NamespaceFacts>,
  timers: Timers,
  log: ClusterLog,
  timeoutMs: number,
): (name: string) => Promise<NamespaceFacts> {
  const reads = new Map<string, Promise<NamespaceFacts>>();
  return (name) => {
    if (name === '') return Promise.reject(new Error('the admission request names no namespace'));
    let read = reads.get(name);
    if (read === undefined) {
      log.debug({ namespace: name }, 'cluster: namespace not in the cache yet, reading it');
      read = core
        .readNamespace({ name })
        .then(
          (namespace) => {
            const facts = namespaceFactsOf(slimNamespace(namespace).metadata.labels);
            // The watch's own copy, when it arrived meanwhile, is as new or newer.
            if (!timers.closed() && !namespaces.has(name)) namespaces.set(name, facts);
            return facts;
          },
          (err: unknown) => {
            const { message, code } = errorSummary(err);
            const why = code === undefined ? message : `HTTP ${code}: ${message}`;
            throw new Error(`namespace "${name}" is not in the cache and cannot be read (${why})`);
          },
        )
        .finally(() => reads.delete(name));
      reads.set(name, read);
    }
    return withTimeout(read, timeoutMs, `namespace "${name}" is not in the cache and reading it took over ${timeoutMs} ms`);
  };
}
