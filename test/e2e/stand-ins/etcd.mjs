// Stand-in for etcd in test/e2e/envtest.test.ts: answers /health on --listen-client-urls and records its flags.
// Not etcd: it only proves that startEnvtest hands over the flags envtest would and waits for /health.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write('Usage:\n  etcd [flags]\n  --data-dir\n  --listen-client-urls\n');
  if (process.env.STAND_IN_ETCD_NO_FSYNC === '1') process.stdout.write('  --unsafe-no-fsync  disables fsync, unsafe\n');
  process.exit(0);
}
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
mkdirSync(process.env.STAND_IN_RECORD, { recursive: true });
writeFileSync(join(process.env.STAND_IN_RECORD, 'etcd.json'), JSON.stringify({ args, pid: process.pid }));
if (!statSync(flag('data-dir')).isDirectory()) throw new Error('no data dir');
const url = new URL(flag('listen-client-urls'));
let healthChecks = 0;
createServer((req, res) => {
  healthChecks += 1;
  // Not healthy at first, like an etcd electing itself leader.
  const healthy = req.url === '/health' && healthChecks > 2;
  res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ health: String(healthy) }));
}).listen(Number(url.port), url.hostname);
process.on('SIGTERM', () => process.exit(0));
