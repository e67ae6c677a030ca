import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  certificateFilePaths,
  readCertificateFiles,
  writeCertificateFiles,
  writeFileAtomic,
} from '../../src/tls/certificate-files.js';
import type { CertificateBundle } from '../../src/tls/certificates.js';

// The file layer does not care whether the PEM is real; fake text keeps these tests fast.
function fakeBundle(tag: string): CertificateBundle {
  return {
    ca: { cert: `ca cert ${tag}\n`, key: `ca key ${tag}\n` },
    serving: { cert: `tls cert ${tag}\n`, key: `tls key ${tag}\n` },
  };
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cert-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('certificateFilePaths', () => {
  it('names the four files in the directory', () => {
    expect(certificateFilePaths('/etc/webhook/certs')).toEqual({
      dir: '/etc/webhook/certs',
      caCert: '/etc/webhook/certs/ca.crt',
      caKey: '/etc/webhook/certs/ca.key',
      tlsCert: '/etc/webhook/certs/tls.crt',
      tlsKey: '/etc/webhook/certs/tls.key',
    });
  });
});

describe('writeCertificateFiles', () => {
  it('creates a missing directory and writes exactly the four files', async () => {
    const target = join(dir, 'nested', 'certs');
    const paths = await writeCertificateFiles(target, fakeBundle('a'));
    expect(paths).toEqual(certificateFilePaths(target));
    expect((await readdir(target)).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(await readFile(paths.caCert, 'utf8')).toBe('ca cert a\n');
    expect(await readFile(paths.caKey, 'utf8')).toBe('ca key a\n');
    expect(await readFile(paths.tlsCert, 'utf8')).toBe('tls cert a\n');
    expect(await readFile(paths.tlsKey, 'utf8')).toBe('tls key a\n');
  });

  it.each([
    { file: 'ca.crt', expected: 0o644 },
    { file: 'ca.key', expected: 0o600 },
    { file: 'tls.crt', expected: 0o644 },
    { file: 'tls.key', expected: 0o600 },
  ])('$file has mode $expected', async ({ file, expected }) => {
    await writeCertificateFiles(dir, fakeBundle('a'));
    expect(await mode(join(dir, file))).toBe(expected);
  });

  it('replaces existing files, and a too-open key ends up 0600', async () => {
    await writeFile(join(dir, 'tls.key'), 'old\n', { mode: 0o666 });
    await writeCertificateFiles(dir, fakeBundle('a'));
    await writeCertificateFiles(dir, fakeBundle('b'));
    expect(await readFile(join(dir, 'tls.key'), 'utf8')).toBe('tls key b\n');
    expect(await mode(join(dir, 'tls.key'))).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  });

  it('replaces by rename: a reader holding the old file still reads it whole', async () => {
    await writeCertificateFiles(dir, fakeBundle('old'));
    const reader = await open(join(dir, 'tls.crt'), 'r');
    try {
      await writeCertificateFiles(dir, fakeBundle('new'));
      expect(await reader.readFile('utf8')).toBe('tls cert old\n');
      expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe('tls cert new\n');
    } finally {
      await reader.close();
    }
  });

  it('modes do not depend on the umask', async (ctx) => {
    let previous = 0;
    try {
      previous = process.umask(0o077);
    } catch {
      ctx.skip('worker threads cannot change the umask (the forks pool can)');
    }
    try {
      await writeCertificateFiles(dir, fakeBundle('a'));
    } finally {
      process.umask(previous);
    }
    expect(await mode(join(dir, 'tls.crt'))).toBe(0o644);
    expect(await mode(join(dir, 'tls.key'))).toBe(0o600);
  });

  it('fails cleanly when the directory is a file', async () => {
    const notADir = join(dir, 'file');
    await writeFile(notADir, '');
    await expect(writeCertificateFiles(notADir, fakeBundle('a'))).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('writeFileAtomic', () => {
  it('leaves no temporary file behind when the rename fails', async () => {
    // A directory in the way makes rename(2) fail after the temp file was written.
    await mkdir(join(dir, 'tls.crt'));
    await expect(writeFileAtomic(join(dir, 'tls.crt'), 'data', 0o644)).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['tls.crt']);
  });

  it('leaves no temporary file behind on success', async () => {
    await writeFileAtomic(join(dir, 'x'), 'one', 0o600);
    await writeFileAtomic(join(dir, 'x'), 'two', 0o600);
    expect(await readdir(dir)).toEqual(['x']);
    expect(await readFile(join(dir, 'x'), 'utf8')).toBe('two');
  });
});

describe('readCertificateFiles', () => {
  it('returns what exists', async () => {
    expect(await readCertificateFiles(join(dir, 'absent'))).toEqual({});
    await writeFile(join(dir, 'tls.crt'), 'c');
    expect(await readCertificateFiles(dir)).toEqual({ tlsCert: 'c' });
    await writeCertificateFiles(dir, fakeBundle('a'));
    expect(await readCertificateFiles(dir)).toEqual({
      caCert: 'ca cert a\n',
      caKey: 'ca key a\n',
      tlsCert: 'tls cert a\n',
      tlsKey: 'tls key a\n',
    });
  });

  it('reports errors other than a missing file', async () => {
    await mkdir(join(dir, 'tls.key'));
    await expect(readCertificateFiles(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});
