/**
 * What the webhook's TLS listener accepts. Lives in src/tls so that both the listener (src/http) and the
 * certificate reloader (which builds new secure contexts) read one policy; dependencies point inwards.
 */
import type { SecureVersion } from 'node:tls';

export const MIN_TLS_VERSION: SecureVersion = 'TLSv1.2';
