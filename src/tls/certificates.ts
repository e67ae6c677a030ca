import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { checkPair } from './pair.js';
import { errorLine } from '../error-line.js';

/** A certificate and its private key, both PEM (the key is PKCS#8). */
export interface KeyPairPem {
  cert: string;
  key: string;
}

export interface CertificateBundle {
  ca: KeyPairPem;
  serving: KeyPairPem;
}

export interface CaOptions {
  commonName?: string;
  validityDays?: number;
  now?: Date;
}

export interface ServingOptions {
  service: string;
  namespace: string;
  extraDnsNames?: string[];
  ipAddresses?: string[];
  validityDays?: number;
  now?: Date;
}

export const CA_VALIDITY_DAYS = 3650;
export const SERVING_VALIDITY_DAYS = 365;
export const DEFAULT_CA_COMMON_NAME = 'sidecar-injector-ca';
/** Names a developer's machine answers to, added to the development serving certificate. */
export const DEV_DNS_NAMES: readonly string[] = ['localhost'];
export const DEV_IP_ADDRESSES: readonly string[] = ['127.0.0.1'];

const RSA_BITS = 2048;
const SERIAL_BYTES = 16;
const DAY_MS = 24 * 60 * 60 * 1000;
// Nodes and the API server rarely agree on the time to the second; a certificate issued "now" would be
// rejected as not yet valid by a peer whose clock runs a little behind.
const CLOCK_SKEW_MS = 5 * 60 * 1000;
// Same rule as the in-cluster rotation: renew once two thirds of the lifetime have passed.
const RENEW_AT_FRACTION = 2 / 3;

// Kubernetes object names: a Service name is an RFC 1035 label, a namespace an RFC 1123 label. Checking here
// turns a typo into a clear error instead of a certificate that can never match the Service's DNS name.
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** A lowercase DNS name a certificate can carry, optionally a `*.` wildcard. */
export function isDnsName(name: string): boolean {
  return name.length <= 253 && DNS_NAME.test(name);
}

/** The names the API server may use to reach `service` in `namespace`, most specific last. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  if (!DNS_1035_LABEL.test(service)) {
    throw new Error(`invalid service name "${service}": must be a lowercase RFC 1035 label`);
  }
  if (!DNS_1123_LABEL.test(namespace)) {
    throw new Error(`invalid namespace "${namespace}": must be a lowercase RFC 1123 label`);
  }
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/**
 * A positive serial number of exactly 16 bytes, as hex.
 *
 * forge writes the hex bytes as the DER INTEGER content unchanged. A set top bit would make the serial negative,
 * and a zero first byte followed by a byte below 0x80 is a non-minimal encoding; Go's x509 parser (the API
 * server's) rejects both, so about one certificate in 256 would break webhook calls. Forcing the top bit to 0
 * and the next one to 1 avoids both and still leaves 126 random bits.
 */
export function randomSerialNumber(bytes: Uint8Array = randomBytes(SERIAL_BYTES)): string {
  if (bytes.length !== SERIAL_BYTES) {
    throw new Error(`serial number needs ${SERIAL_BYTES} random bytes, got ${bytes.length}`);
  }
  const serial = Buffer.from(bytes);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  return serial.toString('hex');
}

export function generateCertificateAuthority(opts: CaOptions = {}): KeyPairPem {
  const now = opts.now ?? new Date();
  const commonName = opts.commonName ?? DEFAULT_CA_COMMON_NAME;
  if (commonName.trim() === '') throw new Error('CA common name must not be empty');
  const keys = newRsaKeyPair();

  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = addDays(now, validityDays(opts.validityDays, CA_VALIDITY_DAYS));
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    // pathLen 0: this CA only ever signs serving certificates, so a leaked serving key cannot mint a sub-CA.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: certificateToPem(cert), key: keys.privateKeyPem };
}

