/**
 * What the webhook's TLS listener accepts. Lives in src/tls so that both the listener (src/http) and the
 * certificate reloader (which builds new secure contexts) read one policy; dependencies point inwards.
 */
import type { SecureVersion } from 'node:tls';

export const MIN_TLS_VERSION: SecureVersion = 'TLSv1.2';

/**
 * TLS 1.3: OpenSSL's three suites, all AEAD with forward secrecy. TLS 1.2: only ECDHE key exchange with AEAD
 * ciphers — no static-RSA key exchange (no forward secrecy) and no CBC (padding-oracle history). Go's crypto/tls,
 * which the API server uses, offers all of these. The 1.3 suites are spelled out because Node applies the list to
 * both versions: a list without them would switch TLS 1.3 off.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * The options every secure context of the listener is built with, the first and each one after a certificate
 * reload (`setSecureContext` resets whatever it is not given to Node's defaults).
 */
export const TLS_CONTEXT_POLICY = { minVersion: MIN_TLS_VERSION, ciphers: TLS_CIPHERS } as const;
