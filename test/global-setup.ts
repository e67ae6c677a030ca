/**
 * Compiles src/ to dist/ once before the tests, so child-process tests can run `node dist/main.js ...` exactly as
 * the image does. Type errors are reported but do not stop the suite (tsc still emits, and `npm run typecheck`
 * is the gate for types); a build that produces no dist/main.js does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './support/fixtures.js';

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: repoRoot, encoding: 'utf8' });
  if (result.status !== 0) {
    process.stderr.write(`global-setup: tsc -p tsconfig.build.json reported errors:\n${result.stdout}${result.stderr}\n`);
  }
  if (!existsSync(join(repoRoot, 'dist', 'main.js'))) {
    throw new Error('global-setup: the build produced no dist/main.js');
  }
  // The bundle is what ships (image, `make run`): one test runs it too.
  const bundle = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'bundle.mjs')], { cwd: repoRoot, encoding: 'utf8' });
  if (bundle.status !== 0) throw new Error(`global-setup: bundling failed:\n${bundle.stdout}${bundle.stderr}`);
}
