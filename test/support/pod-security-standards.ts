/**
 * The Pod Security Standards (baseline and restricted, "latest"), written from the published rules as a checker
 * over a pod: what Pod Security admission would reject. Used to prove the injector never turns an admissible
 * pod into a rejected one.
 */
import type { Container, SecurityContext } from 'kubernetes-types/core/v1.js';
import type { PodObject, PodSecurityLevel } from '../../src/core/types.js';

const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP',
  'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
]);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const RESTRICTED_VOLUME_SOURCES = new Set([
  'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret',
]);

function everyContainer(pod: PodObject): Container[] {
  const spec = pod.spec;
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? []), ...((spec?.ephemeralContainers ?? []) as Container[])];
}

function baselineViolations(pod: PodObject): string[] {
  const violations: string[] = [];
  const spec = pod.spec ?? { containers: [] };
  const podContext = spec.securityContext;
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) violations.push('host namespaces');
  if (podContext?.windowsOptions?.hostProcess) violations.push('hostProcess');
  const seLinux = (ctx: { seLinuxOptions?: { type?: string; user?: string; role?: string } } | undefined, who: string): void => {
    const options = ctx?.seLinuxOptions;
    if (options && (!SELINUX_TYPES.has(options.type ?? '') || options.user || options.role)) violations.push(`seLinuxOptions (${who})`);
  };
  seLinux(podContext, 'pod');
  if (podContext?.seccompProfile?.type === 'Unconfined') violations.push('seccomp Unconfined (pod)');
  if (podContext?.appArmorProfile?.type === 'Unconfined') violations.push('appArmor Unconfined (pod)');
  for (const sysctl of podContext?.sysctls ?? []) if (!SAFE_SYSCTLS.has(sysctl.name)) violations.push(`sysctl ${sysctl.name}`);
  for (const volume of spec.volumes ?? []) if (volume.hostPath) violations.push(`hostPath volume ${volume.name}`);
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (key.startsWith('container.apparmor.security.beta.kubernetes.io/') && value !== 'runtime/default' && !value.startsWith('localhost/')) {
      violations.push(`AppArmor annotation ${key}`);
    }
  }
  for (const container of everyContainer(pod)) {
    const ctx: SecurityContext | undefined = container.securityContext;
    const who = container.name;
    if (ctx?.privileged) violations.push(`privileged (${who})`);
    if (ctx?.windowsOptions?.hostProcess) violations.push(`hostProcess (${who})`);
    for (const cap of ctx?.capabilities?.add ?? []) if (!BASELINE_CAPABILITIES.has(cap)) violations.push(`capability ${cap} (${who})`);
    for (const port of container.ports ?? []) if (port.hostPort) violations.push(`hostPort (${who})`);
    if (ctx?.procMount && ctx.procMount !== 'Default') violations.push(`procMount (${who})`);
    if (ctx?.seccompProfile?.type === 'Unconfined') violations.push(`seccomp Unconfined (${who})`);
    if (ctx?.appArmorProfile?.type === 'Unconfined') violations.push(`appArmor Unconfined (${who})`);
    seLinux(ctx, who);
  }
  return violations;
}

function restrictedViolations(pod: PodObject): string[] {
  const violations = baselineViolations(pod);
  const spec = pod.spec ?? { containers: [] };
  const podContext = spec.securityContext;
  for (const volume of spec.volumes ?? []) {
    const sources = Object.keys(volume).filter((k) => k !== 'name');
    if (!sources.every((s) => RESTRICTED_VOLUME_SOURCES.has(s))) violations.push(`volume type of ${volume.name}`);
  }
  if (podContext?.runAsUser === 0) violations.push('runAsUser 0 (pod)');
  const podSeccomp = podContext?.seccompProfile?.type;
  for (const container of everyContainer(pod)) {
    const ctx = container.securityContext;
    const who = container.name;
    if (ctx?.allowPrivilegeEscalation !== false) violations.push(`allowPrivilegeEscalation (${who})`);
    if ((ctx?.runAsNonRoot ?? podContext?.runAsNonRoot) !== true) violations.push(`runAsNonRoot (${who})`);
    if (ctx?.runAsUser === 0) violations.push(`runAsUser 0 (${who})`);
    const seccomp = ctx?.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') violations.push(`seccompProfile (${who})`);
    if (!(ctx?.capabilities?.drop ?? []).includes('ALL')) violations.push(`capabilities drop ALL (${who})`);
    for (const cap of ctx?.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') violations.push(`capability ${cap} (${who})`);
  }
  return violations;
}

/** What Pod Security admission at `level` would reject the pod for; empty when admitted. */
export function podSecurityViolations(pod: PodObject, level: PodSecurityLevel): string[] {
  if (level === 'privileged') return [];
  return level === 'baseline' ? baselineViolations(pod) : restrictedViolations(pod);
}
