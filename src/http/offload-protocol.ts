/**
 * Messages between the event loop and the admission worker (src/http/offload.ts, src/http/admission-worker.ts).
 * The worker asks the event loop for the namespace's cluster facts, which only the event loop can learn.
 */
import type { AdmissionOutcome, ClusterFacts } from '../admission/respond.js';
import type { InjectorConfig } from '../core/types.js';
import type { RequestFields } from './admission-answer.js';

export interface JobMessage {
  type: 'job';
  id: number;
  /** The request body as received (JSON; a string crosses over as one copy). */
  text: string;
  config: InjectorConfig;
  injectorNamespace: string;
}

export interface FactsRequest {
  type: 'facts';
  id: number;
  namespace: string;
}

export type FactsReply = { type: 'facts'; id: number; ok: true; facts: ClusterFacts } | { type: 'facts'; id: number; ok: false; message: string };

export type DoneMessage =
  | { type: 'done'; id: number; ok: true; json: Uint8Array; outcome: AdmissionOutcome; fields: RequestFields }
  | { type: 'done'; id: number; ok: false; reason: string };

export type ToWorker = JobMessage | FactsReply;
export type FromWorker = FactsRequest | DoneMessage;