export function generateServingCertificate(ca: KeyPairPem, opts: ServingOptions): KeyPairPem {
  const now = opts.now ?? new Date();
  const issuer = parseCertificateAuthority(ca);
  const dnsNames = unique([...serviceDnsNames(opts.service, opts.namespace), ...(opts.extraDnsNames ?? [])]);
  for (const dnsName of dnsNames) {
    if (!isDnsName(dnsName)) throw new Error(`invalid DNS name "${dnsName}"`);
  }
  const ipAddresses = unique(opts.ipAddresses ?? []);
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new Error(`invalid IP address "${ip}"`);
  }

  // A serving certificate outliving its CA would only pretend to be valid: the chain stops verifying when the
  // CA expires, so cap it there and let the renewal logic see the real end date.
  const requestedEnd = addDays(now, validityDays(opts.validityDays, SERVING_VALIDITY_DAYS));
  const caEnd = issuer.cert.validity.notAfter;
  const notAfter = requestedEnd.getTime() < caEnd.getTime() ? requestedEnd : caEnd;
  if (notAfter.getTime() <= now.getTime()) {
    throw new Error(`CA certificate expired at ${caEnd.toISOString()}`);
  }

  const keys = newRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: `${opts.service}.${opts.namespace}.svc` }]);
  cert.setIssuer(issuer.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...dnsNames.map((value) => ({ type: 2, value })),
        ...ipAddresses.map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash this certificate's own key, not the issuer's.
    { name: 'authorityKeyIdentifier', keyIdentifier: issuer.subjectKeyIdentifier },
  ]);
  cert.sign(issuer.privateKey, forge.md.sha256.create());
  return { cert: certificateToPem(cert), key: keys.privateKeyPem };
}

/** A fresh CA and a serving certificate for the Service plus `localhost` and `127.0.0.1` (for `make run`). */
export function generateDevCertificates(opts: { service: string; namespace: string; now?: Date }): CertificateBundle {
  // Validate before the CA's key generation, so a typo fails fast.
  serviceDnsNames(opts.service, opts.namespace);
  const ca = generateCertificateAuthority(opts.now === undefined ? {} : { now: opts.now });
  const serving = generateServingCertificate(ca, {
    service: opts.service,
    namespace: opts.namespace,
    extraDnsNames: [...DEV_DNS_NAMES],
    ipAddresses: [...DEV_IP_ADDRESSES],
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  return { ca, serving };
}

export function certificateExpiry(certPem: string): Date {
  return certificateValidity(certPem).notAfter;
}

/** Reads any certificate Node can parse (RSA or EC: cert-manager may issue either), not just forge's. */
export function certificateValidity(certPem: string): { notBefore: Date; notAfter: Date } {
  const cert = new X509Certificate(certPem);
  return { notBefore: parseOpenSslDate(cert.validFrom), notAfter: parseOpenSslDate(cert.validTo) };
}

/** When a certificate should be replaced: two thirds into its validity period. */
export function renewalTime(certPem: string): Date {
  const { notBefore, notAfter } = certificateValidity(certPem);
  return new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT_FRACTION);
}

export interface ServingExpectation {
  service: string;
  namespace: string;
  extraDnsNames?: string[];
  ipAddresses?: string[];
  now?: Date;
  /**
   * Accept a CA past its renewal time as long as it has not expired: while a CA rotates, the serving certificate
   * it signed stays in force until every caBundle trusts the new CA.
   */
  acceptCaDueForRenewal?: boolean;
}

/**
 * Why an existing serving pair should not be kept, or undefined when it is fine: it must parse, its key must
 * match, the CA must have signed it, it must cover every expected name and not be due for renewal.
 */
export function servingCertificateProblem(
  serving: KeyPairPem,
  caCertPem: string,
  expect: ServingExpectation,
): string | undefined {
  const now = expect.now ?? new Date();
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(serving.cert);
  } catch (err) {
    return `serving certificate does not parse: ${errorLine(err)}`;
  }
  try {
    ca = new X509Certificate(caCertPem);
  } catch (err) {
    return `CA certificate does not parse: ${errorLine(err)}`;
  }
  const pair = checkPair(serving);
  if (!pair.ok && pair.part === 'match') return 'serving key does not match the certificate';
  if (!pair.ok) return `serving key does not parse: ${pair.part === 'key' ? pair.detail : 'certificate unreadable'}`;
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'serving certificate was not issued by the CA';
  const caProblem =
    expect.acceptCaDueForRenewal === true ? validityProblem('CA', caCertPem, now) : lifetimeProblem('CA', caCertPem, now);
  const timeProblem = lifetimeProblem('serving certificate', serving.cert, now) ?? caProblem;
  if (timeProblem !== undefined) return timeProblem;
  for (const dnsName of [...serviceDnsNames(expect.service, expect.namespace), ...(expect.extraDnsNames ?? [])]) {
    // subject: 'never' so a matching CN cannot stand in for a SAN: Go ignores the CN.
    if (cert.checkHost(dnsName, { subject: 'never' }) === undefined) return `serving certificate does not cover ${dnsName}`;
  }
  for (const ip of expect.ipAddresses ?? []) {
    if (cert.checkIP(ip) === undefined) return `serving certificate does not cover ${ip}`;
  }
  return undefined;
}

