/**
 * The one loader and watcher of the config file. It watches the file's directory, not the file: the kubelet
 * updates a ConfigMap volume by swapping the `..data` symlink, and editors and tools replace files by an atomic
 * rename — both replace the inode a file watch would be holding.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
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
  const debounceMs = options.debounceMs ?? 100;
  let current = initial.config;
  let lastText: string | undefined = initial.text;
  let timer: NodeJS.Timeout | undefined;
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

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      reading = reading.then(reread);
    }, debounceMs);
  };

  const name = basename(path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, changed) => {
      // Any `..data`/`..2026_…` entry is part of a kubelet swap; our own name is an edit or rename.
      if (changed === null || changed === name || changed.startsWith('..')) schedule();
    });
    watcher.on('error', () => schedule());
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(schedule, options.pollMs ?? 10_000);
  poll.unref();
  // A change made before the watch started is caught by this first read.
  schedule();

  return {
    current: () => current,
    check: () => {
      reading = reading.then(reread);
      return reading;
    },
    close: () => {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
