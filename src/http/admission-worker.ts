/**
 * The admission worker: parses, answers and serialises big admission bodies off the event loop, so that one pod
 * of 3 MiB does not hold `/healthz` and every other admission for its whole second. Started by
 * src/http/offload.ts; one job at a time is computed, in the order received.
 */
import { parentPort } from 'node:worker_threads';
import type { ClusterFacts } from '../admission/respond.js';
import { answerAdmission } from './admission-answer.js';
import { parseJsonBody } from './json-body.js';
import type { DoneMessage, FactsReply, FromWorker, JobMessage, ToWorker } from './offload-protocol.js';

const port = parentPort;
if (port === null) throw new Error('admission-worker runs as a worker thread only');

const factsWaiting = new Map<number, (reply: FactsReply) => void>();

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function askFacts(id: number, namespace: string): Promise<ClusterFacts> {
  return new Promise((resolve, reject) => {
    factsWaiting.set(id, (reply) => (reply.ok ? resolve(reply.facts) : reject(new Error(reply.message))));
    post({ type: 'facts', id, namespace });
  });
}

/** A thrown value that survives the trip to the event loop (a structured clone) as an Error for the log. */
function cloneable(error: unknown): Error | undefined {
  if (error === undefined || error instanceof Error) return error;
  return new Error(String(error));
}

async function run(job: JobMessage): Promise<DoneMessage> {
  const body = parseJsonBody(job.text);
  if (!body.ok) return { type: 'done', id: job.id, ok: false, reason: body.reason };
  const answer = await answerAdmission(body.value, {
    config: () => job.config,
    injectorNamespace: job.injectorNamespace,
    clusterFacts: (namespace) => askFacts(job.id, namespace),
  });
  if (!answer.ok) return { type: 'done', id: job.id, ok: false, reason: answer.reason };
  const { outcome } = answer;
  return {
    type: 'done',
    id: job.id,
    ok: true,
    json: typeof answer.json === 'string' ? Buffer.from(answer.json, 'utf8') : answer.json,
    outcome: { ...outcome, error: cloneable(outcome.error) },
    fields: answer.fields,
  };
}

/** A buffer of its own (not a slice of Node's pool) moves to the event loop without a copy. */
function transferable(message: DoneMessage): ArrayBuffer[] {
  if (!message.ok) return [];
  const { buffer, byteOffset, byteLength } = message.json;
  return buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength ? [buffer] : [];
}

let queue: Promise<void> = Promise.resolve();

port.on('message', (message: ToWorker) => {
  if (message.type === 'facts') {
    const waiting = factsWaiting.get(message.id);
    factsWaiting.delete(message.id);
    waiting?.(message);
    return;
  }
  queue = queue
    .then(async () => {
      const done = await run(message);
      post(done, transferable(done));
    })
    .catch((err: unknown) => {
      // Never expected (admit turns every fault into an answer): crash, and the event loop answers in-thread.
      setImmediate(() => {
        throw err;
      });
    });
});
