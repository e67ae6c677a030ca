/**
 * The configuration source: the built-in defaults, or a YAML file read at start and reloaded when it changes
 * (the previous configuration stays in force when the new file is invalid).
 */
import type { FastifyBaseLogger } from 'fastify';
import { defaultConfig } from '../core/defaults.js';
import type { InjectorConfig } from '../core/types.js';
import type { AdmissionMetrics } from '../http/metrics.js';
import { errorLine } from '../error-line.js';
import type { Part } from './part.js';

export interface ConfigSource extends Part {
  /** The configuration in force; read per request. */
  current(): InjectorConfig;
}

export interface ConfigSourceOptions {
  /** Absent: `fixed`, else the built-in defaults. */
  file?: string;
  /** A configuration held in memory, never reloaded (tests). */
  fixed?: InjectorConfig;
  log: () => FastifyBaseLogger;
  metrics: () => AdmissionMetrics;
  injectorNamespace: string;
}

export function configSource(options: ConfigSourceOptions): ConfigSource {
  let current = options.fixed ?? defaultConfig();
  let watcher: { current(): InjectorConfig; check(): Promise<void>; close(): void } | undefined;
  const path = options.file;
  return {
    name: 'config',
    current: () => watcher?.current() ?? current,
    async start() {
      if (path !== undefined) {
        // Loaded only when asked for: the config module and its YAML parser stay out of a default start.
        const { loadConfigFile, watchConfigFile } = await import('../config/watch.js');
        const loaded = await loadConfigFile(path);
        if (!loaded.ok) throw new Error(`invalid --config ${path}: ${errorLine(loaded.error)}`);
        current = loaded.config;
        // Watching from the text just read: a change made after this load is never missed.
        watcher = watchConfigFile(path, { config: loaded.config, text: loaded.text }, {
          onReload: () => {
            options.metrics().configReloads.inc({ result: 'ok' });
            options.log().info({ config: path }, 'configuration reloaded');
          },
          onError: (error) => {
            options.metrics().configReloads.inc({ result: 'failed' });
            options.log().warn({ config: path, error }, 'configuration not reloaded: the previous one stays in force');
          },
        });
      }
      options.log().info({ injectorNamespace: options.injectorNamespace, config: path ?? (options.fixed === undefined ? 'built-in defaults' : 'in memory') }, 'configuration');
    },
    ready: () => true,
    async close() {
      watcher?.close();
    },
    async reload() {
      // A part's reload never rejects (SIGHUP must not become an unhandled rejection).
      await watcher?.check().catch(() => undefined);
    },
  };
}
