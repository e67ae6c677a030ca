/**
 * The informer glue the cluster facts build on: timers that stop with the owner, a Watch that keeps only the slim
 * part of each object, and an informer supervised so that every failure restarts it with backoff and never ends
 * the process.
 */
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { backoffDelay, errorSummary, type Backoff } from './facts.js';

type ClientNode = typeof import('@kubernetes/client-node');

/** Timers that never fire after `close`, and never keep the process alive. */
export interface Timers {
  closed(): boolean;
  later(ms: number, run: () => void): void;
  close(): void;
}

export function stoppableTimers(): Timers {
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  return {
    closed: () => closed,
    later(ms, run) {
      if (closed) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closed) run();
      }, ms);
      // The listeners keep the process alive while it serves; a pending retry must not keep it alive after.
      timer.unref();
      timers.add(timer);
    },
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

type WatchArgs = Parameters<InstanceType<ClientNode['Watch']>['watch']>;

/**
 * `makeInformer` is `new ListWatch(path, new Watch(kubeConfig), list, false)`; this is the same with a Watch
 * that keeps only what `slim` returns of each object (so the informer's cache holds slim objects), and that
 * turns a throw before the request (a token file that cannot be read) into the informer's error path:
 * thrown from inside ListWatch's reconnect it would be an unhandled rejection, which ends the process.
 */
function slimWatch(k8s: ClientNode, kubeConfig: KubeConfig, slim: (object: unknown) => KubernetesObject): InstanceType<ClientNode['Watch']> {
  return new (class extends k8s.Watch {
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
}

export interface Supervised {
  synced(): boolean;
  start(): void;
  stop(): Promise<void>;
}

export interface InformerSpec<T extends KubernetesObject> {
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  slim: (object: unknown) => T;
  onEvent: { set(object: T): void; remove(object: T): void };
  onSynced: () => void;
}

export interface Supervision {
  k8s: ClientNode;
  kubeConfig: KubeConfig;
  timers: Timers;
  backoff: Backoff;
  random: () => number;
  log: { warn(fields: object, message: string): void };
}

/** Runs an informer: restarts it with backoff after every error, and says when it first listed. */
export function superviseInformer<T extends KubernetesObject>(how: Supervision, spec: InformerSpec<T>): Supervised {
  const { timers } = how;
  const informer = new how.k8s.ListWatch<T>(spec.path, slimWatch(how.k8s, how.kubeConfig, spec.slim), spec.list, false);
  informer.on('add', spec.onEvent.set);
  informer.on('update', spec.onEvent.set);
  informer.on('delete', spec.onEvent.remove);
  let synced = false;
  let errors = 0;
  let attempt = 0;
  const fail = (err: unknown): void => {
    errors += 1;
    if (timers.closed()) return;
    const delay = backoffDelay(attempt, how.backoff, how.random());
    attempt += 1;
    how.log.warn({ watch: spec.name, error: errorSummary(err), retryInMs: delay }, 'cluster: watch failed, restarting it');
    timers.later(delay, start);
  };
  // The informer reports list and watch failures here; it does not retry them itself.
  informer.on('error', fail);
  function start(): void {
    const errorsBefore = errors;
    informer.start().then(
      () => {
        // start() resolves once the list is in the cache and the watch is open, or after reporting an error.
        if (timers.closed() || errors !== errorsBefore) return;
        attempt = 0;
        if (!synced) {
          synced = true;
          spec.onSynced();
        }
      },
      (err: unknown) => {
        if (errors === errorsBefore) fail(err);
      },
    );
  }
  return { synced: () => synced, start, stop: () => informer.stop() };
}
