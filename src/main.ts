#!/usr/bin/env node
/**
 * The `sidecar-injector` executable. Subcommands are imported lazily: `certs` never loads fastify, and `serve`
 * loads only what serving needs. This file and the subcommand it starts are the only readers of process.env.
 */
import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';

// Node ≥ 22.1 (the image's LTS) can cache compiled code on disk (in the pod: the /tmp emptyDir): later starts of
// the same image skip most of the compilation. Node 20 has no such call; a cache that cannot be written is ignored.
const withCompileCache = nodeModule as { enableCompileCache?: () => unknown };
withCompileCache.enableCompileCache?.();

const USAGE = `Usage: sidecar-injector <command> [options]

Commands:
  serve      run the mutating admission webhook (HTTPS) and its metrics listener
  inject     inject the sidecar into manifests offline (Pods and workload pod templates)
  uninject   remove what the injector added, offline
  certs      write a development CA and serving certificate
  check      diagnose the injector in the cluster of the current kubeconfig
  repair     restart the workloads whose pods were created without the sidecar

Options:
  -h, --help     show this help (or: sidecar-injector <command> --help)
  -v, --version  print the version
`;

const EXIT_USAGE = 2;

/** From package.json, one level up from dist/main.js or two from the bundle in dist/bundle/. */
function version(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (manifest.name === 'sidecar-injector' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // Not there: try the next place.
    }
  }
  return 'unknown';
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = { stdout: process.stdout, stderr: process.stderr };
  switch (command) {
    case 'serve': {
      const { runServe } = await import('./cli/serve.js');
      const { POD_NAMESPACE, KUBECONFIG, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT } = process.env;
      return runServe(rest, { ...out, env: { POD_NAMESPACE, KUBECONFIG, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT } });
    }
    case 'inject': {
      const { runInject } = await import('./cli/inject.js');
      const { readAllStdin } = await import('./cli/io.js');
      return runInject(rest, { ...out, readStdin: readAllStdin });
    }
    case 'uninject': {
      const { runUninject } = await import('./cli/inject.js');
      const { readAllStdin } = await import('./cli/io.js');
      return runUninject(rest, { ...out, readStdin: readAllStdin });
    }
    case 'certs': {
      const { runCerts } = await import('./cli/certs.js');
      return runCerts(rest, out);
    }
    case 'check': {
      const { runCheck } = await import('./cli/check.js');
      const { KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, POD_NAMESPACE } = process.env;
      return runCheck(rest, { ...out, env: { KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, POD_NAMESPACE } });
    }
    case 'repair': {
      const { runRepair } = await import('./cli/repair.js');
      const { KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, POD_NAMESPACE } = process.env;
      return runRepair(rest, { ...out, env: { KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, POD_NAMESPACE } });
    }
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`sidecar-injector ${version()}\n`);
      return 0;
    case undefined:
      process.stderr.write(USAGE);
      return EXIT_USAGE;
    default:
      process.stderr.write(`sidecar-injector: unknown command "${command}"\n\n${USAGE}`);
      return EXIT_USAGE;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // A bug, not a user error: one line on stderr, the stack only when asked for.
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`sidecar-injector: unexpected error: ${message.split('\n')[0] ?? message}\n`);
    if (process.env.SIDECAR_INJECTOR_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    process.exitCode = 1;
  },
);