/** Why a CA pair cannot keep signing, or undefined when it can. */
export function certificateAuthorityProblem(ca: KeyPairPem, now: Date = new Date()): string | undefined {
  try {
    parseCertificateAuthority(ca);
  } catch (err) {
    return errorLine(err);
  }
  return lifetimeProblem('CA', ca.cert, now);
}

function validityProblem(what: string, certPem: string, now: Date): string | undefined {
  const { notBefore, notAfter } = certificateValidity(certPem);
  if (now.getTime() < notBefore.getTime()) return `${what} is not valid before ${notBefore.toISOString()}`;
  if (now.getTime() >= notAfter.getTime()) return `${what} expired at ${notAfter.toISOString()}`;
  return undefined;
}

function lifetimeProblem(what: string, certPem: string, now: Date): string | undefined {
  const invalid = validityProblem(what, certPem, now);
  if (invalid !== undefined) return invalid;
  const { notAfter } = certificateValidity(certPem);
  const renewAt = renewalTime(certPem);
  if (now.getTime() >= renewAt.getTime()) {
    return `${what} expires at ${notAfter.toISOString()} (renewal due since ${renewAt.toISOString()})`;
  }
  return undefined;
}

interface ParsedAuthority {
  cert: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
  subjectKeyIdentifier: string;
}

function parseCertificateAuthority(ca: KeyPairPem): ParsedAuthority {
  let cert: forge.pki.Certificate;
  let privateKey: forge.pki.rsa.PrivateKey;
  try {
    cert = forge.pki.certificateFromPem(ca.cert);
  } catch (err) {
    // forge reads RSA only: an ECDSA CA (cert-manager's default) lands here.
    throw new Error(`CA certificate cannot be used for signing (an RSA CA is required): ${errorLine(err)}`);
  }
  try {
    privateKey = forge.pki.privateKeyFromPem(ca.key);
  } catch (err) {
    throw new Error(`CA key cannot be read (unencrypted RSA PEM required): ${errorLine(err)}`);
  }
  const constraints = cert.getExtension('basicConstraints');
  if (!hasProperty(constraints, 'cA') || constraints.cA !== true) {
    throw new Error('CA certificate is not a certificate authority (basicConstraints cA is not true)');
  }
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
  if (!publicKey.n.equals(privateKey.n) || !publicKey.e.equals(privateKey.e)) {
    throw new Error('CA key does not match the CA certificate');
  }
  // Reuse the identifier the CA declares (another tool may have derived it differently), else derive it.
  const ski = cert.getExtension('subjectKeyIdentifier');
  const subjectKeyIdentifier =
    hasProperty(ski, 'subjectKeyIdentifier') && typeof ski.subjectKeyIdentifier === 'string'
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : cert.generateSubjectKeyIdentifier().getBytes();
  return { cert, privateKey, subjectKeyIdentifier };
}

interface RsaKeyPair {
  publicKey: forge.pki.rsa.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
  privateKeyPem: string;
}

// Node's native generator, called directly: forge only delegates to it while `forge.options.usePureJavaScript`
// is false (a process-wide switch any dependency may flip), and its pure-JS fallback takes seconds, not ~150 ms.
function newRsaKeyPair(): RsaKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: RSA_BITS,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    privateKeyPem: privateKey,
  };
}

// forge emits CRLF line endings; LF keeps files diff-friendly and identical to what Node and openssl write.
function certificateToPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function validityDays(days: number | undefined, fallback: number): number {
  const value = days ?? fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`validity must be a positive number of days, got ${value}`);
  return value;
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

// Node 20's X509Certificate only offers OpenSSL's text form ("Jan  2 03:04:05 2035 GMT"), which V8's Date parses.
function parseOpenSslDate(text: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error(`unparseable certificate date "${text}"`);
  return date;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function hasProperty<K extends string>(value: unknown, key: K): value is Record<K, unknown> {
  return typeof value === 'object' && value !== null && key in value;
}

