// Stand-in for kube-apiserver in test/e2e/envtest.test.ts: serves HTTPS from the pair in --cert-dir, authenticates
// clients against --client-ca-file, answers /readyz and /version, and records its flags. Not an API server.
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write('Usage:\n  kube-apiserver [flags]\n  --etcd-servers strings\n  --secure-port int\n');
  if (process.env.STAND_IN_APISERVER_INSECURE_PORT === '1') process.stdout.write('  --insecure-port int  DEPRECATED\n');
  process.exit(0);
}
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
writeFileSync(join(process.env.STAND_IN_RECORD, 'kube-apiserver.json'), JSON.stringify({ args, pid: process.pid }));
const certDir = flag('cert-dir');
// The service-account keys must be readable as given.
readFileSync(flag('service-account-key-file'));
readFileSync(flag('service-account-signing-key-file'));
let readyChecks = 0;
const server = createServer(
  {
    cert: readFileSync(join(certDir, 'apiserver.crt')),
    key: readFileSync(join(certDir, 'apiserver.key')),
    ca: readFileSync(flag('client-ca-file')),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    const peer = req.socket.getPeerCertificate();
    const groups = [peer.subject?.O ?? []].flat();
    const authorized = req.socket.authorized && peer.subject?.CN === 'admin' && groups.includes('system:masters');
    res.setHeader('content-type', 'application/json');
    if (!authorized) {
      res.writeHead(401);
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', message: 'Unauthorized', code: 401 }));
      return;
    }
    if (req.url === '/readyz') {
      readyChecks += 1;
      // Post-start hooks still running for the first few polls.
      res.writeHead(readyChecks > 2 ? 200 : 500);
      res.end(readyChecks > 2 ? 'ok' : '[-]poststarthook/rbac/bootstrap-roles failed: not finished');
      return;
    }
    if (req.url === '/version') {
      res.writeHead(200);
      res.end(JSON.stringify({ major: '1', minor: '23', gitVersion: 'v1.23.17-stand-in' }));
      return;
    }
    res.writeHead(404);
    res.end(JSON.stringify({ kind: 'Status', status: 'Failure', message: 'not found', code: 404 }));
  },
);
// Like the real one: no serving until etcd answers.
get(`${flag('etcd-servers')}/health`, (res) => {
  res.resume();
  server.listen(Number(flag('secure-port')), flag('bind-address'));
}).on('error', (err) => {
  process.stderr.write(`etcd not reachable: ${err.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
