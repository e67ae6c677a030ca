/**
 * AdmissionReview as the API server sends and expects it (`admission.k8s.io/v1`, and `v1beta1` which has the same
 * shape). Hand-written: no types package ships them. Only the envelope is checked; `request.object` stays whatever
 * JSON arrived, so fields our types do not know are never stripped.
 */
import { isRecord } from '../core/json.js';

export const ADMISSION_V1 = 'admission.k8s.io/v1';
export const ADMISSION_V1BETA1 = 'admission.k8s.io/v1beta1';
export const ADMISSION_API_VERSIONS = [ADMISSION_V1, ADMISSION_V1BETA1] as const;
export type AdmissionApiVersion = (typeof ADMISSION_API_VERSIONS)[number];

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionRequest {
  /** Identifies this call; the response must echo it. */
  uid: string;
  kind?: GroupVersionKind;
  resource?: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  /** Often empty on CREATE: the name may be generated later from `metadata.generateName`. */
  name?: string;
  /** The namespace of the object; authoritative where `object.metadata.namespace` is often empty. */
  namespace?: string;
  operation: string;
  userInfo?: UserInfo;
  /** The object as the API server has it, already defaulted. Left open on purpose. */
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

/** `metav1.Status`, the part a webhook response uses. */
export interface Status {
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: Status;
  /** Base64 of the JSON patch. */
  patch?: string;
  patchType?: 'JSONPatch';
  auditAnnotations?: Record<string, string>;
  warnings?: string[];
}

export interface AdmissionReviewRequest {
  apiVersion: AdmissionApiVersion;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

export interface AdmissionReviewResponse {
  apiVersion: AdmissionApiVersion;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ParseResult = { ok: true; review: AdmissionReviewRequest } | { ok: false; reason: string };

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function isApiVersion(value: unknown): value is AdmissionApiVersion {
  return typeof value === 'string' && (ADMISSION_API_VERSIONS as readonly string[]).includes(value);
}

/** Optional string fields: absent is fine (Go's `omitempty`), anything but a string is a malformed envelope. */
const OPTIONAL_STRING_FIELDS = ['name', 'namespace', 'subResource', 'requestSubResource'] as const;

/**
 * Checks the envelope of a parsed JSON body and returns it typed, or why it is not an AdmissionReview request.
 * The returned review shares `request.object` with the input: nothing is copied or stripped.
 */
export function parseAdmissionReview(body: unknown): ParseResult {
  if (!isRecord(body)) return { ok: false, reason: `expected an AdmissionReview object, got ${describe(body)}` };
  const { apiVersion, kind, request } = body;
  if (!isApiVersion(apiVersion)) {
    return {
      ok: false,
      reason: `unsupported apiVersion ${JSON.stringify(apiVersion) ?? 'undefined'}: expected ${ADMISSION_API_VERSIONS.join(' or ')}`,
    };
  }
  if (kind !== 'AdmissionReview') {
    return { ok: false, reason: `unsupported kind ${JSON.stringify(kind) ?? 'undefined'}: expected AdmissionReview` };
  }
  if (request === undefined || request === null) return { ok: false, reason: 'AdmissionReview has no request' };
  if (!isRecord(request)) return { ok: false, reason: `request must be an object, got ${describe(request)}` };
  if (typeof request.uid !== 'string' || request.uid === '') {
    return { ok: false, reason: 'request.uid must be a non-empty string' };
  }
  if (typeof request.operation !== 'string' || request.operation === '') {
    return { ok: false, reason: 'request.operation must be a non-empty string' };
  }
  for (const field of OPTIONAL_STRING_FIELDS) {
    const value = request[field];
    if (value !== undefined && typeof value !== 'string') {
      return { ok: false, reason: `request.${field} must be a string, got ${describe(value)}` };
    }
  }
  if (request.dryRun !== undefined && typeof request.dryRun !== 'boolean') {
    return { ok: false, reason: `request.dryRun must be a boolean, got ${describe(request.dryRun)}` };
  }
  // The checks above make this cast sound for every field we read; the rest stays as it arrived.
  const typed = request as unknown as AdmissionRequest;
  return { ok: true, review: { apiVersion, kind, request: typed } };
}
