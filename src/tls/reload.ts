/**
 * Serving certificate hot reload. A new pair goes into force with `setSecureContext`: connections already open
 * keep the context they were handshaken with (the API server's keep-alive connections are never dropped), new
 * handshakes get the new certificate. A pair that does not parse or does not match is refused, and the previous
 * one stays in force.
 *
 * Two sources feed the same switch: the certificate files (cert-manager's Secret volume, `make certs`), watched
 * here, and the self-managed Secret (src/cluster/self-managed.ts); src/runtime/certificate-part.ts owns it and
 * attaches it to the HTTPS server as the server is built.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { TLS_CONTEXT_POLICY } from './policy.js';
import type { CertificateMetrics } from './metrics.js';
import { checkPair, type TlsPair } from './pair.js';
import { errorLine } from '../error-line.js';
import { watchMountedFiles } from '../runtime/mounted-files.js';

export type { TlsPair } from './pair.js';

/** What the logs and metrics say about a serving certificate. */
export interface ServingCertificateInfo {
  fingerprint256: string;
  notAfter: Date;
  subject: string;
}

export type PairInspection = { ok: true; info: ServingCertificateInfo } | { ok: false; problem: string };

/** Whether the pair can serve: the certificate and key parse, and the key belongs to the certificate. */
export function inspectServingPair(pair: TlsPair): PairInspection {
  const checked = checkPair(pair);
  if (!checked.ok) {
    if (checked.part === 'match') return { ok: false, problem: 'private key does not belong to the certificate' };
    const what = checked.part === 'certificate' ? 'certificate' : 'private key';
    return { ok: false, problem: `${what} does not parse (${checked.detail})` };
  }
  const cert = checked.certificate;
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notAfter.getTime())) return { ok: false, problem: `unreadable expiry "${cert.validTo}"` };
  return { ok: true, info: { fingerprint256: cert.fingerprint256, notAfter, subject: cert.subject.replace(/\n/g, ', ') } };
}

/** The one method of `tls.Server` (and so `https.Server`) a reload needs. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/** Structured logging, one line per event (pino's and fastify's loggers fit). */
export interface CertificateLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export type ApplyResult = { ok: true; changed: boolean; info: ServingCertificateInfo } | { ok: false; problem: string };

/** Holds the serving pair in force and swaps it. */
export interface CertificateSwitch {
  /** Puts the pair in force for new handshakes, or refuses it (logged, counted) and keeps the previous one. */
  apply(pair: TlsPair, source: string): ApplyResult;
  /** Reports a pair that will not be applied (logged, counted as a failed reload). */
  reject(problem: string, source: string): void;
  pair(): TlsPair;
  info(): ServingCertificateInfo;
  /** Makes `target` (the HTTPS server, when it is built) serve the pair in force now and every later one. */
  attach(target: SecureContextTarget): void;
}

export interface CertificateSwitchOptions {
  /** The server, when it exists already; otherwise `attach` it once built. */
  target?: SecureContextTarget;
  /** The pair the server was created with. */
  initial: TlsPair;
  log: CertificateLog;
  metrics?: CertificateMetrics;
  /**
   * `setSecureContext` replaces every context option it is given, and resets the ones it is not to Node's
   * defaults: the TLS floor must be passed again each time. Default `{ minVersion: 'TLSv1.2' }`.
   */
  contextOptions?: SecureContextOptions;
}

