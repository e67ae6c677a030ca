import { isIP } from 'node:net';
import {
  certificateExpiry,
  certificateAuthorityProblem,
  DEFAULT_CA_COMMON_NAME,
  DEV_DNS_NAMES,
  DEV_IP_ADDRESSES,
  generateCertificateAuthority,
  generateServingCertificate,
  isDnsName,
  renewalTime,
  serviceDnsNames,
  servingCertificateProblem,
  type CertificateBundle,
  type KeyPairPem,
} from '../tls/certificates.js';
import {
  certificateFilePaths,
  readCertificateFiles,
  writeCertificateFiles,
  type CertificateFileContents,
} from '../tls/certificate-files.js';
import { errorLine } from '../error-line.js';
import { EXIT_FAILURE, EXIT_OK, flagsOrExit, parseFlags, UsageError } from './io.js';

export interface CliOutput {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}


const USAGE = `Usage: sidecar-injector certs [options]

Writes a development CA and a serving certificate for the webhook Service (also valid for
localhost and 127.0.0.1) as ca.crt, ca.key, tls.crt and tls.key. Existing files are kept while
they are valid; an existing CA is reused when only the serving certificate needs replacing.

Options:
  --out-dir DIR       directory to write to (default: certs)
  --service NAME      the webhook Service's name (default: sidecar-injector)
  --namespace NS      the webhook Service's namespace (default: sidecar-injector)
  --dns-name NAME     an extra DNS name for the serving certificate (repeatable)
  --ip-address IP     an extra IP address for the serving certificate (repeatable)
  --force             replace all four files, the CA included
  -h, --help          show this help
`;

