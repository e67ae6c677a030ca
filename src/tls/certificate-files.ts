import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { CertificateBundle } from './certificates.js';

/** The layout of a `kubernetes.io/tls` Secret plus the CA, so the same directory works mounted or local. */
export const CERTIFICATE_FILE_NAMES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  tlsCert: 'tls.crt',
  tlsKey: 'tls.key',
} as const;

export type CertificateFile = keyof typeof CERTIFICATE_FILE_NAMES;

export interface CertificateFilePaths {
  dir: string;
  caCert: string;
  caKey: string;
  tlsCert: string;
  tlsKey: string;
}

/** Whatever of the four files exists; a missing file is undefined. */
export type CertificateFileContents = Partial<Record<CertificateFile, string>>;

const CERT_MODE = 0o644;
const KEY_MODE = 0o600;

export function certificateFilePaths(dir: string): CertificateFilePaths {
  return {
    dir,
    caCert: join(dir, CERTIFICATE_FILE_NAMES.caCert),
    caKey: join(dir, CERTIFICATE_FILE_NAMES.caKey),
    tlsCert: join(dir, CERTIFICATE_FILE_NAMES.tlsCert),
    tlsKey: join(dir, CERTIFICATE_FILE_NAMES.tlsKey),
  };
}

export async function writeCertificateFiles(dir: string, bundle: CertificateBundle): Promise<CertificateFilePaths> {
  const paths = certificateFilePaths(dir);
  await mkdir(dir, { recursive: true });
  // Each file is replaced atomically, but the four together are not: the serving pair goes last, key before
  // certificate, so a watcher that reloads on tls.crt sees the matching key already in place.
  await writeFileAtomic(paths.caCert, bundle.ca.cert, CERT_MODE);
  await writeFileAtomic(paths.caKey, bundle.ca.key, KEY_MODE);
  await writeFileAtomic(paths.tlsKey, bundle.serving.key, KEY_MODE);
  await writeFileAtomic(paths.tlsCert, bundle.serving.cert, CERT_MODE);
  await syncDirectory(dir);
  return paths;
}

export async function readCertificateFiles(dir: string): Promise<CertificateFileContents> {
  const paths = certificateFilePaths(dir);
  const contents: CertificateFileContents = {};
  for (const file of Object.keys(CERTIFICATE_FILE_NAMES) as CertificateFile[]) {
    const text = await readOptionalFile(paths[file]);
    if (text !== undefined) contents[file] = text;
  }
  return contents;
}

/**
 * Writes `data` to `path` so that readers see either the old file or the whole new one: a temporary file in the
 * same directory (rename is only atomic within one filesystem), flushed, then renamed over the target.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // The mode is given at creation so a key is never readable by others, not even while empty.
    const handle = await open(temp, 'wx', mode);
    try {
      // The umask can only narrow the creation mode (077 would make certificates unreadable to other users):
      // pin it exactly while the file is still empty and under its temporary name.
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function readOptionalFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

// The renames live in the directory's entries; without this a crash could bring back the old files.
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some platforms (Windows) cannot open or fsync a directory; durability there is best effort.
  }
}

function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}
