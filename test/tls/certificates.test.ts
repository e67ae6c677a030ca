import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateAuthorityProblem,
  certificateExpiry,
  certificateValidity,
  generateCertificateAuthority,
  generateDevCertificates,
  generateServingCertificate,
  randomSerialNumber,
  renewalTime,
  serviceDnsNames,
  servingCertificateProblem,
  type CertificateBundle,
  type KeyPairPem,
} from '../../src/tls/certificates.js';

const SERVICE = 'sidecar-injector';
const NAMESPACE = 'sidecar-injector';
const SERVICE_NAMES = [
  'sidecar-injector',
  'sidecar-injector.sidecar-injector',
  'sidecar-injector.sidecar-injector.svc',
  'sidecar-injector.sidecar-injector.svc.cluster.local',
];
const DAY_MS = 24 * 60 * 60 * 1000;
const SKEW_MS = 5 * 60 * 1000;
// X.509 times have one-second resolution.
const NOW = new Date('2031-03-04T05:06:07.000Z');

// Key generation dominates: generate once, share across the read-only assertions.
let dev: CertificateBundle;
let otherCa: KeyPairPem;
beforeAll(() => {
  dev = generateDevCertificates({ service: SERVICE, namespace: NAMESPACE });
  otherCa = generateCertificateAuthority({ commonName: 'someone-else' });
});