export function createCertificateSwitch(options: CertificateSwitchOptions): CertificateSwitch {
  const first = inspectServingPair(options.initial);
  if (!first.ok) throw new Error(`initial serving certificate: ${first.problem}`);
  const contextOptions = options.contextOptions ?? TLS_CONTEXT_POLICY;
  let pair = options.initial;
  let info = first.info;
  let target = options.target;
  options.metrics?.expiry.set(info.notAfter.getTime() / 1000);

  const reject = (problem: string, source: string): void => {
    options.metrics?.reloads.inc({ result: 'failed' });
    options.log.warn(
      { source, problem, inForce: info.fingerprint256 },
      'serving certificate not reloaded: the previous one stays in force',
    );
  };

  return {
    apply(next, source) {
      if (next.cert === pair.cert && next.key === pair.key) return { ok: true, changed: false, info };
      const inspected = inspectServingPair(next);
      if (!inspected.ok) {
        reject(inspected.problem, source);
        return inspected;
      }
      try {
        // Built first so that an OpenSSL refusal (e.g. an encrypted key) leaves the server untouched.
        createSecureContext({ ...contextOptions, cert: next.cert, key: next.key });
        target?.setSecureContext({ ...contextOptions, cert: next.cert, key: next.key });
      } catch (err) {
        const problem = `TLS context refused the pair (${errorLine(err)})`;
        reject(problem, source);
        return { ok: false, problem };
      }
      const previous = info;
      pair = next;
      info = inspected.info;
      options.metrics?.reloads.inc({ result: 'ok' });
      options.metrics?.expiry.set(info.notAfter.getTime() / 1000);
      options.log.info(
        {
          source,
          fingerprint256: info.fingerprint256,
          notAfter: info.notAfter.toISOString(),
          previous: previous.fingerprint256,
        },
        'serving certificate reloaded: new handshakes get it, open connections keep theirs',
      );
      return { ok: true, changed: true, info };
    },
    reject,
    pair: () => pair,
    info: () => info,
    attach(next) {
      target = next;
      next.setSecureContext({ ...contextOptions, cert: pair.cert, key: pair.key });
    },
  };
}

export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface CertificateWatchOptions {
  /** Coalesces the burst of events one update makes (the kubelet's swap is several renames). Default 100 ms. */
  debounceMs?: number;
  /** A slow re-read as a safety net for events the platform does not deliver. Default 30 s. */
  pollMs?: number;
  /**
   * How long a bad pair may stay bad before it is reported. The certificate and the key are two files written one
   * after the other: a reader between the two writes sees a mismatch that the second write repairs. Default 3 s.
   */
  settleMs?: number;
  /** Re-read interval while a pair is settling. Default 250 ms. */
  retryMs?: number;
  /** A monotonic clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

export interface CertificateFileWatcher {
  /** Reads the files now (the watcher does this on every change); resolves once done. */
  check(): Promise<void>;
  close(): void;
}

/**
 * Watches the directories of the certificate and key files (not the files: the kubelet swaps a `..data` symlink
 * and tools rename over the file, both replacing the inode a file watch would hold) and feeds every new pair to
 * the switch.
 */
export function watchCertificateFiles(
  files: CertificateFiles,
  certificates: CertificateSwitch,
  options: CertificateWatchOptions = {},
): CertificateFileWatcher {
  const settleMs = options.settleMs ?? 3_000;
  const retryMs = options.retryMs ?? 250;
  const now = options.now ?? (() => performance.now());
  const source = files.cert === files.key ? files.cert : `${files.cert} + ${files.key}`;
  let closed = false;
  let chain = Promise.resolve();
  // What is on disk and known bad: when it first appeared (to let a writer finish) and whether it was reported.
  let bad: { content: string; since: number; reported: boolean } | undefined;

  const readPair = async (): Promise<TlsPair | string> => {
    try {
      return { cert: await readFile(files.cert, 'utf8'), key: await readFile(files.key, 'utf8') };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? errorLine(err);
      return `cannot read the certificate files (${code})`;
    }
  };

  const reread = async (): Promise<void> => {
    if (closed) return;
    const read = await readPair();
    if (closed) return;
    const current = certificates.pair();
    if (typeof read !== 'string' && read.cert === current.cert && read.key === current.key) {
      bad = undefined;
      return;
    }
    const problem = typeof read === 'string' ? read : inspectedProblem(read);
    if (problem === undefined && typeof read !== 'string') {
      bad = undefined;
      certificates.apply(read, source);
      return;
    }
    const content = typeof read === 'string' ? read : `${read.cert}\u0000${read.key}`;
    if (bad?.content !== content) bad = { content, since: now(), reported: false };
    if (bad.reported) return;
    if (now() - bad.since < settleMs) {
      schedule(retryMs);
      return;
    }
    bad.reported = true;
    certificates.reject(problem ?? 'unreadable', source);
  };

  const check = (): Promise<void> => {
    chain = chain.then(reread, reread);
    return chain;
  };

  const mounted = watchMountedFiles([files.cert, files.key], () => void check(), {
    pollMs: options.pollMs ?? 30_000,
    ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
  });
  const schedule = (delayMs: number): void => {
    if (!closed) mounted.schedule(delayMs);
  };

  return {
    check,
    close: () => {
      closed = true;
      mounted.close();
    },
  };
}

function inspectedProblem(pair: TlsPair): string | undefined {
  const inspected = inspectServingPair(pair);
  return inspected.ok ? undefined : inspected.problem;
}
