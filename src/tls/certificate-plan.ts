/**
 * Self-managed certificates: what the Secret should hold, decided without I/O. The cluster adapter
 * (src/cluster/certificate-secret.ts) reads the Secret, asks `planCertificates`, and writes what `issueCertificates`
 * returns, guarded by the resourceVersion it read.
 *
 * Rules:
 *  - The CA (10 years) is replaced when it is missing, unusable or two thirds into its life. The serving certificate
 *    (1 year, capped at the CA's end) is replaced two thirds into its life, or when it is not the CA's, does not
 *    cover the Service's names, or does not match its key.
 *  - A CA rotation takes two writes, so that no API server ever meets a certificate it does not trust yet:
 *    1. new CA, the old one kept as `ca-previous.crt`, the serving certificate unchanged (still the old CA's, still
 *       valid), and the time noted; the caBundle becomes new CA + old CA;
 *    2. once every webhook entry's caBundle trusts the new CA and a grace period has passed (API servers pick up
 *       webhook configuration changes through a watch), a serving certificate from the new CA.
 *    The old CA stays in the bundle until the next serving renewal, or until it expires.
 */
import { X509Certificate } from 'node:crypto';
import {
  certificateAuthorityProblem,
  certificateValidity,
  generateCertificateAuthority,
  generateServingCertificate,
  renewalTime,
  servingCertificateProblem,
  type KeyPairPem,
} from './certificates.js';
import { errorLine } from '../error-line.js';

/** The Secret's keys: a `kubernetes.io/tls` Secret plus the CA (the same layout as `certs` writes to files). */
export const SECRET_KEYS = {
  tlsCert: 'tls.crt',
  tlsKey: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  previousCaCert: 'ca-previous.crt',
} as const;

/** On the Secret while a CA rotation waits for its second step: when the first step was written. */
export const CA_ROTATED_AT_ANNOTATION = 'sidecar-injector.io/ca-rotated-at';

/** After the first step of a CA rotation, how long before serving certificates move to the new CA. */
export const CA_PROPAGATION_GRACE_MS = 2 * 60_000;

/** While the new CA is not yet in every caBundle, how often to look again. */
export const CA_BUNDLE_RECHECK_MS = 60_000;

/** What the Secret holds (PEM text), each part possibly missing. */
export interface StoredCertificates {
  caCert?: string;
  caKey?: string;
  tlsCert?: string;
  tlsKey?: string;
  previousCaCert?: string;
  /** Set between the two steps of a CA rotation. */
  caRotatedAt?: Date;
}

/** The Service the serving certificate is for. */
export interface ServingIdentity {
  service: string;
  namespace: string;
}

export interface PlanContext {
  identity: ServingIdentity;
  now: Date;
  /** Whether every webhook entry's caBundle already trusts the stored `caCert` (gates a CA rotation's 2nd step). */
  caInBundle: boolean;
}

export type CertificatePlan =
  | {
      action: 'keep';
      /** When to look again: the next renewal time, or the next step of a CA rotation. */
      nextCheck: Date;
      /**
       * A CA rotation's 2nd step is pending: `ca-bundle` until every caBundle trusts the new CA (ask again with
       * `caInBundle` from a fresh read), `propagation` during the grace period after that.
       */
      waitingFor?: 'ca-bundle' | 'propagation';
    }
  | {
      action: 'rotate-ca';
      reason: string;
      /** The serving certificate stays (signed by the old CA, which stays trusted) until the 2nd step. */
      keepServing: boolean;
    }
  | { action: 'issue-serving'; reason: string };

