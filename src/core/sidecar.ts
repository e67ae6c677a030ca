/** Renders the sidecar container: the strongest one the namespace's Pod Security level admits. */
import type { SecurityContext } from 'kubernetes-types/core/v1.js';
import type { Container, InjectorConfig, PodObject, PodSecurityLevel, SidecarMode } from './types.js';

/** The `nobody` user of busybox: used where the sidecar may not run as root. */
export const NON_ROOT_UID = 65534;

export interface SidecarSpec {
  name: string;
  image: string;
  volumeName: string;
  cpu: string;
  memory: string;
  mode: SidecarMode;
  level: PodSecurityLevel;
}

export interface RenderedSidecar {
  container: Container;
  /** What the level (or the pod's own constraints) took away from the full sidecar, for status and warnings. */
  reduced: string[];
}

function securityContextFor(level: PodSecurityLevel, pod: PodObject): { securityContext: SecurityContext; reduced: string[] } {
  if (level === 'restricted') {
    return {
      securityContext: {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        runAsNonRoot: true,
        runAsUser: NON_ROOT_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      reduced: ['SYS_PTRACE', 'root'],
    };
  }
  const securityContext: SecurityContext =
    level === 'privileged' ? { capabilities: { add: ['SYS_PTRACE'] } } : {};
  const reduced = level === 'privileged' ? [] : ['SYS_PTRACE'];
  // A pod-level runAsNonRoot without a pod-level user would make the kubelet refuse busybox (which runs as root):
  // the sidecar names a non-root user itself rather than leave the pod unable to start.
  const podSecurity = pod.spec?.securityContext;
  if (podSecurity?.runAsNonRoot === true && !podSecurity.runAsUser) {
    securityContext.runAsUser = NON_ROOT_UID;
    reduced.push('root');
  }
  return { securityContext, reduced };
}

export function renderSidecar(config: InjectorConfig, spec: SidecarSpec, pod: PodObject): RenderedSidecar {
  const { securityContext, reduced } = securityContextFor(spec.level, pod);
  const container: Container = {
    name: spec.name,
    image: spec.image,
    imagePullPolicy: 'IfNotPresent',
    command: [...config.sidecar.command],
    args: [...config.sidecar.args],
    stdin: true,
    tty: true,
    volumeMounts: [{ name: spec.volumeName, mountPath: config.sidecar.mountPath }],
  };
  // With pod-level resources the sidecar shares the pod's budget; container resources would carve it up.
  if (pod.spec?.resources === undefined) {
    const amounts = { cpu: spec.cpu, memory: spec.memory };
    container.resources = { requests: { ...amounts }, limits: { ...amounts } };
  }
  if (Object.keys(securityContext).length > 0) container.securityContext = securityContext;
  if (spec.mode === 'native') container.restartPolicy = 'Always';
  return { container, reduced };
}
