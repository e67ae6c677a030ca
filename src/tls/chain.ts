/**
 * X.509 as the API server judges a webhook's serving chain: a caBundle read as it reads one, and a served chain
 * (leaf first) verified against it. Pure: the certificates and the time are passed in.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { certificateValidity } from './certificates.js';

const MAX_CHAIN_DEPTH = 5;


/** Every certificate in a PEM bundle. */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** The CN of a distinguished name as Node prints it (one `KEY=value` per line), else the whole name. */
export function commonName(dn: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? dn.replace(/\n/g, ', ');
}

export function subjectCn(cert: X509Certificate): string {
  return commonName(cert.subject);
}

export function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export type CaBundleReading =
  | { ok: true; certificates: string[]; summary: string }
  | { ok: false; problem: string };

/** A caBundle as the API server reads it: base64 of one or more PEM certificates. */
export function readCaBundle(caBundle: string | undefined): CaBundleReading {
  if (caBundle === undefined || caBundle.trim() === '') return { ok: false, problem: 'absent' };
  let text: string;
  try {
    text = Buffer.from(caBundle, 'base64').toString('utf8');
  } catch {
    return { ok: false, problem: 'not base64' };
  }
  const certificates = pemCertificates(text);
  if (certificates.length === 0) return { ok: false, problem: 'holds no PEM certificate' };
  const names: string[] = [];
  for (const pem of certificates) {
    try {
      const cert = new X509Certificate(pem);
      names.push(`${subjectCn(cert)} (until ${day(certificateValidity(pem).notAfter)})`);
    } catch {
      return { ok: false, problem: 'holds a certificate that does not parse' };
    }
  }
  return { ok: true, certificates, summary: names.join(', ') };
}

export type ChainVerdict = { ok: true; summary: string; notAfter: Date } | { ok: false; problem: string };

/**
 * Verifies a served chain (leaf first) the way the API server does: some caBundle certificate signed the leaf,
 * directly or through intermediates the server sent; the leaf's SANs cover `host` (never the CN: Go ignores it);
 * every certificate on the path is within its validity period.
 */
export function verifyServedChain(chain: readonly string[], caBundle: readonly string[], host: string, now: Date): ChainVerdict {
  const [leafPem, ...intermediatePems] = chain;
  if (leafPem === undefined) return { ok: false, problem: 'no certificate was presented' };
  let leaf: X509Certificate;
  let intermediates: X509Certificate[];
  let roots: X509Certificate[];
  try {
    leaf = new X509Certificate(leafPem);
    intermediates = intermediatePems.map((pem) => new X509Certificate(pem));
    roots = caBundle.map((pem) => new X509Certificate(pem));
  } catch (err) {
    return { ok: false, problem: `a certificate does not parse: ${err instanceof Error ? err.message : String(err)}` };
  }
  const covers = isIP(host) !== 0 ? leaf.checkIP(host) !== undefined : leaf.checkHost(host, { subject: 'never' }) !== undefined;
  if (!covers) {
    return { ok: false, problem: `certificate ${subjectCn(leaf)} does not cover ${host} (subjectAltName: ${leaf.subjectAltName ?? 'none'})` };
  }
  const expired = (cert: X509Certificate, what: string): string | undefined => {
    const { notBefore, notAfter } = certificateValidity(cert.toString());
    if (now.getTime() < notBefore.getTime()) return `${what} ${subjectCn(cert)} is not valid before ${notBefore.toISOString()}`;
    if (now.getTime() >= notAfter.getTime()) return `${what} ${subjectCn(cert)} expired at ${notAfter.toISOString()}`;
    return undefined;
  };
  const leafTime = expired(leaf, 'certificate');
  if (leafTime !== undefined) return { ok: false, problem: leafTime };
  const signs = (issuer: X509Certificate, subject: X509Certificate): boolean =>
    subject.checkIssued(issuer) && subject.verify(issuer.publicKey);

  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth += 1) {
    const root = roots.find((r) => signs(r, current));
    if (root !== undefined) {
      const rootTime = expired(root, 'caBundle CA');
      if (rootTime !== undefined) return { ok: false, problem: rootTime };
      const notAfter = certificateValidity(leafPem).notAfter;
      return { ok: true, notAfter, summary: `${subjectCn(leaf)}, signed by ${subjectCn(root)}, valid until ${day(notAfter)}` };
    }
    const next = intermediates.find((i) => i !== current && signs(i, current));
    if (next === undefined) break;
    const nextTime = expired(next, 'intermediate');
    if (nextTime !== undefined) return { ok: false, problem: nextTime };
    current = next;
  }
  return {
    ok: false,
    problem: `certificate ${subjectCn(leaf)} (issuer ${commonName(leaf.issuer)}) is not signed by any caBundle certificate`,
  };
}