/** Decides what the Secret needs now. */
export function planCertificates(stored: StoredCertificates | undefined, context: PlanContext): CertificatePlan {
  const { now } = context;
  if (stored === undefined) return { action: 'rotate-ca', reason: 'no certificates yet', keepServing: false };
  const ca = caPair(stored);
  const caProblem = ca === undefined ? 'no CA certificate and key' : certificateAuthorityProblem(ca, now);
  if (ca === undefined || caProblem !== undefined) {
    const keepServing =
      stored.caCert !== undefined && servingProblem(stored, stored.caCert, context.identity, now, true) === undefined;
    return { action: 'rotate-ca', reason: caProblem ?? 'no CA', keepServing };
  }

  const problem = servingProblem(stored, ca.cert, context.identity, now, false);
  if (problem === undefined) {
    const checks = [renewalTime(ca.cert), renewalTime(requireDefined(stored.tlsCert))];
    const previousEnd = previousCaExpiry(stored, now);
    // When the old CA expires the bundle loses it: look again then, so the caBundle follows.
    if (previousEnd !== undefined) checks.push(previousEnd);
    return { action: 'keep', nextCheck: earliest(checks) };
  }

  // The 1st step of a CA rotation is done when the serving certificate is still the previous CA's and valid.
  const previous = usablePreviousCa(stored, now);
  if (previous !== undefined && servingProblem(stored, previous, context.identity, now, true) === undefined) {
    if (!context.caInBundle) {
      return {
        action: 'keep',
        nextCheck: new Date(now.getTime() + CA_BUNDLE_RECHECK_MS),
        waitingFor: 'ca-bundle',
      };
    }
    const rotatedAt = stored.caRotatedAt ?? new Date(0);
    const due = new Date(rotatedAt.getTime() + CA_PROPAGATION_GRACE_MS);
    if (now.getTime() < due.getTime()) {
      return { action: 'keep', nextCheck: due, waitingFor: 'propagation' };
    }
    return { action: 'issue-serving', reason: 'CA rotated: the serving certificate moves to the new CA' };
  }
  return { action: 'issue-serving', reason: problem };
}

export interface Generators {
  ca(now: Date): KeyPairPem;
  serving(ca: KeyPairPem, identity: ServingIdentity, now: Date): KeyPairPem;
}

export const FORGE_GENERATORS: Generators = {
  ca: (now) => generateCertificateAuthority({ now }),
  serving: (ca, identity, now) => generateServingCertificate(ca, { ...identity, now }),
};

/** The Secret's next content for a plan that writes (synchronous key generation: ~0.2 s per key). */
export function issueCertificates(
  stored: StoredCertificates | undefined,
  plan: Exclude<CertificatePlan, { action: 'keep' }>,
  identity: ServingIdentity,
  now: Date,
  generate: Generators = FORGE_GENERATORS,
): StoredCertificates {
  if (plan.action === 'rotate-ca') {
    const ca = generate.ca(now);
    const previousCaCert = stored?.caCert !== undefined && isUnexpired(stored.caCert, now) ? stored.caCert : undefined;
    if (plan.keepServing && stored?.tlsCert !== undefined && stored.tlsKey !== undefined) {
      return {
        caCert: ca.cert,
        caKey: ca.key,
        tlsCert: stored.tlsCert,
        tlsKey: stored.tlsKey,
        ...(previousCaCert === undefined ? {} : { previousCaCert }),
        caRotatedAt: now,
      };
    }
    const serving = generate.serving(ca, identity, now);
    // Replicas may still serve the old certificate for a moment: keep its CA trusted until the next renewal.
    return {
      caCert: ca.cert,
      caKey: ca.key,
      tlsCert: serving.cert,
      tlsKey: serving.key,
      ...(previousCaCert === undefined ? {} : { previousCaCert }),
    };
  }
  const ca = caPair(stored ?? {});
  if (ca === undefined) throw new Error('cannot issue a serving certificate without a CA');
  const serving = generate.serving(ca, identity, now);
  // The old CA stays only when the certificate being replaced is its: replicas still serve it for a moment.
  const previous = stored === undefined ? undefined : usablePreviousCa(stored, now);
  const keepPrevious =
    previous !== undefined && stored?.tlsCert !== undefined && issuedBy(stored.tlsCert, previous);
  return {
    caCert: ca.cert,
    caKey: ca.key,
    tlsCert: serving.cert,
    tlsKey: serving.key,
    ...(keepPrevious && previous !== undefined ? { previousCaCert: previous } : {}),
  };
}

