/**
 * The self-managed certificate decisions, with the clock injected: when to renew, when and how a CA rotates, what
 * the caBundle holds, and how the Secret's keys map to what it holds.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CA_BUNDLE_RECHECK_MS,
  CA_PROPAGATION_GRACE_MS,
  CA_ROTATED_AT_ANNOTATION,
  caBundleFor,
  issueCertificates,
  planCertificates,
  secretFieldsFor,
  servingPair,
  storedFromSecret,
  type CertificatePlan,
  type StoredCertificates,
} from '../../src/tls/certificate-plan.js';
import {
  generateCertificateAuthority,
  generateServingCertificate,
  renewalTime,
  type KeyPairPem,
} from '../../src/tls/certificates.js';

const DAY = 24 * 3600_000;
const YEAR = 365 * DAY;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const identity = { service: 'sidecar-injector', namespace: 'sidecar-injector' };
const context = (now: Date, caInBundle = true) => ({ identity, now, caInBundle });

function stored(ca: KeyPairPem, serving: KeyPairPem, extra: StoredCertificates = {}): StoredCertificates {
  return { caCert: ca.cert, caKey: ca.key, tlsCert: serving.cert, tlsKey: serving.key, ...extra };
}

function writes(plan: CertificatePlan): Exclude<CertificatePlan, { action: 'keep' }> {
  if (plan.action === 'keep') throw new Error(`expected a write, got ${JSON.stringify(plan)}`);
  return plan;
}

const issuer = (certPem: string) => new X509Certificate(certPem);
const issuedBy = (certPem: string, caPem: string) => issuer(certPem).checkIssued(issuer(caPem));
const count = (pem: string) => pem.match(/BEGIN CERTIFICATE/g)?.length ?? 0;

let ca: KeyPairPem;
let serving: KeyPairPem;
beforeAll(() => {
  ca = generateCertificateAuthority({ now: T0 });
  serving = generateServingCertificate(ca, { ...identity, now: T0 });
});

describe('planCertificates', () => {
  it('creates everything when there is nothing', () => {
    expect(planCertificates(undefined, context(T0))).toEqual({ action: 'rotate-ca', reason: 'no certificates yet', keepServing: false });
    expect(planCertificates({}, context(T0))).toMatchObject({ action: 'rotate-ca', keepServing: false });
  });

  it('keeps a good pair and looks again at the serving certificate\'s renewal time (2/3 of its life)', () => {
    const plan = planCertificates(stored(ca, serving), context(at(DAY)));
    expect(plan).toEqual({ action: 'keep', nextCheck: renewalTime(serving.cert) });
    const lifetime = new Date(issuer(serving.cert).validTo).getTime() - new Date(issuer(serving.cert).validFrom).getTime();
    expect(renewalTime(serving.cert).getTime() - new Date(issuer(serving.cert).validFrom).getTime()).toBeCloseTo((lifetime * 2) / 3, -4);
  });

  it('renews the serving certificate once two thirds of its life have passed, not before', () => {
    const renewAt = renewalTime(serving.cert).getTime() - T0.getTime();
    expect(planCertificates(stored(ca, serving), context(at(renewAt - 1_000))).action).toBe('keep');
    expect(writes(planCertificates(stored(ca, serving), context(at(renewAt))))).toEqual({
      action: 'issue-serving',
      reason: expect.stringMatching(/^serving certificate expires at .* \(renewal due since/),
    });
  });

  it('renews a serving certificate that misses a name, is not the CA\'s, or does not match its key', () => {
    const now = at(DAY);
    expect(writes(planCertificates(stored(ca, serving), { ...context(now), identity: { ...identity, namespace: 'webhooks' } }))).toEqual({
      action: 'issue-serving',
      reason: 'serving certificate does not cover sidecar-injector.webhooks',
    });
    const otherCa = generateCertificateAuthority({ now: T0 });
    const foreign = generateServingCertificate(otherCa, { ...identity, now: T0 });
    expect(writes(planCertificates(stored(ca, foreign), context(now))).reason).toBe('serving certificate was not issued by the CA');
    const other = generateServingCertificate(ca, { ...identity, now: T0 });
    expect(writes(planCertificates(stored(ca, { cert: serving.cert, key: other.key }), context(now))).reason).toBe(
      'serving key does not match the certificate',
    );
    expect(writes(planCertificates({ caCert: ca.cert, caKey: ca.key }, context(now))).reason).toBe('no serving certificate and key');
  });

  it('rotates the CA two thirds into its life, keeping a still-valid serving certificate for the 2nd step', () => {
    const late = at(6.7 * YEAR);
    const recent = generateServingCertificate(ca, { ...identity, now: at(6.6 * YEAR) });
    expect(planCertificates(stored(ca, recent), context(late))).toEqual({
      action: 'rotate-ca',
      reason: expect.stringMatching(/^CA expires at .* \(renewal due since/),
      keepServing: true,
    });
    // The serving certificate from year 0 has long expired: nothing to keep.
    expect(planCertificates(stored(ca, serving), context(late))).toMatchObject({ action: 'rotate-ca', keepServing: false });
  });

  it('replaces a CA it cannot sign with (key missing) but keeps the serving certificate that CA signed', () => {
    const plan = planCertificates({ caCert: ca.cert, tlsCert: serving.cert, tlsKey: serving.key }, context(at(DAY)));
    expect(plan).toEqual({ action: 'rotate-ca', reason: 'no CA certificate and key', keepServing: true });
  });
});

describe('a CA rotation, step by step', () => {
  it('new CA + old serving certificate, then the serving certificate moves once the bundle trusts the new CA', () => {
    const rotation = at(6.7 * YEAR);
    const recent = generateServingCertificate(ca, { ...identity, now: at(6.6 * YEAR) });
    const before = stored(ca, recent);

    // Step 1: a new CA; the serving pair stays, the old CA is kept as previous; the time is noted.
    const step1 = issueCertificates(before, writes(planCertificates(before, context(rotation))), identity, rotation);
    expect(step1.caCert).not.toBe(ca.cert);
    expect(step1.tlsCert).toBe(recent.cert);
    expect(step1.tlsKey).toBe(recent.key);
    expect(step1.previousCaCert).toBe(ca.cert);
    expect(step1.caRotatedAt).toEqual(rotation);
    const bundle = caBundleFor(step1, rotation);
    expect(count(bundle)).toBe(2);
    expect(bundle.startsWith(step1.caCert ?? '')).toBe(true);

    // Until every caBundle trusts the new CA: wait, and look again in a minute.
    expect(planCertificates(step1, context(at(6.7 * YEAR + DAY), false))).toEqual({
      action: 'keep',
      nextCheck: at(6.7 * YEAR + DAY + CA_BUNDLE_RECHECK_MS),
      waitingFor: 'ca-bundle',
    });
    // Trusted, but API servers need a moment to load the new bundle.
    expect(planCertificates(step1, context(at(6.7 * YEAR + 1_000)))).toEqual({
      action: 'keep',
      nextCheck: at(6.7 * YEAR + CA_PROPAGATION_GRACE_MS),
      waitingFor: 'propagation',
    });

    // Step 2: the serving certificate moves to the new CA; the old CA stays in the bundle (replicas still serve
    // the old certificate until they see the Secret change).
    const later = at(6.7 * YEAR + CA_PROPAGATION_GRACE_MS);
    const plan2 = writes(planCertificates(step1, context(later)));
    expect(plan2).toEqual({ action: 'issue-serving', reason: 'CA rotated: the serving certificate moves to the new CA' });
    const step2 = issueCertificates(step1, plan2, identity, later);
    expect(issuedBy(step2.tlsCert ?? '', step2.caCert ?? '')).toBe(true);
    expect(step2.caCert).toBe(step1.caCert);
    expect(step2.previousCaCert).toBe(ca.cert);
    expect(step2.caRotatedAt).toBeUndefined();
    expect(count(caBundleFor(step2, later))).toBe(2);
    expect(planCertificates(step2, context(later)).action).toBe('keep');

    // The next regular renewal drops the old CA.
    const renewal = renewalTime(step2.tlsCert ?? '');
    const step3 = issueCertificates(step2, writes(planCertificates(step2, context(renewal))), identity, renewal);
    expect(step3.previousCaCert).toBeUndefined();
    expect(count(caBundleFor(step3, renewal))).toBe(1);
  });

  it('drops an expired previous CA from the bundle, and looks again when it expires', () => {
    const old = generateCertificateAuthority({ now: T0, validityDays: 30 });
    const holding = stored(ca, serving, { previousCaCert: old.cert });
    expect(count(caBundleFor(holding, at(DAY)))).toBe(2);
    expect(planCertificates(holding, context(at(DAY)))).toEqual({
      action: 'keep',
      nextCheck: new Date(issuer(old.cert).validTo),
    });
    expect(caBundleFor(holding, at(31 * DAY))).toBe(ca.cert);
  });

  it('starts over when the CA has expired altogether', () => {
    const after = at(10 * YEAR + DAY);
    const plan = writes(planCertificates(stored(ca, serving), context(after)));
    expect(plan).toMatchObject({ action: 'rotate-ca', keepServing: false, reason: expect.stringMatching(/^CA expired at/) });
    const next = issueCertificates(stored(ca, serving), plan, identity, after);
    expect(next.previousCaCert).toBeUndefined();
    expect(issuedBy(next.tlsCert ?? '', next.caCert ?? '')).toBe(true);
    expect(planCertificates(next, context(after)).action).toBe('keep');
  });
});

describe('Secret layout', () => {
  it('maps the keys both ways; a merge patch deletes what is absent', () => {
    const holding = stored(ca, serving, { previousCaCert: 'previous', caRotatedAt: T0 });
    const fields = secretFieldsFor(holding);
    expect(Object.keys(fields.data).sort()).toEqual(['ca-previous.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(fields.annotations).toEqual({ [CA_ROTATED_AT_ANNOTATION]: T0.toISOString() });
    const data = Object.fromEntries(Object.entries(fields.data).filter((e): e is [string, string] => e[1] !== null));
    expect(storedFromSecret(data, { [CA_ROTATED_AT_ANNOTATION]: T0.toISOString() })).toEqual(holding);

    const plain = secretFieldsFor(stored(ca, serving));
    expect(plain.data['ca-previous.crt']).toBeNull();
    expect(plain.annotations[CA_ROTATED_AT_ANNOTATION]).toBeNull();
  });

  it('ignores other keys, empty values and an unreadable annotation', () => {
    expect(storedFromSecret({ 'tls.crt': 'c', 'tls.key': ' ', other: 'x' }, { [CA_ROTATED_AT_ANNOTATION]: 'soon' })).toEqual({
      tlsCert: 'c',
    });
    expect(servingPair({ tlsCert: 'c' })).toBeUndefined();
    expect(servingPair({ tlsCert: 'c', tlsKey: 'k' })).toEqual({ cert: 'c', key: 'k' });
  });
});
