/**
 * `node dist/main.js serve` as a child process, exactly as the image runs it (dist/ is built by
 * test/global-setup.ts), with its JSON log lines collected for tests to wait on.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

export interface ServedProcess {
  child: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * The test process's environment without cluster access (whatever the developer's shell holds), plus what the
 * test adds; POD_NAMESPACE is the test's own.
 */
export function serveEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, POD_NAMESPACE: 'sidecar-injector-test', ...extra };
  if (extra.KUBECONFIG === undefined) delete env.KUBECONFIG;
  if (extra.KUBERNETES_SERVICE_HOST === undefined) delete env.KUBERNETES_SERVICE_HOST;
  return env;
}

const children: ChildProcessWithoutNullStreams[] = [];

/** The compiled modules, as the tests run them, and the bundle, as the image and `make run` run it. */
export const COMPILED_MAIN = join(repoRoot, 'dist', 'main.js');
export const BUNDLED_MAIN = join(repoRoot, 'dist', 'bundle', 'main.js');

export function spawnServe(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; nodeFlags?: string[]; main?: string } = {},
): ServedProcess {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), options.main ?? COMPILED_MAIN, 'serve', ...args], {
    cwd: repoRoot,
    env: options.env ?? serveEnv(),
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let rest = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part !== '') lines.push(JSON.parse(part) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    async waitForLine(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(predicate);
        if (found !== undefined) return found;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`no such log line; stdout: ${JSON.stringify(lines)} stderr: ${stderr}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

/** Kills every served process still running (afterEach/afterAll), even after a failed assertion. */
export function killServedProcesses(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