function x509(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

/** The parsed extension as forge reads it; fails the test when absent. */
function extension(pem: string, name: string): Record<string, unknown> {
  const ext = forge.pki.certificateFromPem(pem).getExtension(name);
  if (ext === undefined) throw new Error(`no ${name} extension`);
  return ext as Record<string, unknown>;
}

function authorityKeyIdentifierHex(pem: string): string {
  const ext = extension(pem, 'authorityKeyIdentifier');
  const value = ext['value'];
  if (typeof value !== 'string') throw new Error('authorityKeyIdentifier has no raw value');
  const seq = forge.asn1.fromDer(value);
  const children = Array.isArray(seq.value) ? seq.value : [];
  const keyId = children.find((c) => c.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && c.type === 0);
  if (keyId === undefined || typeof keyId.value !== 'string') throw new Error('no keyIdentifier');
  return forge.util.bytesToHex(keyId.value);
}

describe('randomSerialNumber', () => {
  it.each([
    { name: 'all zero', first: 0x00 },
    { name: 'high bit set', first: 0x80 },
    { name: 'all ones', first: 0xff },
    { name: 'small', first: 0x01 },
  ])('is 16 bytes, positive and minimally encoded when the first byte is $name', ({ first }) => {
    const bytes = new Uint8Array(16).fill(first);
    const hex = randomSerialNumber(bytes);
    expect(hex).toHaveLength(32);
    const top = Number.parseInt(hex.slice(0, 2), 16);
    expect(top & 0x80).toBe(0);
    expect(top & 0x40).toBe(0x40);
    expect(hex.slice(2)).toBe(Buffer.from(bytes.subarray(1)).toString('hex'));
  });

  it('differs between certificates', () => {
    const serials = new Set(Array.from({ length: 50 }, () => randomSerialNumber()));
    expect(serials.size).toBe(50);
  });

  it('is what the certificates carry', () => {
    for (const pem of [dev.ca.cert, dev.serving.cert]) {
      expect(x509(pem).serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
    }
  });
});

describe('the development chain', () => {
  it('verifies: the CA is self-signed and signed the serving certificate', () => {
    const ca = x509(dev.ca.cert);
    const serving = x509(dev.serving.cert);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.issuer).toBe(ca.subject);
  });

  it('does not verify against another CA', () => {
    const serving = x509(dev.serving.cert);
    const other = x509(otherCa.cert);
    expect(serving.checkIssued(other)).toBe(false);
    expect(serving.verify(other.publicKey)).toBe(false);
  });

  it('names the service and localhost, nothing else', () => {
    const serving = x509(dev.serving.cert);
    expect(serving.subject).toBe('CN=sidecar-injector.sidecar-injector.svc');
    expect(serving.subjectAltName).toBe(
      [...SERVICE_NAMES, 'localhost'].map((n) => `DNS:${n}`).join(', ') + ', IP Address:127.0.0.1',
    );
  });

  it.each([
    { name: 'CA', pem: () => dev.ca, isCa: true },
    { name: 'serving', pem: () => dev.serving, isCa: false },
  ])('$name: RSA 2048, SHA-256, key matches, PKCS#8 key loadable by TLS', ({ pem, isCa }) => {
    const pair = pem();
    const cert = x509(pair.cert);
    expect(cert.ca).toBe(isCa);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cert.checkPrivateKey(createPrivateKey(pair.key))).toBe(true);
    expect(forge.pki.certificateFromPem(pair.cert).siginfo.algorithmOid).toBe(forge.pki.oids['sha256WithRSAEncryption']);
    expect(pair.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(pair.cert).not.toContain('\r');
    expect(() => tls.createSecureContext({ cert: pair.cert, key: pair.key })).not.toThrow();
  });

  it('keys are not interchangeable', () => {
    expect(x509(dev.ca.cert).checkPrivateKey(createPrivateKey(dev.serving.key))).toBe(false);
  });

  it('CA extensions: critical cA with pathLen 0, keyCertSign + cRLSign, subject key id', () => {
    expect(extension(dev.ca.cert, 'basicConstraints')).toMatchObject({ critical: true, cA: true, pathLenConstraint: 0 });
    const keyUsage = extension(dev.ca.cert, 'keyUsage');
    expect(keyUsage).toMatchObject({ critical: true, keyCertSign: true, cRLSign: true, digitalSignature: false });
    expect(extension(dev.ca.cert, 'subjectKeyIdentifier')['subjectKeyIdentifier']).toMatch(/^[0-9a-f]{40}$/);
  });

  it('serving extensions: not a CA, server auth only, authority key id = CA subject key id', () => {
    expect(extension(dev.serving.cert, 'basicConstraints')).toMatchObject({ cA: false });
    expect(extension(dev.serving.cert, 'keyUsage')).toMatchObject({
      critical: true,
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: false,
    });
    expect(extension(dev.serving.cert, 'extKeyUsage')).toMatchObject({ serverAuth: true });
    expect(x509(dev.serving.cert).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    const caKeyId = extension(dev.ca.cert, 'subjectKeyIdentifier')['subjectKeyIdentifier'];
    expect(authorityKeyIdentifierHex(dev.serving.cert)).toBe(caKeyId);
  });

  const openssl = spawnSync('openssl', ['version']).status === 0;
  it.skipIf(!openssl)('passes `openssl verify -x509_strict -purpose sslserver`', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certs-openssl-'));
    try {
      await writeFile(join(dir, 'ca.crt'), dev.ca.cert);
      await writeFile(join(dir, 'tls.crt'), dev.serving.cert);
      const result = spawnSync(
        'openssl',
        ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), join(dir, 'tls.crt')],
        { encoding: 'utf8' },
      );
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('OK');
      expect(result.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('serving certificate names', () => {
  it.each([
    {
      name: 'service names only',
      opts: { service: 'hooks', namespace: 'ops' },
      sans: 'DNS:hooks, DNS:hooks.ops, DNS:hooks.ops.svc, DNS:hooks.ops.svc.cluster.local',
    },
    {
      name: 'extras, duplicates dropped, IPv4 and IPv6',
      opts: {
        service: 'hooks',
        namespace: 'ops',
        extraDnsNames: ['hooks.ops.svc', 'webhook.example.com', '*.example.org'],
        ipAddresses: ['10.0.0.7', '::1', '10.0.0.7'],
      },
      sans:
        'DNS:hooks, DNS:hooks.ops, DNS:hooks.ops.svc, DNS:hooks.ops.svc.cluster.local, DNS:webhook.example.com, ' +
        'DNS:*.example.org, IP Address:10.0.0.7, IP Address:0:0:0:0:0:0:0:1',
    },
  ])('$name', ({ opts, sans }) => {
    const cert = x509(generateServingCertificate(dev.ca, opts).cert);
    expect(cert.subjectAltName).toBe(sans);
    expect(cert.subject).toBe(`CN=${opts.service}.${opts.namespace}.svc`);
  });

  it('serviceDnsNames lists the four forms', () => {
    expect(serviceDnsNames(SERVICE, NAMESPACE)).toEqual(SERVICE_NAMES);
  });

  it.each([
    { name: 'uppercase service', opts: { service: 'Hooks', namespace: 'ops' }, error: /invalid service name/ },
    { name: 'service starting with a digit', opts: { service: '1hooks', namespace: 'ops' }, error: /invalid service name/ },
    { name: 'dotted namespace', opts: { service: 'hooks', namespace: 'a.b' }, error: /invalid namespace/ },
    {
      name: 'bad DNS name',
      opts: { service: 'hooks', namespace: 'ops', extraDnsNames: ['under_score.example'] },
      error: /invalid DNS name/,
    },
    { name: 'bad IP', opts: { service: 'hooks', namespace: 'ops', ipAddresses: ['300.1.1.1'] }, error: /invalid IP/ },
    { name: 'zero validity', opts: { service: 'hooks', namespace: 'ops', validityDays: 0 }, error: /positive/ },
  ])('rejects $name', ({ opts, error }) => {
    expect(() => generateServingCertificate(dev.ca, opts)).toThrow(error);
  });
});

describe('signing CA checks', () => {
  it.each([
    { name: 'a non-CA certificate', ca: () => dev.serving, error: /not a certificate authority/ },
    { name: 'a key that does not match', ca: () => ({ cert: dev.ca.cert, key: dev.serving.key }), error: /does not match/ },
    { name: 'garbage', ca: () => ({ cert: 'nope', key: dev.ca.key }), error: /CA certificate/ },
    { name: 'a garbage key', ca: () => ({ cert: dev.ca.cert, key: 'nope' }), error: /CA key/ },
  ])('refuses $name', ({ ca, error }) => {
    expect(() => generateServingCertificate(ca(), { service: SERVICE, namespace: NAMESPACE })).toThrow(error);
    expect(certificateAuthorityProblem(ca())).toMatch(error);
  });

  it('accepts a PKCS#1 CA key', () => {
    const pkcs1 = createPrivateKey(dev.ca.key).export({ type: 'pkcs1', format: 'pem' }).toString();
    const serving = generateServingCertificate({ cert: dev.ca.cert, key: pkcs1 }, { service: SERVICE, namespace: NAMESPACE });
    expect(x509(serving.cert).verify(x509(dev.ca.cert).publicKey)).toBe(true);
  });
});

describe('validity periods', () => {
  let ca: KeyPairPem;
  beforeAll(() => {
    ca = generateCertificateAuthority({ now: NOW });
  });

  it.each([
    { name: 'CA default: 10 years', pem: () => ca.cert, days: 3650 },
    {
      name: 'serving default: 1 year',
      pem: () => generateServingCertificate(ca, { service: SERVICE, namespace: NAMESPACE, now: NOW }).cert,
      days: 365,
    },
    {
      name: 'serving, 30 days',
      pem: () => generateServingCertificate(ca, { service: SERVICE, namespace: NAMESPACE, now: NOW, validityDays: 30 }).cert,
      days: 30,
    },
    {
      name: 'CA, 2 days',
      pem: () => generateCertificateAuthority({ now: NOW, validityDays: 2 }).cert,
      days: 2,
    },
  ])('$name, backdated 5 minutes', ({ pem, days }) => {
    const cert = pem();
    const { notBefore, notAfter } = certificateValidity(cert);
    expect(notBefore.toISOString()).toBe(new Date(NOW.getTime() - SKEW_MS).toISOString());
    expect(notAfter.toISOString()).toBe(new Date(NOW.getTime() + days * DAY_MS).toISOString());
    expect(certificateExpiry(cert)).toEqual(notAfter);
  });

  it('a serving certificate never outlives its CA', () => {
    const shortCa = generateCertificateAuthority({ now: NOW, validityDays: 10 });
    const serving = generateServingCertificate(shortCa, { service: SERVICE, namespace: NAMESPACE, now: NOW });
    expect(certificateExpiry(serving.cert)).toEqual(certificateExpiry(shortCa.cert));
  });

  it('an expired CA cannot sign', () => {
    const later = new Date(NOW.getTime() + 3651 * DAY_MS);
    expect(() => generateServingCertificate(ca, { service: SERVICE, namespace: NAMESPACE, now: later })).toThrow(/expired/);
  });

  it('years from 2050 on are encoded as GeneralizedTime and still read back', () => {
    const farCa = generateCertificateAuthority({ now: new Date('2045-06-01T00:00:00Z') });
    expect(certificateExpiry(farCa.cert).toISOString()).toBe('2055-05-30T00:00:00.000Z');
  });

  it('renewal is due two thirds into the lifetime', () => {
    const { notBefore, notAfter } = certificateValidity(ca.cert);
    const expected = notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
    expect(renewalTime(ca.cert).getTime()).toBeCloseTo(expected, -1);
  });

  it('certificateExpiry rejects garbage', () => {
    expect(() => certificateExpiry('not a certificate')).toThrow();
  });
});

describe('servingCertificateProblem', () => {
  const expectation = { service: SERVICE, namespace: NAMESPACE, extraDnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };

  it.each([
    { name: 'a fresh pair', pair: () => dev.serving, ca: () => dev.ca.cert, expect: {}, problem: undefined },
    { name: 'another service', pair: () => dev.serving, ca: () => dev.ca.cert, expect: { service: 'other' }, problem: /does not cover other/ },
    { name: 'an extra IP', pair: () => dev.serving, ca: () => dev.ca.cert, expect: { ipAddresses: ['10.1.1.1'] }, problem: /does not cover 10.1.1.1/ },
    { name: 'another CA', pair: () => dev.serving, ca: () => otherCa.cert, expect: {}, problem: /not issued by the CA/ },
    {
      name: 'the wrong key',
      pair: () => ({ cert: dev.serving.cert, key: dev.ca.key }),
      ca: () => dev.ca.cert,
      expect: {},
      problem: /key does not match/,
    },
    {
      name: 'a certificate past two thirds of its life',
      pair: () => dev.serving,
      ca: () => dev.ca.cert,
      expect: { now: new Date(Date.now() + 250 * DAY_MS) },
      problem: /renewal due/,
    },
    {
      name: 'an expired certificate',
      pair: () => dev.serving,
      ca: () => dev.ca.cert,
      expect: { now: new Date(Date.now() + 400 * DAY_MS) },
      problem: /serving certificate expired/,
    },
    { name: 'garbage', pair: () => ({ cert: 'x', key: 'y' }), ca: () => dev.ca.cert, expect: {}, problem: /does not parse/ },
  ])('$name', ({ pair, ca, expect: overrides, problem }) => {
    const result = servingCertificateProblem(pair(), ca(), { ...expectation, ...overrides });
    if (problem === undefined) expect(result).toBeUndefined();
    else expect(result).toMatch(problem);
  });
});

describe('a real TLS handshake', () => {
  let server: https.Server;
  let port: number;

  beforeAll(async () => {
    server = https.createServer({ cert: dev.serving.cert, key: dev.serving.key, minVersion: 'TLSv1.2' }, (_req, res) => {
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function get(options: https.RequestOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
  }

  it.each([
    { name: 'servername localhost', options: () => ({ ca: dev.ca.cert, servername: 'localhost' }) },
    { name: 'the IP address itself', options: () => ({ ca: dev.ca.cert }) },
    {
      name: 'servername = the service DNS name',
      options: () => ({ ca: dev.ca.cert, servername: 'sidecar-injector.sidecar-injector.svc' }),
    },
    {
      name: 'checkServerIdentity against the cluster-local name (as the API server would dial it)',
      options: () => ({
        ca: dev.ca.cert,
        checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
          tls.checkServerIdentity('sidecar-injector.sidecar-injector.svc.cluster.local', cert),
      }),
    },
  ])('succeeds trusting our CA via $name', async ({ options }) => {
    await expect(get(options())).resolves.toBe('ok');
  });

  it.each([
    {
      name: 'a client trusting a different CA',
      options: () => ({ ca: otherCa.cert, servername: 'localhost' }),
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    },
    {
      name: 'a client trusting only the system roots',
      options: () => ({ servername: 'localhost' }),
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    },
    {
      name: 'a name the certificate does not carry',
      options: () => ({ ca: dev.ca.cert, servername: 'other.sidecar-injector.svc' }),
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    },
  ])('fails for $name', async ({ options, code }) => {
    await expect(get(options())).rejects.toMatchObject({ code });
  });
});
