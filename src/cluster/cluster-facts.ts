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
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
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

interface Supervised {
  synced(): boolean;
  start(): void;
  stop(): Promise<void>;
}

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

  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, run: () => void): void => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) run();
    }, ms);
    // The listeners keep the process alive while it serves; a pending retry must not keep it alive after.
    timer.unref();
    timers.add(timer);
  };

  type WatchArgs = Parameters<InstanceType<typeof k8s.Watch>['watch']>;
  /**
   * `makeInformer` is `new ListWatch(path, new Watch(kubeConfig), list, false)`; this is the same with a Watch
   * that keeps only what `slim` returns of each object (so the informer's cache holds slim objects), and that
   * turns a throw before the request (a token file that cannot be read) into the informer's error path:
   * thrown from inside ListWatch's reconnect it would be an unhandled rejection, which ends the process.
   */
  const slimWatch = (slim: (object: unknown) => KubernetesObject): InstanceType<typeof k8s.Watch> =>
    new (class extends k8s.Watch {
      override async watch(...[path, query, callback, done]: WatchArgs): Promise<AbortController> {
        const slimmed = (phase: string, object: unknown, raw?: unknown): void => {
          const isObject = phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED';
          callback(phase, isObject ? slim(object) : object, raw);
        };
        try {
          return await super.watch(path, query, slimmed, done);
        } catch (err) {
          done(err);
          return new AbortController();
        }
      }
    })(kubeConfig);

  /** Runs an informer: restarts it with backoff after every error, and says when it first listed. */
  const supervise = <T extends KubernetesObject>(
    name: string,
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    slim: (object: unknown) => T,
    onEvent: { set(object: T): void; remove(object: T): void },
    onSynced: () => void,
  ): Supervised => {
    const informer = new k8s.ListWatch<T>(path, slimWatch(slim), list, false);
    informer.on('add', onEvent.set);
    informer.on('update', onEvent.set);
    informer.on('delete', onEvent.remove);
    let synced = false;
    let errors = 0;
    let attempt = 0;
    const fail = (err: unknown): void => {
      errors += 1;
      if (closed) return;
      const delay = backoffDelay(attempt, backoff, random());
      attempt += 1;
      log.warn({ watch: name, error: errorSummary(err), retryInMs: delay }, 'cluster: watch failed, restarting it');
      later(delay, start);
    };
    // The informer reports list and watch failures here; it does not retry them itself.
    informer.on('error', fail);
    function start(): void {
      const errorsBefore = errors;
      informer.start().then(
        () => {
          // start() resolves once the list is in the cache and the watch is open, or after reporting an error.
          if (closed || errors !== errorsBefore) return;
          attempt = 0;
          if (!synced) {
            synced = true;
            onSynced();
          }
        },
        (err: unknown) => {
          if (errors === errorsBefore) fail(err);
        },
      );
    }
    return { synced: () => synced, start, stop: () => informer.stop() };
  };

  // Namespaces: facts computed per watch event, so an admission only looks them up.
  const namespaces = new Map<string, NamespaceFacts>();
  const namespaceWatch = supervise<SlimNamespace & KubernetesObject>(
    'namespaces',
    '/api/v1/namespaces',
    async () => {
      const list = await core.listNamespace();
      return { metadata: list.metadata, items: list.items.map(slimNamespace) };
    },
    slimNamespace,
    {
      set: (namespace) => namespaces.set(namespace.metadata.name, namespaceFactsOf(namespace.metadata.labels)),
      remove: (namespace) => namespaces.delete(namespace.metadata.name),
    },
    () => logSynced(),
  );

  // Nodes: the oldest kubelet is recomputed lazily, once per change, not once per node event or request.
  const kubelets = new Map<string, string | undefined>();
  let oldestKubelet: string | undefined;
  let kubeletsChanged = true;
  const nodeWatch = supervise<SlimNode & KubernetesObject>(
    'nodes',
    '/api/v1/nodes',
    async () => {
      const list = await core.listNode();
      return { metadata: list.metadata, items: list.items.map(slimNode) };
    },
    slimNode,
    {
      set: (node) => {
        const version = node.status.nodeInfo.kubeletVersion;
        if (kubelets.has(node.metadata.name) && kubelets.get(node.metadata.name) === version) return;
        kubelets.set(node.metadata.name, version);
        kubeletsChanged = true;
      },
      remove: (node) => {
        kubeletsChanged = kubelets.delete(node.metadata.name) || kubeletsChanged;
      },
    },
    () => logSynced(),
  );
  const minKubeletVersion = (): string | undefined => {
    // Before the first list the map is empty or partial: no evidence yet.
    if (!nodeWatch.synced()) return undefined;
    if (kubeletsChanged) {
      oldestKubelet = oldestKubeletVersion(kubelets.values());
      kubeletsChanged = false;
    }
    return oldestKubelet;
  };

  function logSynced(): void {
    if (!namespaceWatch.synced() || !nodeWatch.synced()) return;
    log.info(
      { namespaces: namespaces.size, nodes: kubelets.size, minKubeletVersion: minKubeletVersion() ?? 'unknown' },
      'cluster: namespace and node caches synced',
    );
  }

  // The API server version: unknown until read (the engine then picks classic sidecars).
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
        later(versionRefreshMs, () => readVersion(0));
      },
      (err: unknown) => {
        versionTried = true;
        const delay = backoffDelay(attempt, backoff, random());
        log.warn(
          { error: errorSummary(err), retryInMs: delay, apiServerVersion: apiServerGitVersion ?? 'unknown' },
          'cluster: cannot read the API server version, retrying',
        );
        later(delay, () => readVersion(attempt + 1));
      },
    );
  };

  // A Deployment scaling up asks about one new namespace many times at once: one read serves them all.
  const reads = new Map<string, Promise<NamespaceFacts>>();
  const readNamespace = async (name: string): Promise<ClusterFacts> => {
    if (name === '') throw new Error('the admission request names no namespace');
    let read = reads.get(name);
    if (read === undefined) {
      log.debug({ namespace: name }, 'cluster: namespace not in the cache yet, reading it');
      read = core
        .readNamespace({ name })
        .then(
          (namespace) => {
            const facts = namespaceFactsOf(slimNamespace(namespace).metadata.labels);
            // The watch's own copy, when it arrived meanwhile, is as new or newer.
            if (!closed && !namespaces.has(name)) namespaces.set(name, facts);
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
    const facts = await withTimeout(read, readTimeoutMs, `namespace "${name}" is not in the cache and reading it took over ${readTimeoutMs} ms`);
    return clusterFactsFrom(facts, { apiServerVersion, minKubeletVersion: minKubeletVersion() });
  };

  namespaceWatch.start();
  nodeWatch.start();
  readVersion(0);

  return {
    clusterFacts(namespace: string): ClusterFacts | Promise<ClusterFacts> {
      const cached = namespaces.get(namespace);
      if (cached === undefined) return readNamespace(namespace);
      return clusterFactsFrom(cached, { apiServerVersion, minKubeletVersion: minKubeletVersion() });
    },
    ready: () => !closed && namespaceWatch.synced() && nodeWatch.synced() && versionTried,
    async close(): Promise<void> {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([namespaceWatch.stop(), nodeWatch.stop()]);
    },
  };
}
