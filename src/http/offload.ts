/**
 * Big admission bodies are answered by one long-lived worker thread (src/http/admission-worker.ts): parsing,
 * the engine and serialising a 3 MiB pod cost the better part of a second of CPU, which on the event loop would
 * hold `/healthz` and every other admission of the replica as long. Nothing is lost to the worker: when it is
 * missing, busy with `maxInFlight` bodies already, or crashes, `answer` resolves undefined and the caller
 * answers on the event loop as before; a crashed worker is replaced on the next big body.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AdmissionDeps } from '../admission/respond.js';
import type { Answer } from './admission-answer.js';
import type { FactsReply, FromWorker, JobMessage } from './offload-protocol.js';

export interface OffloadOptions {
  /** Bodies of at least this many characters (bytes, for ASCII JSON) go to the worker. */
  minBytes: number;
  /** Bodies at the worker at once, queued or computed; beyond that, the event loop answers. */
  maxInFlight: number;
  /** The compiled worker module. */
  workerUrl: URL;
}

/** Below this a body costs less to answer in place than to hand over (a 10 KiB pod takes ~0.2 ms). */
export const DEFAULT_OFFLOAD_MIN_BYTES = 512 * 1024;
/** The body budget (src/http/byte-budget.ts) already bounds how many big bodies are held at once. */
export const DEFAULT_OFFLOAD_MAX_IN_FLIGHT = 4;
/**
 * The worker's own heap, on top of the main thread's (`--max-old-space-size` applies to each isolate alike): the
 * two together must stay under the container's memory limit (bench/floods.mjs; the kustomize test checks the
 * sum). Enough for a 3 MiB pod of 100,000 containers; a bigger job that runs out kills only the worker, and the
 * event loop answers it instead.
 */
export const WORKER_MAX_OLD_GENERATION_MB = 64;
export const WORKER_MAX_YOUNG_GENERATION_MB = 16;

/**
 * The worker next to this module once compiled (dist/http/, or dist/bundle/ where the bundle puts it), or
 * undefined when running from sources, which have no compiled worker: then nothing is offloaded.
 */
export function defaultWorkerUrl(): URL | undefined {
  const url = new URL('./admission-worker.js', import.meta.url);
  return url.protocol === 'file:' && existsSync(fileURLToPath(url)) ? url : undefined;
}

interface Pending {
  resolve: (answer: Answer | undefined) => void;
  deps: AdmissionDeps;
}

/** A body left unparsed by the content-type parser: the admission route hands it to the worker. */
export class DeferredBody {
  constructor(readonly text: string) {}
}

export class AdmissionOffload {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: OffloadOptions) {}

  /** Whether a body of this size should be offered to the worker. */
  wants(text: string): boolean {
    return !this.closed && text.length >= this.options.minBytes;
  }

  /** The answer computed by the worker, or undefined when the caller must compute it itself. */
  answer(text: string, deps: AdmissionDeps): Promise<Answer | undefined> {
    if (this.closed || this.pending.size >= this.options.maxInFlight) return Promise.resolve(undefined);
    const worker = this.started();
    const id = this.nextId++;
    // A copy goes over: the body stays ours for the fallback if the worker dies.
    const job: JobMessage = { type: 'job', id, text, config: deps.config(), injectorNamespace: deps.injectorNamespace };
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, deps });
      try {
        worker.postMessage(job);
      } catch {
        this.pending.delete(id);
        resolve(undefined);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll();
    if (worker) await worker.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.options.workerUrl, {
      resourceLimits: { maxOldGenerationSizeMb: WORKER_MAX_OLD_GENERATION_MB, maxYoungGenerationSizeMb: WORKER_MAX_YOUNG_GENERATION_MB },
    });
    // Never what keeps the process alive: the server's own close decides that.
    worker.unref();
    worker.on('message', (message: FromWorker) => this.receive(worker, message));
    const lost = (): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll();
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    this.worker = worker;
    return worker;
  }

  private failAll(): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const { resolve } of waiting) resolve(undefined);
  }

  private receive(worker: Worker, message: FromWorker): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) return;
    if (message.type === 'facts') {
      void this.facts(worker, message.id, message.namespace, pending.deps);
      return;
    }
    this.pending.delete(message.id);
    if (!message.ok) {
      pending.resolve({ ok: false, reason: message.reason });
      return;
    }
    const json = Buffer.from(message.json.buffer, message.json.byteOffset, message.json.byteLength);
    pending.resolve({ ok: true, json, outcome: message.outcome, fields: message.fields });
  }

  private async facts(worker: Worker, id: number, namespace: string, deps: AdmissionDeps): Promise<void> {
    let reply: FactsReply;
    try {
      reply = { type: 'facts', id, ok: true, facts: await deps.clusterFacts(namespace) };
    } catch (err) {
      reply = { type: 'facts', id, ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    if (this.worker !== worker) return;
    try {
      worker.postMessage(reply);
    } catch (err) {
      // Facts that do not survive a structured clone are facts the worker cannot have: our fault, answered so.
      worker.postMessage({ type: 'facts', id, ok: false, message: `cluster facts cannot reach the admission worker: ${err instanceof Error ? err.message : String(err)}` } satisfies FactsReply);
    }
  }
}
