/** What the caBundle of each webhook entry should be, and the smallest patch that gets it there. */
import { describe, expect, it } from 'vitest';
import { bundleTrusts, caBundlePatch, decodeCaBundle, pemCertificates } from '../../src/cluster/ca-bundle.js';

const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
const A = pem('QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB');
const B = pem('QkJCQkJCQkJCQkJC');
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('pemCertificates', () => {
  it('reads every certificate, ignoring line breaks, CRLF and text around them', () => {
    expect(pemCertificates(`subject=CN=a\n${A}${B.replace(/\n/g, '\r\n')}`)).toEqual([
      'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB',
      'QkJCQkJCQkJCQkJC',
    ]);
    expect(pemCertificates('')).toEqual([]);
    expect(decodeCaBundle(undefined)).toBe('');
    expect(decodeCaBundle(b64(A))).toBe(A);
  });
});

describe('caBundlePatch', () => {
  it('writes nothing when every entry already holds the same certificates in the same order', () => {
    const reformatted = A.replace(/\n/g, '\r\n');
    expect(caBundlePatch([{ name: 'a', caBundle: b64(A + B) }, { name: 'b', caBundle: b64(reformatted + B) }], A + B)).toEqual([]);
  });

  it('guards each write with a test of the entry name, and touches only the entries that differ', () => {
    const entries = [{ name: 'ns.x.io', caBundle: b64(A) }, { name: 'pod.x.io', caBundle: b64(B + A) }, { name: 'new.x.io' }];
    expect(caBundlePatch(entries, A + B)).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: 'ns.x.io' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64(A + B) },
      { op: 'test', path: '/webhooks/1/name', value: 'pod.x.io' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: b64(A + B) },
      { op: 'test', path: '/webhooks/2/name', value: 'new.x.io' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: b64(A + B) },
    ]);
  });

  it('refuses to write a bundle without a certificate (it would break every call)', () => {
    expect(() => caBundlePatch([{ name: 'a' }], '')).toThrow('refusing to write a caBundle without a certificate');
  });
});

describe('bundleTrusts', () => {
  it('is true only when every entry holds the CA, whatever else it holds', () => {
    expect(bundleTrusts([{ name: 'a', caBundle: b64(B + A) }, { name: 'b', caBundle: b64(A) }], A)).toBe(true);
    expect(bundleTrusts([{ name: 'a', caBundle: b64(A) }, { name: 'b', caBundle: b64(B) }], A)).toBe(false);
    expect(bundleTrusts([{ name: 'a' }], A)).toBe(false);
    expect(bundleTrusts(undefined, A)).toBe(false);
  });
});
