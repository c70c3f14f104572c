// config/watch: calls back when the config file changes (config `watchConfig: true`), debounced. Watches the
// file's directory, not the file: editors and Kubernetes ConfigMap mounts replace files by rename, which a watch
// on the file itself would lose after the first change.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** Quiet time after the last event before reloading (ms): editors write a file in several steps. */
export const CONFIG_WATCH_DEBOUNCE_MS = 200;

export interface ConfigWatcher {
  close(): void;
}

export function watchConfigFile(file: string, onChange: () => void, onError: (err: Error) => void, debounceMs = CONFIG_WATCH_DEBOUNCE_MS): ConfigWatcher {
  const abs = resolve(file);
  const name = basename(abs);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = watch(dirname(abs), { persistent: false }, (_event, changed) => {
    // `..data` is the Kubernetes atomic-writer symlink swap; a null name means "something changed".
    if (changed !== null && changed !== name && !changed.startsWith('..')) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  });
  watcher.on('error', onError);
  return {
    close() {
      if (timer) clearTimeout(timer);
      timer = null;
      watcher?.close();
      watcher = null;
    },
  };
}
