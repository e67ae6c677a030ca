/**
 * Every bad input to the offline CLI: one clear line naming the file (and the document, or the byte offset when
 * the bytes cannot be decoded), exit 1, nothing on stdout, and work bounded by the input's size.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runInject, runUninject } from '../../src/cli/inject.js';
import type { PodObject } from '../../src/core/types.js';
import { repoRoot } from '../support/fixtures.js';
import { captureIo } from '../support/io.js';

const workloadsText = readFileSync(join(repoRoot, 'test', 'fixtures', 'manifests', 'workloads.yaml'), 'utf8');

async function injectFile(content: string | Uint8Array, run = runInject): Promise<{ code: number; out: string; err: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'offline-input-'));
  const file = join(dir, 'in.yaml');
  await writeFile(file, content);
  const io = captureIo();
  const code = await run(['-f', file], io);
  return { code, out: io.out(), err: io.err(), file };
}

const laughs = (levels: number): string =>
  ['a: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]', ...Array.from({ length: levels }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`)].join('\n');

describe('offline input errors', () => {
  it.each([
    ['invalid UTF-8 names the byte offset', Buffer.concat([Buffer.from('kind: ConfigMap\ndata: {a: "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]), /in\.yaml: byte offset 27: invalid UTF-8 \(byte 0xff\)/],
    ['UTF-32 is refused', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from('k\0\0\0')]), /in\.yaml: UTF-32 input is not supported/],
    ['an unpaired UTF-16 surrogate names the byte offset', Buffer.from([0xff, 0xfe, 0x61, 0, 0x00, 0xd8, 0x62, 0]), /in\.yaml: byte offset 4: unpaired UTF-16 surrogate/],
    ['a control character names the document', 'kind: ConfigMap\n---\nkind: Pod\nmetadata: {name: "a\u0001"}\n', /in\.yaml: document 2: control character U\+0001/],
    ['an alias bomb', `kind: ConfigMap\n---\n${laughs(9)}\n`, /in\.yaml: document 2: aliases expand past \d+ nodes and characters/],
    ['an alias to another document', 'kind: ConfigMap\ndata: &d {a: b}\n---\nkind: ConfigMap\ndata: *d\n', /in\.yaml: document 2: alias \*d refers to no earlier anchor in this document/],
    ['an alias inside its own anchor', 'kind: ConfigMap\ndata: &d {a: *d}\n', /in\.yaml: document 1: alias \*d refers to the node that contains it/],
    ['100k-deep JSON', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /in\.yaml: document 1: nesting deeper than 1000 levels/],
    ['100k-deep YAML flow', `kind: ConfigMap\n---\ndata: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, /in\.yaml: document 2: nesting deeper than 1000 levels/],
    ['100k-deep YAML block', `data:\n${'- '.repeat(100_000)}x\n`, /in\.yaml: document 1: nesting deeper than 1000 levels/],
    ['deep nesting after a comment-only document names the right one', `---\nkind: A\n---\n# c\n---\nb: ${'['.repeat(2000)}\n`, /in\.yaml: document 3: nesting deeper than 1000 levels/],
    ['deep nesting after a document end names the right one', `a: 1\n...\nb: ${'{a: '.repeat(2000)}\n`, /in\.yaml: document 2: nesting deeper than 1000 levels/],
    ['a JSON integer JavaScript cannot hold', '{"kind": "Pod", "spec": {"securityContext": {"runAsUser": 9007199254740993}}}', /in\.yaml: document 1: integer 9007199254740993 cannot be carried exactly/],
  ])('%s', async (_what, content, message) => {
    const result = await injectFile(content);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(message);
    expect(result.err.trim().split('\n')).toHaveLength(1);
    expect(result.err).not.toMatch(/unexpected error/);
    expect(result.out).toBe('');
  });

  it('bounds alias expansion by the input size: a large anchor expanded many times is refused', async () => {
    const big = 'y'.repeat(1_000_000);
    const content = `kind: ConfigMap\ndata:\n  a: &a "${big}"\n${Array.from({ length: 100 }, (_, i) => `  k${i}: *a`).join('\n')}\n`;
    const result = await injectFile(content);
    expect(result.code).toBe(1);
    const limit = Number(/expand past (\d+)/.exec(result.err)?.[1]);
    // The work allowed is a small multiple of the input, far below the 100 MB the aliases stand for.
    expect(limit).toBeLessThan(5 * content.length + 300_000);
    expect(result.out).toBe('');
  });

  it('allows ordinary anchors and expands them in the output', async () => {
    const content = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: app\n      image: nginx\n      env: &env [{name: A, value: "yes"}]\n    - name: worker\n      image: nginx\n      env: *env\n';
    const result = await injectFile(content);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).not.toMatch(/[&*]env/);
    const pod = parse(result.out, { version: '1.1', schema: 'yaml-1.1' }) as PodObject;
    expect(pod.spec?.containers.map((c) => c.env)).toEqual([[{ name: 'A', value: 'yes' }], [{ name: 'A', value: 'yes' }], undefined]);
  });

  it.each([
    ['UTF-16LE', 'utf16le', [0xff, 0xfe]],
    ['UTF-16BE', 'utf16be', [0xfe, 0xff]],
    ['UTF-8 with a byte order mark', 'utf8', [0xef, 0xbb, 0xbf]],
  ])('%s with a byte order mark is read as kubectl reads it', async (_what, encoding, bom) => {
    const body = encoding === 'utf16be' ? Buffer.from(workloadsText, 'utf16le').swap16() : Buffer.from(workloadsText, encoding as BufferEncoding);
    const decoded = await injectFile(Buffer.concat([Buffer.from(bom), body]));
    const plain = await injectFile(workloadsText);
    expect(decoded.err).toBe('');
    expect(decoded.code).toBe(0);
    expect(decoded.out).toBe(plain.out);
  });

  it('uninject refuses the same way', async () => {
    const result = await injectFile(`${laughs(9)}\n`, runUninject);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/in\.yaml: document 1: aliases expand past/);
  });
});
