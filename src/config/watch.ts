/**
 * The one loader of the config file, and what a change of it means (src/runtime/mounted-files.ts watches it).
 */
import { readFile } from 'node:fs/promises';
import { watchMountedFiles } from '../runtime/mounted-files.js';
import type { InjectorConfig } from '../core/types.js';
import { parseConfig, type ConfigResult } from './parse.js';

/** The config and the exact text it came from, so a watcher knows what "unchanged" means. */
export type LoadedConfig = { ok: true; config: InjectorConfig; text: string } | { ok: false; error: string };

export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return { ok: false, error: `cannot read ${path} (${code})` };
  }
  const result: ConfigResult = parseConfig(text);
  return result.ok ? { ...result, text } : result;
}

export interface ConfigReloadEvents {
  onReload(config: InjectorConfig): void;
  /** The new file is invalid or unreadable: the previous config stays in force. */
  onError(error: string): void;
}

export interface ConfigWatcher {
  current(): InjectorConfig;
  /** Re-reads the file now (SIGHUP); resolves once done. */
  check(): Promise<void>;
  close(): void;
}

export interface WatchOptions {
  /** Coalesces the burst of events one update makes (the kubelet's swap is several renames). */
  debounceMs?: number;
  /** A slow re-read as a safety net for events the platform does not deliver. */
  pollMs?: number;
}

/**
 * Watches from `initial` on: the caller has already loaded the file, and any text other than `initial.text` is a
 * change — including one made between that load and the watch starting.
 */
export function watchConfigFile(
  path: string,
  initial: { config: InjectorConfig; text: string },
  events: ConfigReloadEvents,
  options: WatchOptions = {},
): ConfigWatcher {
  let current = initial.config;
  let lastText: string | undefined = initial.text;
  let closed = false;
  let reading = Promise.resolve();

  const reread = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      // Mid-swap the file can be briefly absent; a real removal is reported once and the old config kept.
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      if (lastText !== '') events.onError(`cannot read ${path} (${code}); keeping the previous configuration`);
      lastText = '';
      return;
    }
    if (closed || text === lastText) return;
    lastText = text;
    const result = parseConfig(text);
    if (result.ok) {
      current = result.config;
      events.onReload(result.config);
    } else {
      events.onError(`${path}: ${result.error}; keeping the previous configuration`);
    }
  };

  const files = watchMountedFiles(
    [path],
    () => {
      // A failed read must not leave the chain rejected: every later change would be an unhandled rejection.
      reading = reading.then(reread, reread);
    },
    { pollMs: options.pollMs ?? 10_000, ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }) },
  );
  // A change made before the watch started is caught by this first read.
  files.schedule();

  return {
    current: () => current,
    check: () => {
      // A failed read must not leave the chain rejected: every later change would be an unhandled rejection.
      reading = reading.then(reread, reread);
      return reading;
    },
    close: () => {
      closed = true;
      files.close();
    },
  };
}
