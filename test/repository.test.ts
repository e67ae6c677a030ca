/**
 * The repository stands alone: a user clones it and nothing else. No tracked file may read or point at a folder
 * beside the checkout (the fixtures, examples and decisions the project needs live in it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/fixtures.js';

// A path that leaves the checkout for a sibling folder named like the one the project was once developed beside.
const SIBLING = 'shared';
const OUTSIDE_THE_REPOSITORY = `../${SIBLING}`;
const OUTSIDE_AS_SEGMENTS = [`'..', '${SIBLING}'`, `"..", "${SIBLING}"`];

function trackedFiles(): string[] | undefined {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' });
  if (listed.status !== 0) return undefined;
  return listed.stdout.split('\0').filter((f) => f !== '' && !f.startsWith('node_modules/'));
}

describe('the repository stands alone', () => {
  const files = trackedFiles();

  it.skipIf(files === undefined)('no file reads or mentions a folder outside the checkout', () => {
    const offenders = files!.filter((file) => {
      const text = readFileSync(join(repoRoot, file), 'latin1');
      return text.includes(OUTSIDE_THE_REPOSITORY) || OUTSIDE_AS_SEGMENTS.some((s) => text.includes(s));
    });
    expect(offenders).toEqual([]);
  });

  it('the quick start posts a request that ships in the repository', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const posted = /--data @(\S+)/.exec(readme)?.[1];
    expect(posted).toBeDefined();
    expect(() => JSON.parse(readFileSync(join(repoRoot, posted!), 'utf8'))).not.toThrow();
  });
});
