import { sidecarScript } from './sidecar-command.js';
import type { InjectorConfig } from './types.js';

export const DEFAULT_MOUNT_PATH = '/pod-data';

/** The defaults reproduce the reference pods (with `sidecar-injector.io/app-mount-path: /app` for the first). */
export function defaultConfig(): InjectorConfig {
  return {
    sidecar: {
      name: 'sidecar',
      image: 'busybox:1.37.0',
      command: ['/bin/sh', '-c'],
      args: [sidecarScript(`${DEFAULT_MOUNT_PATH}/index.html`)],
      resources: { cpu: '25m', memory: '32Mi' },
      mountPath: DEFAULT_MOUNT_PATH,
    },
    appMountPath: DEFAULT_MOUNT_PATH,
    volume: { name: 'shared-data', source: { emptyDir: {} } },
    shareProcessNamespace: true,
    nativeSidecar: 'auto',
    classicRunToCompletion: 'skip',
    excludedNamespaces: [],
    allowedImages: ['^(docker\\.io/)?(library/)?busybox(:[\\w][\\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$'],
    failure: 'open',
    podSecurity: { defaultLevel: 'privileged' },
  };
}
