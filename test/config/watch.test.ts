/**
 * Hot reload through real file-system events, done the way the kubelet updates a ConfigMap volume (a `..data`
 * symlink swapped by rename) and the way editors and tools do (write a temp file, rename over).
 */
import { mkdtemp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { watchConfigFile, type ConfigWatcher } from '../../src/config/watch.js';
import type { InjectorConfig } from '../../src/core/types.js';

interface Recorder {
  reloads: InjectorConfig[];
  errors: string[];
  next(): Promise<'reload' | 'error'>;
}

function recorder(): Recorder & { onReload(c: InjectorConfig): void; onError(e: string): void } {
  const waiters: ((kind: 'reload' | 'error') => void)[] = [];
  const r = {
    reloads: [] as InjectorConfig[],
    errors: [] as string[],
    next: () => new Promise<'reload' | 'error'>((resolve) => waiters.push(resolve)),
    onReload(config: InjectorConfig) {
      r.reloads.push(config);
      waiters.shift()?.('reload');
    },
    onError(error: string) {
      r.errors.push(error);
      waiters.shift()?.('error');
    },
  };
  return r;
}

/** What the caller loaded before watching: the config and the exact text it came from. */
function loaded(text: string): { config: InjectorConfig; text: string } {
  const result = parseConfig(text);
  if (!result.ok) throw new Error(result.error);
  return { config: result.config, text };
}

/** Lays out a directory exactly as the kubelet's atomic writer does. */
async function kubeletVolume(dir: string, files: Record<string, string>, generation: number): Promise<void> {
  const stamped = join(dir, `..2026_11_25_00_00_0${generation}.000000000`);
  await mkdir(stamped);
  for (const [name, text] of Object.entries(files)) await writeFile(join(stamped, name), text);
  await symlink(stamped.split('/').at(-1)!, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation === 1) for (const name of Object.keys(files)) await symlink(join('..data', name), join(dir, name));
}

describe('watchConfigFile', () => {
  let dir: string;
  let watcher: ConfigWatcher | undefined;
  afterEach(async () => {
    watcher?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows a kubelet ..data symlink swap, and keeps the old config when the new one is invalid', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-'));
    await kubeletVolume(dir, { 'config.yaml': 'sidecar: { image: "busybox:1.36.0" }\n' }, 1);
    const events = recorder();
    watcher = watchConfigFile(join(dir, 'config.yaml'), loaded('sidecar: { image: "busybox:1.36.0" }\n'), events, { debounceMs: 20 });

    const reloaded = events.next();
    await kubeletVolume(dir, { 'config.yaml': 'sidecar: { image: "busybox:1.37.0" }\n' }, 2);
    expect(await reloaded).toBe('reload');
    expect(watcher.current().sidecar.image).toBe('busybox:1.37.0');

    const rejected = events.next();
    await kubeletVolume(dir, { 'config.yaml': 'nativeSidecar: sometimes\n' }, 3);
    expect(await rejected).toBe('error');
    expect(events.errors.at(-1)).toMatch(/nativeSidecar: must be one of/);
    expect(watcher.current().sidecar.image).toBe('busybox:1.37.0');

    const repaired = events.next();
    await kubeletVolume(dir, { 'config.yaml': 'nativeSidecar: never\n' }, 4);
    expect(await repaired).toBe('reload');
    expect(watcher.current().nativeSidecar).toBe('never');
  });

  it('follows an atomic rename over the file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, 'failure: open\n');
    const events = recorder();
    watcher = watchConfigFile(path, loaded('failure: open\n'), events, { debounceMs: 20 });

    const reloaded = events.next();
    await writeFile(join(dir, '.config.yaml.tmp'), 'failure: closed\n');
    await rename(join(dir, '.config.yaml.tmp'), path);
    expect(await reloaded).toBe('reload');
    expect(watcher.current().failure).toBe('closed');

    const rejected = events.next();
    await writeFile(join(dir, '.config.yaml.tmp'), 'failure: [\n');
    await rename(join(dir, '.config.yaml.tmp'), path);
    expect(await rejected).toBe('error');
    expect(watcher.current().failure).toBe('closed');
    expect(events.reloads).toHaveLength(1);
  });

  it('reports a change made between loading the file and starting the watch', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    const path = join(dir, 'config.yaml');
    const before = loaded('failure: open\n');
    await writeFile(path, 'failure: closed\n');
    const events = recorder();
    const reloaded = events.next();
    watcher = watchConfigFile(path, before, events, { debounceMs: 20 });
    expect(await reloaded).toBe('reload');
    expect(watcher.current().failure).toBe('closed');
  });
});
