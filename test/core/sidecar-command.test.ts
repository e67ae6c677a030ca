/**
 * The sidecar script, run for real: Debian's busybox (`apt-get install -y busybox`) under a pseudo-terminal, the
 * way the container runtime starts a `tty: true` container (a new session whose controlling terminal is the pty),
 * both as PID 1 of a fresh PID namespace (a pod without `shareProcessNamespace`) and as an ordinary process
 * (`shareProcessNamespace: true`, where the pause container is PID 1). SIGTERM is sent from outside the
 * namespace, as the kubelet's runtime does.
 *
 * Node has no pty of its own, so a small python3 program (standard library only) opens one, starts the command on
 * it and relays bytes. util-linux `setsid -c` makes the shell a session leader owning the pty, and
 * `unshare --pid --fork --mount-proc --kill-child` (root) gives it PID 1; `--kill-child` also means killing
 * unshare tears the namespace down, should the test itself die.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIDECAR_HELLO, sidecarScript } from '../../src/core/sidecar-command.js';

const BUSYBOX = '/bin/busybox';
/** Generous: the point is "does not hang until the 30 s grace period", not a benchmark. */
const EXIT_BOUND_MS = 10_000;
/** How long the naive script is given to (not) react to SIGTERM. */
const NEGATIVE_WAIT_MS = 1_500;

function runs(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.status === 0;
}

const missing = [
  existsSync(BUSYBOX) ? '' : `${BUSYBOX} (apt-get install -y busybox)`,
  runs('python3', ['-c', 'import os; os.openpty()']) ? '' : 'python3 with a working os.openpty()',
  runs('setsid', ['--version']) ? '' : 'setsid (util-linux)',
].filter((what) => what !== '');
const skipAll = missing.length > 0 ? `missing ${missing.join(', ')}` : '';
const skipPid1 =
  skipAll ||
  (runs('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', 'true'])
    ? ''
    : 'unshare --pid --fork --mount-proc not permitted here (needs root or CAP_SYS_ADMIN)');
for (const reason of new Set([skipAll, skipPid1])) {
  if (reason) console.warn(`sidecar-command.test.ts: skipping the busybox pty tests: ${reason}`);
}

/** Title with the skip reason in it, so a skipped run says why. */
function titled(title: string, skipReason: string): string {
  return skipReason ? `${title} [skipped: ${skipReason}]` : title;
}

/**
 * The pty relay. stderr lines: `child <pid>`, `exit <returncode>` (negative: killed by that signal),
 * `tty-closed` (no process holds the terminal any more). It stops when stdin closes.
 */
const PTY_RELAY = `
import os, select, subprocess, sys
master, slave = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
def report(line):
    os.write(2, (line + "\\n").encode())
report("child %d" % child.pid)
stdin_open, tty_open, code = True, True, None
while tty_open or code is None:
    fds = ([master] if tty_open else []) + ([0] if stdin_open else [])
    ready = select.select(fds, [], [], 0.05)[0]
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            os.write(1, data)
        else:
            tty_open = False
            report("tty-closed")
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        os.write(master, data)
    if code is None:
        code = child.poll()
        if code is not None:
            report("exit %d" % code)
`;

interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  session: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const [state = '', ppid = '0', , session = '0'] = text.slice(close + 2).split(' ');
    return { comm: text.slice(text.indexOf('(') + 1, close), state, ppid: Number(ppid), session: Number(session) };
  } catch {
    return undefined; // gone
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** The pid as seen from each PID namespace it belongs to, outermost first. */
function nsPids(pid: number): string[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number, diagnose?: () => string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${diagnose ? `\n${diagnose()}` : ''}`);
    }
    await sleep(20);
  }
}

type Mode = 'pid1' | 'ordinary';

class PtySidecar {
  private out = '';
  private events: string[] = [];
  private readonly relay: ChildProcess;
  /** Host pid of the busybox shell (the container's main process). */
  shellPid = 0;

  constructor(
    readonly mode: Mode,
    script: string,
    binDir: string,
    cwd: string,
  ) {
    const command = ['setsid', '-c', 'env', `PATH=${binDir}`, BUSYBOX, 'sh', '-c', script];
    const argv = mode === 'pid1' ? ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', ...command] : command;
    this.relay = spawn('python3', ['-c', PTY_RELAY, ...argv], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.relay.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.out += chunk));
    let partial = '';
    this.relay.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      this.events.push(...lines);
    });
  }

  /** Waits until busybox runs, as the main process in the wanted place. */
  async started(): Promise<void> {
    const childPid = await until('the relay to start its child', () => this.event(/^child (\d+)$/), 10_000, () =>
      this.diagnostics(),
    );
    const relayChild = Number(childPid);
    this.shellPid =
      this.mode === 'ordinary'
        ? relayChild
        : await until(
            'the PID namespace init',
            () => allPids().find((pid) => procStat(pid)?.ppid === relayChild),
            10_000,
            () => this.diagnostics(),
          );
    // `setsid` and `env` exec in place: wait for the pid to become busybox (`sh` once it has run `exec sh -i`).
    const isBusybox = (comm = '') => comm === 'busybox' || comm === 'sh';
    await until('busybox to be exec-ed', () => (isBusybox(procStat(this.shellPid)?.comm) ? true : undefined), 10_000);
  }

  get output(): string {
    return this.out;
  }

  write(text: string): void {
    this.relay.stdin?.write(text);
  }

  event(pattern: RegExp): string | undefined {
    for (const line of this.events) {
      const match = pattern.exec(line);
      if (match) return match[1] ?? match[0];
    }
    return undefined;
  }

  async waitForOutput(pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<void> {
    await until(
      `${pattern} on the terminal`,
      () => (pattern.test(this.out.slice(from)) ? true : undefined),
      timeoutMs,
      () => this.diagnostics(),
    );
  }

  /** Resolves with the relay child's return code (python: negative = killed by that signal), or undefined. */
  async exitCode(timeoutMs: number): Promise<number | undefined> {
    try {
      const code = await until('the process to exit', () => this.event(/^exit (-?\d+)$/), timeoutMs);
      return Number(code);
    } catch {
      return undefined;
    }
  }

  diagnostics(): string {
    return `relay events: ${JSON.stringify(this.events)}\nterminal output (tail): ${JSON.stringify(this.out.slice(-1500))}`;
  }

  /** SIGKILL everything in the shell's session (PID 1 of a namespace takes the namespace with it), then the relay. */
  async dispose(): Promise<void> {
    if (this.shellPid > 0) {
      for (const pid of allPids()) {
        if (pid === this.shellPid || procStat(pid)?.session === this.shellPid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    }
    this.relay.stdin?.end(); // the relay stops when its stdin closes
    if (this.relay.exitCode === null && this.relay.signalCode === null) {
      const exited = new Promise((resolve) => this.relay.once('exit', resolve));
      this.relay.kill('SIGKILL');
      await exited;
    }
  }
}

describe('sidecarScript', () => {
  it('writes the hello text to the given path, both quoted for sh', () => {
    const script = sidecarScript('/pod-data/index.html');
    expect(SIDECAR_HELLO).toBe('Hello from the side container');
    expect(script).toContain(`echo 'Hello from the side container' > '/pod-data/index.html'`);
  });

  it('escapes single quotes in the path', () => {
    expect(sidecarScript(`/data/it's/index.html`)).toContain(`> '/data/it'\\''s/index.html'`);
  });

  it('is the same for the same input (no timestamps, no randomness)', () => {
    expect(sidecarScript('/x/index.html')).toBe(sidecarScript('/x/index.html'));
  });
});

describe.skipIf(skipAll !== '')(titled('the sidecar script under busybox and a real pty', skipAll), () => {
  let workDir = '';
  let binDir = '';
  const running: PtySidecar[] = [];

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'sidecar-command-'));
    // A PATH of busybox applets only, as in the busybox image (on Debian, `sh` in /bin is dash).
    binDir = join(workDir, 'bin');
    mkdirSync(binDir);
    const install = spawnSync(BUSYBOX, ['--install', '-s', binDir], { encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
    expect(existsSync(join(binDir, 'sh'))).toBe(true);
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((sidecar) => sidecar.dispose()));
  });

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** A hello path that would break, or run code (in workDir, the shell's cwd), if it were not quoted. */
  function helloPath(): { file: string; dir: string } {
    const dir = mkdtempSync(join(workDir, `pod data it's $(touch pwned) `));
    return { file: join(dir, 'index.html'), dir };
  }

  async function start(mode: Mode, script: string): Promise<PtySidecar> {
    const sidecar = new PtySidecar(mode, script, binDir, workDir);
    running.push(sidecar);
    await sidecar.started();
    const ns = nsPids(sidecar.shellPid);
    if (mode === 'pid1') expect(ns.at(-1), 'the shell is PID 1 of its namespace').toBe('1');
    else expect(ns.at(-1), 'the shell is not PID 1').not.toBe('1');
    expect(procStat(sidecar.shellPid)?.session, 'the shell leads its session, as in a container').toBe(
      sidecar.shellPid,
    );
    return sidecar;
  }

  /** Types a command and waits for its answer: proves a prompt that reads the tty. */
  async function roundTrip(sidecar: PtySidecar, word: string): Promise<void> {
    const from = sidecar.output.length;
    sidecar.write(`echo ${word}-$((6*7))\n`);
    await sidecar.waitForOutput(new RegExp(`${word}-42`), from);
  }

  async function terminate(sidecar: PtySidecar): Promise<{ code: number | undefined; ms: number }> {
    const sent = Date.now();
    process.kill(sidecar.shellPid, 'SIGTERM');
    const code = await sidecar.exitCode(EXIT_BOUND_MS);
    return { code, ms: Date.now() - sent };
  }

  const modes: { mode: Mode; title: string; skip: string }[] = [
    { mode: 'pid1', title: 'as PID 1 of its own PID namespace (no shareProcessNamespace)', skip: skipPid1 },
    { mode: 'ordinary', title: 'as an ordinary process (shareProcessNamespace: true)', skip: '' },
  ];

  for (const { mode, title, skip } of modes) {
    describe.skipIf(skip !== '')(titled(title, skipAll ? '' : skip), () => {
      it('writes the hello file, answers at an interactive prompt, and exits 0 on SIGTERM', async () => {
        const hello = helloPath();
        const sidecar = await start(mode, sidecarScript(hello.file));

        await sidecar.waitForOutput(/# /);
        expect(readFileSync(hello.file, 'utf8')).toBe(`${SIDECAR_HELLO}\n`);
        expect(existsSync(join(workDir, 'pwned'))).toBe(false);
        await roundTrip(sidecar, 'marker');

        const { code, ms } = await terminate(sidecar);
        expect(code, `exit status after SIGTERM (waited ${ms} ms)\n${sidecar.diagnostics()}`).toBe(0);
        // The interactive shell went too: nothing holds the terminal any more.
        await until('the terminal to be released', () => sidecar.event(/^(tty-closed)$/), EXIT_BOUND_MS, () =>
          sidecar.diagnostics(),
        );
      });

      it('gives a fresh prompt after `exit`, and SIGTERM still works while a command runs at it', async () => {
        const sidecar = await start(mode, sidecarScript(helloPath().file));
        await roundTrip(sidecar, 'first');

        const from = sidecar.output.length;
        sidecar.write('exit\n');
        await sidecar.waitForOutput(/built-in shell[\s\S]*# /, from);
        await roundTrip(sidecar, 'second');

        // An operator left a foreground command running, e.g. `tail -f`: the shell is busy, not at its prompt.
        sidecar.write('sleep 100\n');
        await until(
          'sleep to run in the sidecar',
          () => allPids().find((pid) => procStat(pid)?.comm === 'sleep' && procStat(pid)?.session === sidecar.shellPid),
          10_000,
          () => sidecar.diagnostics(),
        );
        const { code, ms } = await terminate(sidecar);
        expect(code, `exit status after SIGTERM (waited ${ms} ms)\n${sidecar.diagnostics()}`).toBe(0);
      });

      it('negative control: the naive `exec sh -i` ignores SIGTERM and keeps answering', async () => {
        const sidecar = await start(mode, 'exec sh -i');
        await roundTrip(sidecar, 'before');

        process.kill(sidecar.shellPid, 'SIGTERM');
        expect(await sidecar.exitCode(NEGATIVE_WAIT_MS), 'the naive shell must still be running').toBeUndefined();
        await roundTrip(sidecar, 'after'); // still alive and interactive after SIGTERM
        expect(procStat(sidecar.shellPid)?.state).not.toBe('Z');
        // afterEach SIGKILLs it, as the kubelet would after the grace period.
      });
    });
  }
});
