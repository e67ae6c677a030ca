/**
 * One admission: request → engine → response. No HTTP, no logger, no metrics here: the caller gets the response
 * and an outcome to log and count. Everything the engine needs beyond the request arrives in `deps`.
 */
import { computeInjection } from '../core/engine.js';
import type { InjectionContext, InjectionResult, InjectorConfig, PodSecurityLevel } from '../core/types.js';
import type { AdmissionResponse, AdmissionReviewRequest, AdmissionReviewResponse } from './review.js';
import { admissionWarnings, warningLine } from './warnings.js';
import { isRecord } from '../core/json.js';
import { errorLine } from '../error-line.js';

export type ComputeInjection = (pod: unknown, config: InjectorConfig, context: InjectionContext) => InjectionResult;

/** What the webhook learns from elsewhere than the request (the cluster, later): namespace labels, versions. */
export type ClusterFacts = Omit<InjectionContext, 'operation' | 'namespace' | 'injectorNamespace'>;

export interface AdmissionDeps {
  /** The configuration in force; a function so a reloaded config applies to the next request. */
  config: () => InjectorConfig;
  /** The injector's own namespace (POD_NAMESPACE): never injected. */
  injectorNamespace: string;
  /** Facts about the pod's namespace and the cluster. May throw or reject: that is our own fault, handled. */
  clusterFacts: (namespace: string) => ClusterFacts | Promise<ClusterFacts>;
  /** The engine; the real one unless a test passes another. */
  engine?: ComputeInjection;
}

export type AdmissionDecision = 'injected' | 'updated' | 'skipped' | 'error';

export interface AdmissionOutcome {
  decision: AdmissionDecision;
  /** A bounded value, fit for a metric label: the skip reason, `none`, or the kind of our own fault. */
  reason: string;
  /** For the log only: what went wrong, when it was our fault. */
  detail?: string;
  /** The thrown value, when the engine or the cluster facts threw. */
  error?: unknown;
  patchOperations: number;
  /**
   * The engine's warnings for the log line, uncut but at most LOG_WARNINGS (the response carries the trimmed ones):
   * a pod of 100,000 containers that all use the mount path has a warning each.
   */
  warnings: string[];
  /** True when `failure: closed` turned our fault into a denial. */
  denied: boolean;
  /** The Pod Security level that reduced the injected sidecar, when it did. */
  reducedBy?: PodSecurityLevel;
}

export interface Admission {
  review: AdmissionReviewResponse;
  outcome: AdmissionOutcome;
}

/** Reasons for our own faults (metric label values). */
export const FAULT_ENGINE_ERROR = 'engine-error';
export const FAULT_ENGINE_EXCEPTION = 'engine-exception';
export const FAULT_CLUSTER_FACTS = 'cluster-facts-unavailable';

export const LOG_WARNINGS = 20;

function forLog(warnings: readonly string[]): string[] {
  if (warnings.length <= LOG_WARNINGS) return [...warnings];
  return [...warnings.slice(0, LOG_WARNINGS - 1), `${warnings.length - (LOG_WARNINGS - 1)} more warnings`];
}

const FAULT_WARNING = 'sidecar-injector: internal error, the pod was admitted without the sidecar';

/** `request.namespace` is authoritative; a pod's own `metadata.namespace` is often empty on CREATE. */
export function requestNamespace(review: AdmissionReviewRequest): string {
  const { request } = review;
  if (request.namespace !== undefined && request.namespace !== '') return request.namespace;
  const metadata = isRecord(request.object) ? request.object.metadata : undefined;
  const namespace = isRecord(metadata) ? metadata.namespace : undefined;
  return typeof namespace === 'string' ? namespace : '';
}

/** The pod's name for logs: `request.name`, `metadata.name`, or `generateName` (pods of a controller). */
export function requestObjectName(review: AdmissionReviewRequest): string | undefined {
  const { request } = review;
  if (request.name !== undefined && request.name !== '') return request.name;
  const metadata = isRecord(request.object) ? request.object.metadata : undefined;
  if (!isRecord(metadata)) return undefined;
  if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name;
  if (typeof metadata.generateName === 'string' && metadata.generateName !== '') return metadata.generateName;
  return undefined;
}

function envelope(review: AdmissionReviewRequest, response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response };
}

function ourFault(
  review: AdmissionReviewRequest,
  config: InjectorConfig,
  reason: string,
  detail: string,
  error: unknown,
  engineWarnings: string[],
): Admission {
  const uid = review.request.uid;
  const denied = config.failure === 'closed';
  const response: AdmissionResponse = denied
    ? {
        uid,
        allowed: false,
        status: {
          status: 'Failure',
          code: 500,
          reason: 'InternalError',
          message: warningLine(`sidecar-injector: internal error (${detail}); failure policy is closed`),
        },
      }
    : { uid, allowed: true, warnings: admissionWarnings([FAULT_WARNING]) };
  return {
    review: envelope(review, response),
    outcome: { decision: 'error', reason, detail, error, patchOperations: 0, warnings: forLog(engineWarnings), denied },
  };
}

/**
 * Answers one AdmissionReview. Never throws for anything the engine or the cluster facts do: those are our own
 * faults and become an allowed response without a patch (or a denial with `failure: closed`). A dry run is
 * answered exactly like a real request.
 */
export async function admit(review: AdmissionReviewRequest, deps: AdmissionDeps): Promise<Admission> {
  const config = deps.config();
  const { request } = review;
  const namespace = requestNamespace(review);

  let facts: ClusterFacts;
  try {
    facts = await deps.clusterFacts(namespace);
  } catch (err) {
    return ourFault(review, config, FAULT_CLUSTER_FACTS, errorLine(err), err, []);
  }

  const context: InjectionContext = {
    ...facts,
    operation: request.operation,
    namespace,
    injectorNamespace: deps.injectorNamespace,
  };

  let result: InjectionResult;
  try {
    result = (deps.engine ?? computeInjection)(request.object, config, context);
  } catch (err) {
    return ourFault(review, config, FAULT_ENGINE_EXCEPTION, errorLine(err), err, []);
  }

  const { decision } = result;
  if (decision.action === 'error') {
    return ourFault(review, config, FAULT_ENGINE_ERROR, decision.reason, undefined, result.warnings);
  }

  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  const mutates = decision.action === 'inject' || decision.action === 'update';
  const patchOperations = mutates ? result.patch.length : 0;
  if (patchOperations > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(result.patch), 'utf8').toString('base64');
  }
  const warnings = admissionWarnings(result.warnings);
  if (warnings.length > 0) response.warnings = warnings;

  const outcome: AdmissionOutcome =
    decision.action === 'skip'
      ? { decision: 'skipped', reason: decision.reason, patchOperations, warnings: forLog(result.warnings), denied: false }
      : {
          decision: decision.action === 'inject' ? 'injected' : 'updated',
          reason: 'none',
          patchOperations,
          warnings: forLog(result.warnings),
          denied: false,
          ...(decision.action === 'inject' && result.status && result.status.reduced.length > 0
            ? { reducedBy: result.status.podSecurityLevel }
            : {}),
        };
  return { review: envelope(review, response), outcome };
}
