/**
 * What `check` and `repair` share: the configuration the rule must judge by (the injector's own ConfigMap, a
 * `--config` file, or the defaults), the versions `nativeSidecar: auto` depends on, and one scan grouped by
 * workload.
 */
import type { ConfigMap, Namespace, Node } from 'kubernetes-types/core/v1.js';
import { replyMessage, type KubeApi } from '../cluster/check-api.js';
import { minorVersionOf, oldestKubeletVersion } from '../cluster/facts.js';
import { parseConfig } from '../config/parse.js';
import { defaultConfig } from '../core/defaults.js';
import type { AuditContext } from '../core/missed-sidecar.js';
import type { InjectorConfig } from '../core/types.js';
import { errorLine } from '../error-line.js';
import type { ListFailure } from './list-pods.js';
import { scanPods, type ScanResult } from './scan.js';
import { groupByWorkload, type Workload } from './workloads.js';

/** The ConfigMap the manifests install (no hash suffix), key `config.yaml`. */
export const CONFIG_MAP_NAME = 'sidecar-injector-config';
export const CONFIG_MAP_KEY = 'config.yaml';

export interface AuditSetup {
  config: InjectorConfig;
  /** Where the configuration came from, for the report. */
  configSource: string;
  context: AuditContext;
}

export type MissedPodsFacts =
  | { ok: true; result: ScanResult; workloads: Workload[]; configSource: string }
  | ({ ok: false; configSource: string } & ListFailure)
  | { skipped: string };

/** The configuration from `--config` text, else the injector's ConfigMap, else the defaults (saying why). */
async function findConfig(api: KubeApi, injectorNamespace: string, fileText?: { path: string; text: string }): Promise<{ config: InjectorConfig; source: string }> {
  if (fileText !== undefined) {
    const parsed = parseConfig(fileText.text);
    if (parsed.ok) return { config: parsed.config, source: fileText.path };
    return { config: defaultConfig(), source: `the defaults (${fileText.path} is invalid: ${parsed.error})` };
  }
  const where = `ConfigMap ${injectorNamespace}/${CONFIG_MAP_NAME}`;
  try {
    const reply = await api.request('GET', `/api/v1/namespaces/${encodeURIComponent(injectorNamespace)}/configmaps/${CONFIG_MAP_NAME}`);
    if (reply.status !== 200) return { config: defaultConfig(), source: `the defaults (${where}: ${replyMessage(reply)})` };
    const text = (reply.body as ConfigMap).data?.[CONFIG_MAP_KEY];
    if (text === undefined) return { config: defaultConfig(), source: `the defaults (${where} has no ${CONFIG_MAP_KEY})` };
    const parsed = parseConfig(text);
    if (!parsed.ok) return { config: defaultConfig(), source: `the defaults (${where} is invalid: ${parsed.error})` };
    return { config: parsed.config, source: where };
  } catch (err) {
    return { config: defaultConfig(), source: `the defaults (${where}: ${errorLine(err)})` };
  }
}

/** The oldest kubelet, read only when `nativeSidecar: auto` needs it; undefined when nodes cannot be listed. */
async function oldestKubelet(api: KubeApi, config: InjectorConfig): Promise<string | undefined> {
  if (config.nativeSidecar !== 'auto') return undefined;
  try {
    const reply = await api.request('GET', '/api/v1/nodes');
    if (reply.status !== 200) return undefined;
    const nodes = (reply.body as { items?: Node[] }).items ?? [];
    return oldestKubeletVersion(nodes.map((n) => n.status?.nodeInfo?.kubeletVersion));
  } catch {
    return undefined;
  }
}

export async function auditSetup(
  api: KubeApi,
  injectorNamespace: string,
  apiServerVersion: string | undefined,
  fileText?: { path: string; text: string },
): Promise<AuditSetup> {
  const { config, source } = await findConfig(api, injectorNamespace, fileText);
  const apiMinor = minorVersionOf(apiServerVersion);
  const kubelet = await oldestKubelet(api, config);
  return {
    config,
    configSource: source,
    context: {
      injectorNamespace,
      ...(apiMinor === undefined ? {} : { apiServerVersion: apiMinor }),
      ...(kubelet === undefined ? {} : { minKubeletVersion: kubelet }),
    },
  };
}

/** One scan of the cluster's pods, missed ones grouped by workload. */
export async function auditCluster(
  api: KubeApi,
  namespaces: readonly Namespace[],
  setup: AuditSetup,
  narrow: { namespace?: string; selector?: string; pageSize?: number } = {},
): Promise<MissedPodsFacts> {
  const scan = await scanPods({ api, namespaces, config: setup.config, context: setup.context, ...narrow });
  if (!scan.ok) return { ok: false, error: scan.error, forbidden: scan.forbidden, configSource: setup.configSource };
  const counter = { requests: 0 };
  const workloads = await groupByWorkload(api, scan.result.missed, counter);
  const result = { ...scan.result, requests: scan.result.requests + counter.requests };
  return { ok: true, result, workloads, configSource: setup.configSource };
}