const OPTIONS = {
  'out-dir': { type: 'string', default: 'certs' },
  service: { type: 'string', default: 'sidecar-injector' },
  // Deliberately not $POD_NAMESPACE: the composition root hands us argv only, so a run is reproducible.
  namespace: { type: 'string', default: 'sidecar-injector' },
  'dns-name': { type: 'string', multiple: true },
  'ip-address': { type: 'string', multiple: true },
  force: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

interface CertsFlags {
  outDir: string;
  service: string;
  namespace: string;
  dnsNames: string[];
  ipAddresses: string[];
  force: boolean;
  help: boolean;
}

type ServingExpectation = Parameters<typeof servingCertificateProblem>[2];

/**
 * What the existing files allow: keeping them all ('keep', said on stdout), or reusing the CA (when it can still
 * sign) for a new serving pair.
 */
function whatToReuse(
  existing: CertificateFileContents,
  expect: ServingExpectation & { now: Date },
  paths: ReturnType<typeof certificateFilePaths>,
  out: CliOutput,
): 'keep' | { ca: KeyPairPem | undefined } {
  if (existing.tlsCert !== undefined) {
    const problem = existingServingProblem(existing, expect);
    if (problem === undefined) {
      out.stdout.write(
        `kept the existing certificates in ${paths.dir}: ${paths.tlsCert} is valid until ` +
          `${certificateExpiry(existing.tlsCert).toISOString()} (use --force to replace them)\n`,
      );
      return 'keep';
    }
    out.stdout.write(`replacing the certificates in ${paths.dir}: ${problem}\n`);
  }
  if (existing.caCert === undefined || existing.caKey === undefined) return { ca: undefined };
  const ca = { cert: existing.caCert, key: existing.caKey };
  const problem = certificateAuthorityProblem(ca, expect.now);
  if (problem === undefined) return { ca };
  out.stdout.write(`not reusing ${paths.caCert}: ${problem}\n`);
  return { ca: undefined };
}

function writtenSummary(
  paths: ReturnType<typeof certificateFilePaths>,
  bundle: CertificateBundle,
  caReused: boolean,
  flags: CertsFlags,
  extraDnsNames: readonly string[],
  ipAddresses: readonly string[],
): string {
  const caOrigin = caReused ? 'existing CA, reused' : `new CA "${DEFAULT_CA_COMMON_NAME}"`;
  const dnsNames = [...new Set([...serviceDnsNames(flags.service, flags.namespace), ...extraDnsNames])];
  return [
    `wrote ${paths.caCert} (${caOrigin}, expires ${certificateExpiry(bundle.ca.cert).toISOString()})`,
    `wrote ${paths.caKey} (mode 0600)`,
    `wrote ${paths.tlsKey} (mode 0600)`,
    `wrote ${paths.tlsCert} (expires ${certificateExpiry(bundle.serving.cert).toISOString()}, ` +
      `renew after ${renewalTime(bundle.serving.cert).toISOString()})`,
    `  DNS names:    ${dnsNames.join(', ')}`,
    `  IP addresses: ${[...new Set(ipAddresses)].join(', ')}`,
    `trust it with: curl --cacert ${paths.caCert} https://localhost:8443/healthz`,
    '',
  ].join('\n');
}

export async function runCerts(argv: string[], out: CliOutput): Promise<number> {
  const parsed = flagsOrExit('certs', USAGE, () => parseCertsFlags(argv), out);
  if ('exitCode' in parsed) return parsed.exitCode;
  const flags: CertsFlags = parsed.flags;

  const now = new Date();
  const extraDnsNames = [...DEV_DNS_NAMES, ...flags.dnsNames];
  const ipAddresses = [...DEV_IP_ADDRESSES, ...flags.ipAddresses];
  const paths = certificateFilePaths(flags.outDir);

  let existing: CertificateFileContents = {};
  if (!flags.force) {
    try {
      existing = await readCertificateFiles(flags.outDir);
    } catch (err) {
      out.stderr.write(`sidecar-injector certs: cannot read existing certificates: ${errorLine(err)}\n`);
      return EXIT_FAILURE;
    }
  }

  const reuse = whatToReuse(existing, { service: flags.service, namespace: flags.namespace, extraDnsNames, ipAddresses, now }, paths, out);
  if (reuse === 'keep') return EXIT_OK;
  const reusableCa = reuse.ca;

  let bundle: CertificateBundle;
  try {
    const ca = reusableCa ?? generateCertificateAuthority({ now });
    const serving = generateServingCertificate(ca, {
      service: flags.service,
      namespace: flags.namespace,
      extraDnsNames,
      ipAddresses,
      now,
    });
    bundle = { ca, serving };
  } catch (err) {
    out.stderr.write(`sidecar-injector certs: ${errorLine(err)}\n`);
    return EXIT_FAILURE;
  }

  try {
    await writeCertificateFiles(flags.outDir, bundle);
  } catch (err) {
    out.stderr.write(`sidecar-injector certs: cannot write certificates: ${errorLine(err)}\n`);
    return EXIT_FAILURE;
  }

  out.stdout.write(writtenSummary(paths, bundle, reusableCa !== undefined, flags, extraDnsNames, ipAddresses));
  return EXIT_OK;
}

function parseCertsFlags(argv: string[]): CertsFlags {
  const values = parseFlags(argv, OPTIONS);
  const flags: CertsFlags = {
    outDir: values['out-dir'],
    service: values.service,
    namespace: values.namespace,
    dnsNames: values['dns-name'] ?? [],
    ipAddresses: values['ip-address'] ?? [],
    force: values.force,
    help: values.help,
  };
  if (flags.outDir === '') throw new UsageError('--out-dir must not be empty');
  if (!flags.help) {
    // Name errors are usage errors (exit 2), not failures while generating.
    serviceDnsNames(flags.service, flags.namespace);
    for (const name of flags.dnsNames) {
      if (!isDnsName(name)) throw new UsageError(`invalid --dns-name "${name}"`);
    }
    for (const ip of flags.ipAddresses) {
      if (isIP(ip) === 0) throw new UsageError(`invalid --ip-address "${ip}"`);
    }
  }
  return flags;
}

function existingServingProblem(
  existing: CertificateFileContents,
  expect: Parameters<typeof servingCertificateProblem>[2],
): string | undefined {
  if (existing.tlsCert === undefined) return 'tls.crt is missing';
  if (existing.tlsKey === undefined) return 'tls.key is missing';
  if (existing.caCert === undefined) return 'ca.crt is missing';
  return servingCertificateProblem({ cert: existing.tlsCert, key: existing.tlsKey }, existing.caCert, expect);
}