/** The PEM bundle every webhook entry's caBundle must hold: the CA, then the previous one while it matters. */
export function caBundleFor(stored: StoredCertificates, now: Date): string {
  const certs = [stored.caCert, usablePreviousCa(stored, now)].filter((pem): pem is string => pem !== undefined);
  return certs.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
}

/** The serving pair the Secret holds, if complete. */
export function servingPair(stored: StoredCertificates): { cert: string; key: string } | undefined {
  return stored.tlsCert === undefined || stored.tlsKey === undefined ? undefined : { cert: stored.tlsCert, key: stored.tlsKey };
}

/** Secret data (already base64-decoded) and annotations → what it holds. Unknown keys are ignored. */
export function storedFromSecret(
  data: Readonly<Record<string, string>>,
  annotations: Readonly<Record<string, string>> = {},
): StoredCertificates {
  const stored: StoredCertificates = {};
  for (const [field, key] of Object.entries(SECRET_KEYS) as [keyof typeof SECRET_KEYS, string][]) {
    const value = data[key];
    if (value !== undefined && value.trim() !== '') stored[field] = value;
  }
  const rotatedAt = annotations[CA_ROTATED_AT_ANNOTATION];
  if (rotatedAt !== undefined) {
    const date = new Date(rotatedAt);
    if (!Number.isNaN(date.getTime())) stored.caRotatedAt = date;
  }
  return stored;
}

/** Every key and annotation we own, with its value or null (absent: a merge patch deletes it). */
export function secretFieldsFor(stored: StoredCertificates): {
  data: Record<string, string | null>;
  annotations: Record<string, string | null>;
} {
  const data: Record<string, string | null> = {};
  for (const [field, key] of Object.entries(SECRET_KEYS) as [keyof typeof SECRET_KEYS, string][]) {
    data[key] = stored[field] ?? null;
  }
  return {
    data,
    annotations: { [CA_ROTATED_AT_ANNOTATION]: stored.caRotatedAt?.toISOString() ?? null },
  };
}

function caPair(stored: StoredCertificates): KeyPairPem | undefined {
  return stored.caCert === undefined || stored.caKey === undefined ? undefined : { cert: stored.caCert, key: stored.caKey };
}

function servingProblem(
  stored: StoredCertificates,
  caCert: string,
  identity: ServingIdentity,
  now: Date,
  acceptCaDueForRenewal: boolean,
): string | undefined {
  const pair = servingPair(stored);
  if (pair === undefined) return 'no serving certificate and key';
  try {
    return servingCertificateProblem(pair, caCert, { ...identity, now, acceptCaDueForRenewal });
  } catch (err) {
    return errorLine(err);
  }
}

function usablePreviousCa(stored: StoredCertificates, now: Date): string | undefined {
  const previous = stored.previousCaCert;
  if (previous === undefined || !isUnexpired(previous, now)) return undefined;
  if (stored.caCert !== undefined && sameCertificate(previous, stored.caCert)) return undefined;
  return previous;
}

function previousCaExpiry(stored: StoredCertificates, now: Date): Date | undefined {
  const previous = usablePreviousCa(stored, now);
  return previous === undefined ? undefined : certificateValidity(previous).notAfter;
}

function isUnexpired(pem: string, now: Date): boolean {
  try {
    return certificateValidity(pem).notAfter.getTime() > now.getTime();
  } catch {
    return false;
  }
}

function issuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function sameCertificate(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
  } catch {
    return a.trim() === b.trim();
  }
}

function earliest(dates: Date[]): Date {
  return new Date(Math.min(...dates.map((d) => d.getTime())));
}

function requireDefined<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('unreachable: checked above');
  return value;
}
