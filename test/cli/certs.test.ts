import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCerts } from '../../src/cli/certs.js';
import { writeCertificateFiles } from '../../src/tls/certificate-files.js';
import { generateDevCertificates } from '../../src/tls/certificates.js';

const FILES = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'] as const;
const DAY_MS = 24 * 60 * 60 * 1000;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCerts(argv, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const file of FILES) files[file] = await readFile(join(dir, file), 'utf8');
  return files;
}

let dir: string;
let outDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'certs-cli-'));
  outDir = join(dir, 'certs');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('sidecar-injector certs', () => {
  it('writes a CA and a serving certificate and says what it wrote', async () => {
    const { code, stdout, stderr } = await run(['--out-dir', outDir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect((await readdir(outDir)).sort()).toEqual([...FILES]);
    for (const file of FILES) expect(stdout).toContain(join(outDir, file));
    expect(stdout).toContain('sidecar-injector.sidecar-injector.svc.cluster.local');
    expect(stdout).toContain('localhost');
    expect(stdout).toContain('127.0.0.1');
    expect(stdout).toMatch(/expires \d{4}-\d\d-\d\dT/);
    expect((await stat(join(outDir, 'tls.key'))).mode & 0o777).toBe(0o600);

    const files = await snapshot(outDir);
    const ca = new X509Certificate(files['ca.crt'] ?? '');
    const serving = new X509Certificate(files['tls.crt'] ?? '');
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.subject).toBe('CN=sidecar-injector.sidecar-injector.svc');
  });

  it('honours --service, --namespace and extra names', async () => {
    const { code } = await run([
      '--out-dir',
      outDir,
      '--service=hooks',
      '--namespace',
      'ops',
      '--dns-name',
      'host.docker.internal',
      '--ip-address',
      '172.17.0.1',
    ]);
    expect(code).toBe(0);
    const serving = new X509Certificate(await readFile(join(outDir, 'tls.crt')));
    expect(serving.subjectAltName).toBe(
      'DNS:hooks, DNS:hooks.ops, DNS:hooks.ops.svc, DNS:hooks.ops.svc.cluster.local, DNS:localhost, ' +
        'DNS:host.docker.internal, IP Address:127.0.0.1, IP Address:172.17.0.1',
    );
  });

  it('keeps valid files without --force, byte for byte', async () => {
    expect((await run(['--out-dir', outDir])).code).toBe(0);
    const before = await snapshot(outDir);
    const second = await run(['--out-dir', outDir]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^kept the existing certificates/);
    expect(second.stdout).toContain('--force');
    expect(await snapshot(outDir)).toEqual(before);
  });

  it('replaces everything, the CA included, with --force', async () => {
    expect((await run(['--out-dir', outDir])).code).toBe(0);
    const before = await snapshot(outDir);
    const forced = await run(['--out-dir', outDir, '--force']);
    expect(forced.code).toBe(0);
    const after = await snapshot(outDir);
    for (const file of FILES) expect(after[file], file).not.toBe(before[file]);
  });

  it('reissues a serving certificate that no longer fits, reusing the CA', async () => {
    expect((await run(['--out-dir', outDir])).code).toBe(0);
    const before = await snapshot(outDir);
    const renamed = await run(['--out-dir', outDir, '--service', 'renamed']);
    expect(renamed.code).toBe(0);
    expect(renamed.stdout).toContain('does not cover renamed');
    expect(renamed.stdout).toContain('existing CA, reused');
    const after = await snapshot(outDir);
    expect(after['ca.crt']).toBe(before['ca.crt']);
    expect(after['ca.key']).toBe(before['ca.key']);
    expect(after['tls.crt']).not.toBe(before['tls.crt']);
    const serving = new X509Certificate(after['tls.crt'] ?? '');
    expect(serving.verify(new X509Certificate(after['ca.crt'] ?? '').publicKey)).toBe(true);
  });

  it('replaces an expired serving certificate', async () => {
    const old = generateDevCertificates({
      service: 'sidecar-injector',
      namespace: 'sidecar-injector',
      now: new Date(Date.now() - 400 * DAY_MS),
    });
    await writeCertificateFiles(outDir, old);
    const { code, stdout } = await run(['--out-dir', outDir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/serving certificate expired at/);
    const serving = new X509Certificate(await readFile(join(outDir, 'tls.crt')));
    expect(new Date(serving.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * DAY_MS);
  });

  it('prints usage for --help', async () => {
    const { code, stdout, stderr } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: sidecar-injector certs/);
    expect(stdout).toContain('--out-dir');
    expect(stderr).toBe('');
  });

  it.each([
    { name: 'an unknown flag', argv: (out: string) => ['--out-dir', out, '--bogus'], error: "Unknown option '--bogus'" },
    { name: 'a flag without its value', argv: () => ['--out-dir'], error: "Option '--out-dir <value>' argument missing" },
    { name: 'a positional argument', argv: (out: string) => ['--out-dir', out, 'x'], error: "Unexpected argument 'x'" },
    {
      name: 'an invalid service name',
      argv: (out: string) => ['--out-dir', out, '--service', 'Bad_Name'],
      error: 'invalid service name "Bad_Name": must be a lowercase RFC 1035 label',
    },
    {
      name: 'an invalid namespace',
      argv: (out: string) => ['--out-dir', out, '--namespace=-ns'],
      error: 'invalid namespace "-ns": must be a lowercase RFC 1123 label',
    },
    {
      name: 'an invalid IP address',
      argv: (out: string) => ['--out-dir', out, '--ip-address', 'nope'],
      error: 'invalid --ip-address "nope"',
    },
    {
      name: 'an invalid DNS name',
      argv: (out: string) => ['--out-dir', out, '--dns-name', 'a b'],
      error: 'invalid --dns-name "a b"',
    },
    { name: 'an empty out dir', argv: () => ['--out-dir='], error: '--out-dir must not be empty' },
  ])('exits 2 on $name, with a one-line error and usage on stderr', async ({ argv, error }) => {
    const { code, stdout, stderr } = await run(argv(outDir));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const [first, second] = stderr.split('\n');
    expect(first).toBe(`sidecar-injector certs: ${error}`);
    expect(second).toBe('');
    expect(stderr).toContain('Usage: sidecar-injector certs');
    await expect(stat(outDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exits 1 when it cannot write', async () => {
    await writeFile(outDir, 'a file where the directory should be');
    const { code, stderr } = await run(['--out-dir', outDir]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sidecar-injector certs: cannot (read|write) /);
  });
});
