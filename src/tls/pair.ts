/**
 * The one check that a PEM certificate and key can serve together. Callers word the problem for their reader
 * (a flag name at start-up, a reload log line, a stored Secret).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { errorLine } from '../error-line.js';

/** A PEM serving certificate (possibly followed by its chain) and its private key. */
export interface TlsPair {
  cert: string;
  key: string;
}

export type PairCheck =
  | { ok: true; certificate: X509Certificate }
  | { ok: false; part: 'certificate' | 'key'; detail: string }
  | { ok: false; part: 'match' };

/** Whether the certificate and the key parse, and the key belongs to the certificate. */
export function checkPair(pair: TlsPair): PairCheck {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (err) {
    return { ok: false, part: 'certificate', detail: errorLine(err) };
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(pair.key));
  } catch (err) {
    return { ok: false, part: 'key', detail: errorLine(err) };
  }
  return matches ? { ok: true, certificate } : { ok: false, part: 'match' };
}
