/**
 * Checks one answer before anything is measured: a well-formed AdmissionReview echoing the uid, allowed, a
 * base64 JSON patch that applies (fast-json-patch, validating) and leaves one sidecar, one shared volume and
 * the volume mounted in every app container. Returns {ok, problems, patchedPod, patchBytes}.
 */
import { createRequire } from 'node:module';
import { ROOT } from './servers.mjs';

const require = createRequire(`${ROOT}/package.json`);
const { applyPatch } = require('fast-json-patch');

const VOLUME = 'shared-data';

export function verifyAnswer(request, status, bodyBuffer) {
  const problems = [];
  if (status !== 200) return { ok: false, problems: [`HTTP ${status}: ${bodyBuffer.toString('utf8').slice(0, 200)}`] };
  let review;
  try {
    review = JSON.parse(bodyBuffer.toString('utf8'));
  } catch {
    return { ok: false, problems: ['answer is not JSON'] };
  }
  if (review.kind !== 'AdmissionReview') problems.push(`kind ${review.kind}`);
  if (review.apiVersion !== request.apiVersion) problems.push(`apiVersion ${review.apiVersion} ≠ ${request.apiVersion}`);
  const response = review.response ?? {};
  if (response.uid !== request.request.uid) problems.push('uid not echoed');
  if (response.allowed !== true) problems.push('not allowed');
  if (response.patchType !== 'JSONPatch') problems.push(`patchType ${response.patchType}`);
  if (typeof response.patch !== 'string') return { ok: false, problems: [...problems, 'no patch'] };
  let patch;
  try {
    patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
  } catch {
    return { ok: false, problems: [...problems, 'patch is not base64 JSON'] };
  }
  let pod;
  try {
    pod = applyPatch(structuredClone(request.request.object), patch, true, false).newDocument;
  } catch (err) {
    return { ok: false, problems: [...problems, `patch does not apply: ${err.message}`] };
  }
  const all = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])];
  const sidecars = all.filter((c) => c.name === 'sidecar');
  if (sidecars.length !== 1) problems.push(`${sidecars.length} sidecar containers`);
  else if (!(sidecars[0].volumeMounts ?? []).some((m) => m.name === VOLUME)) problems.push('sidecar does not mount the shared volume');
  const volumes = (pod.spec.volumes ?? []).filter((v) => v.name === VOLUME);
  if (volumes.length !== 1) problems.push(`${volumes.length} ${VOLUME} volumes`);
  for (const c of pod.spec.containers) {
    if (c.name === 'sidecar') continue;
    if (!(c.volumeMounts ?? []).some((m) => m.name === VOLUME)) problems.push(`app container ${c.name} does not mount ${VOLUME}`);
  }
  if (!pod.metadata?.annotations?.['sidecar-injector.io/status']) problems.push('no status annotation');
  return { ok: problems.length === 0, problems, patchedPod: pod, patchBytes: Buffer.from(response.patch, 'base64').length };
}
