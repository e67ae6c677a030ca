/**
 * The one watcher of files the kubelet mounts (the config ConfigMap, a certificate Secret) or tools replace.
 * It watches the files' directories, not the files: the kubelet updates a volume by swapping a `..data` symlink
 * and editors and tools replace a file by an atomic rename — both replace the inode a file watch would hold.
 * It only says "look again": what to read and what counts as a change is the caller's.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface MountedFilesOptions {
  /** Coalesces the burst of events one update makes (the kubelet's swap is several renames). Default 100 ms. */
  debounceMs?: number;
  /** A slow re-read as a safety net for events the platform does not deliver. */
  pollMs: number;
}

export interface MountedFilesWatch {
  /** Asks for a look after `delayMs` (default: the debounce); a later request replaces an earlier one. */
  schedule(delayMs?: number): void;
  close(): void;
}

/** Calls `onChange` (debounced) whenever something happens to `paths` in their directories, and every `pollMs`. */
export function watchMountedFiles(paths: readonly string[], onChange: () => void, options: MountedFilesOptions): MountedFilesWatch {
  const debounceMs = options.debounceMs ?? 100;
  const names = new Set(paths.map((path) => basename(path)));
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (delayMs = debounceMs): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, delayMs);
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((path) => dirname(path)))) {
    try {
      const watcher = watch(dir, (_event, changed) => {
        // `..data`, `..data_tmp`, `..2026_…`: a kubelet swap; one of our names: an edit or a rename over the file.
        if (changed === null || names.has(changed) || changed.startsWith('..')) schedule();
      });
      watcher.on('error', () => schedule());
      watchers.push(watcher);
    } catch {
      // No directory watch (missing directory, exhausted inotify watches): the poll still catches changes.
    }
  }
  const poll = setInterval(() => schedule(), options.pollMs);
  poll.unref();

  return {
    schedule,
    close: () => {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
