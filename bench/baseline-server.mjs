#!/usr/bin/env node
/**
 * The bare baseline the benchmark compares us with: `node:https` and hand-written code doing the same work per
 * request as the webhook — read the body, parse the AdmissionReview, build the equivalent RFC 6902 patch
 * (status and default-container annotations, the shared emptyDir, a mount per app container, the busybox
 * sidecar, shareProcessNamespace), base64 it and answer. No validation, no pre-flight check, no logging, no
 * metrics, no framework: the floor a Node webhook can reach on this machine.
 *
 * For the benchmark fixtures its patch is byte-for-byte the one our engine builds (run.mjs checks that the two
 * patched pods are equal), so the comparison is like for like.
 *
 * Usage: node bench/baseline-server.mjs --tls-cert FILE --tls-key FILE [--host 127.0.0.1] [--port 0]
 * Prints one JSON line `{"listening":PORT}` on stdout once it accepts connections. GET /healthz answers 200.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const VOLUME = 'shared-data';
const MOUNT_PATH = '/pod-data';
const IMAGE = 'busybox:1.37.0';
const SCRIPT =
  "trap 'kill -HUP $! 2>/dev/null; exit 0' TERM\n" +
  "echo 'Hello from the side container' > '/pod-data/index.html'\n" +
  'exec 3<&0\n' +
  'while :; do\n' +
  '  sh -i <&3 3<&- &\n' +
  '  wait $!\n' +
  '  status=$?\n' +
  '  [ "$status" -lt 128 ] || exit "$status"\n' +
  '  sleep 1 & wait $!\n' +
  'done\n';

const escape = (segment) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

function sidecar() {
  return {
    name: 'sidecar',
    image: IMAGE,
    imagePullPolicy: 'IfNotPresent',
    command: ['/bin/sh', '-c'],
    args: [SCRIPT],
    stdin: true,
    tty: true,
    volumeMounts: [{ name: VOLUME, mountPath: MOUNT_PATH }],
    resources: { requests: { cpu: '25m', memory: '32Mi' }, limits: { cpu: '25m', memory: '32Mi' } },
    securityContext: { capabilities: { add: ['SYS_PTRACE'] } },
  };
}

export function patchFor(pod) {
  const ops = [];
  const spec = pod.spec;
  const containers = spec.containers;
  const annotations = pod.metadata.annotations;
  const status = JSON.stringify({
    version: 1,
    mode: 'classic',
    sidecar: 'sidecar',
    image: IMAGE,
    volume: { name: VOLUME, created: true },
    mounted: containers.map((c) => c.name),
    skipped: [],
    mountPath: MOUNT_PATH,
    shareProcessNamespace: spec.shareProcessNamespace !== true,
    defaultContainer: annotations?.['kubectl.kubernetes.io/default-container'] === undefined,
    podSecurityLevel: 'privileged',
    reduced: [],
  });
  const added = {};
  if (annotations?.['kubectl.kubernetes.io/default-container'] === undefined) {
    added['kubectl.kubernetes.io/default-container'] = containers[0].name;
  }
  added['sidecar-injector.io/status'] = status;
  if (annotations === undefined) ops.push({ op: 'add', path: '/metadata/annotations', value: added });
  else for (const key of Object.keys(added)) ops.push({ op: 'add', path: `/metadata/annotations/${escape(key)}`, value: added[key] });
  const volume = { name: VOLUME, emptyDir: {} };
  if (spec.volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: [volume] });
  else ops.push({ op: 'add', path: '/spec/volumes/-', value: volume });
  containers.forEach((c, i) => {
    const mount = { name: VOLUME, mountPath: MOUNT_PATH };
    if (c.volumeMounts === undefined) ops.push({ op: 'add', path: `/spec/containers/${i}/volumeMounts`, value: [mount] });
    else ops.push({ op: 'add', path: `/spec/containers/${i}/volumeMounts/-`, value: mount });
  });
  ops.push({ op: 'add', path: '/spec/containers/-', value: sidecar() });
  if (spec.shareProcessNamespace !== true) ops.push({ op: 'add', path: '/spec/shareProcessNamespace', value: true });
  return ops;
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The whole answer for one request body (a string), as the response text. */
export function answerFor(text) {
  const review = JSON.parse(text);
  const patch = Buffer.from(JSON.stringify(patchFor(review.request.object))).toString('base64');
  return JSON.stringify({
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch },
  });
}

function serve() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
  });
  const server = createServer(
    { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']), keepAliveTimeout: 120_000 },
    (req, res) => {
      const path = req.url.split('?', 1)[0];
      if (req.method === 'GET' && path === '/healthz') return send(res, 200, '{"ok":true}');
      if (req.method !== 'POST' || path !== '/mutate') return send(res, 404, '{"error":"not found"}');
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('end', () => {
        let answer;
        try {
          answer = answerFor(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return send(res, 400, '{"error":"not an AdmissionReview"}');
        }
        send(res, 200, answer);
      });
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.listen(Number(values.port), values.host, () => {
    process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
