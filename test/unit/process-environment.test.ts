import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import type { EnvironmentContext, EnvironmentStats, ProcessState } from '../../src/environment/environment.js';
import { ConsoleLog, tailLines } from '../../src/environment/process/console-log.js';
import { buildChildEnvironment, expandInvocation, stopSignal } from '../../src/environment/process/helpers.js';
import { ProcessEnvironment } from '../../src/environment/process/index.js';
import { parseProcStat } from '../../src/environment/process/proc-stats.js';
import {
  ProcessConfigurationSchema,
  SettingsSchema,
  type ProcessConfiguration,
  type ServerSettings,
} from '../../src/server/configuration.js';

const UUID = '8d4e3f52-6a3c-4c2b-9a38-6d5f0b2f9a11';
const logger = pino({ level: 'silent' });

const roots: string[] = [];
const envs: ProcessEnvironment[] = [];

afterEach(async () => {
  await Promise.all(envs.splice(0).map((e) => e.destroy()));
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

interface Setup {
  root: string;
  config: Config;
  ctx: EnvironmentContext;
  settings: ServerSettings;
  pc: ProcessConfiguration;
}

async function setup(
  invocation: string,
  stop: { type: string; value: string } = { type: 'command', value: 'stop' },
  opts: { createDataDir?: boolean; memory?: number } = {},
): Promise<Setup> {
  const root = await mkdtemp(join(tmpdir(), 'wings-process-env-'));
  roots.push(root);
  const config = ConfigSchema.parse({
    system: {
      root_directory: root,
      data: join(root, 'volumes'),
      log_directory: join(root, 'log'),
      tmp_directory: join(root, 'tmp'),
    },
  });
  const dataDirectory = join(root, 'volumes', UUID);
  if (opts.createDataDir !== false) await mkdir(dataDirectory, { recursive: true });
  const settings: ServerSettings = {
    ...SettingsSchema.parse({ uuid: UUID, invocation, build: { memory_limit: opts.memory ?? 512 } }),
    crash_detection_enabled: true,
  };
  const pc = ProcessConfigurationSchema.parse({ startup: { done: ['ready'] }, stop });
  const ctx: EnvironmentContext = {
    uuid: UUID,
    dataDirectory,
    config: () => config,
    settings: () => settings,
    processConfiguration: () => pc,
    environmentVariables: () => [
      'TZ=UTC',
      `STARTUP=${settings.invocation}`,
      `SERVER_MEMORY=${settings.build.memory_limit}`,
      'SERVER_IP=127.0.0.1',
      'SERVER_PORT=25565',
      'P_SERVER_UUID=' + UUID,
    ],
    logger,
    publishDaemonMessage: () => {},
    publishInstallOutput: () => {},
  };
  return { root, config, ctx, settings, pc };
}

/** Records an environment's events and waits for conditions on them (no sleeps). */
class Recorder {
  states: ProcessState[] = [];
  lines: string[] = [];
  stats: EnvironmentStats[] = [];
  private waiters = new Set<() => void>();

  constructor(readonly env: ProcessEnvironment) {
    env.on('state', (s: ProcessState) => this.push(() => this.states.push(s)));
    env.on('console', (l: string) => this.push(() => this.lines.push(l)));
    env.on('stats', (s: EnvironmentStats) => this.push(() => this.stats.push(s)));
  }

  private push(fn: () => void): void {
    fn();
    for (const w of [...this.waiters]) w();
  }

  until(predicate: () => boolean, label: string, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${label}; states=${this.states.join(',')} lines=${JSON.stringify(this.lines.slice(-5))}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  line(text: string): Promise<void> {
    return this.until(() => this.lines.includes(text), `line ${JSON.stringify(text)}`);
  }

  state(s: ProcessState): Promise<void> {
    return this.until(() => this.env.state === s, `state ${s}`);
  }
}

function make(ctx: EnvironmentContext): { env: ProcessEnvironment; rec: Recorder } {
  const env = new ProcessEnvironment(ctx);
  envs.push(env);
  return { env, rec: new Recorder(env) };
}

const ECHO_LOOP = 'echo ready; while read l; do echo "got $l"; [ "$l" = stop ] && exit 0; done';

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  // Reparented to an init that does not reap: a zombie is dead too.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function until(predicate: () => boolean, label: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise<void>((r) => setTimeout(r, 20));
  }
}

describe('ProcessEnvironment: lifecycle and console', () => {
  it('starts, streams console lines, takes commands and stops by command', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    expect(env.kind).toBe('process');
    expect(env.state).toBe('offline');
    expect(await env.isRunning()).toBe(false);

    await env.start();
    expect(rec.states).toEqual(['starting']);
    await rec.line('ready');
    expect(env.state).toBe('starting'); // `running` is the server's call (startup.done)
    env.setState('running');
    expect(await env.isRunning()).toBe(true);
    expect(await env.exists()).toBe(true);
    expect(env.isAttached).toBe(true);

    await env.sendCommand('hello world');
    await rec.line('got hello world');

    await env.stop();
    expect(env.state).toBe('stopping');
    await rec.state('offline');
    expect(rec.states).toEqual(['starting', 'running', 'stopping', 'offline']);
    expect(rec.lines).toEqual(['ready', 'got hello world', 'got stop']);
    expect(await env.exitState()).toEqual({ exitCode: 0, oomKilled: false });
    expect(await env.isRunning()).toBe(false);
    expect(env.isAttached).toBe(false);
    await expect(env.sendCommand('x')).rejects.toThrow('not attached to instance');
  });

  it('adopts a running child on a second start', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    await env.start();
    expect(env.state).toBe('running');
    expect(rec.lines).toEqual(['ready']);
    await env.attach();
    expect(env.state).toBe('running');
  });

  it('a console command equal to the stop command sets stopping first', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    env.setState('running');
    await env.sendCommand('stop');
    expect(env.state).toBe('stopping');
    await rec.state('offline');
    expect(rec.states).toEqual(['starting', 'running', 'stopping', 'offline']);
  });

  it('expands {{VAR}} from the server environment, runs in the data directory with HOME set', async () => {
    const { ctx } = await setup('echo "mem={{SERVER_MEMORY}} port={{SERVER_PORT}} home=$HOME pwd=$(pwd)"');
    const { env, rec } = make(ctx);
    await env.start();
    await rec.state('offline');
    expect(rec.lines).toEqual([`mem=512 port=25565 home=${ctx.dataDirectory} pwd=${ctx.dataDirectory}`]);
  });

  it('records the exit code of a crash; starting → offline directly', async () => {
    const { ctx } = await setup('echo boom >&2; exit 3');
    const { env, rec } = make(ctx);
    await env.start();
    await rec.state('offline');
    expect(rec.lines).toEqual(['boom']);
    expect(rec.states).toEqual(['starting', 'offline']);
    expect(await env.exitState()).toEqual({ exitCode: 3, oomKilled: false });
  });

  it('splits long output lines at 64 KiB', async () => {
    const { ctx } = await setup("head -c 150000 /dev/zero | tr '\\0' a; echo; printf 'x \\rcr\\r\\nlast'");
    const { env, rec } = make(ctx);
    await env.start();
    await rec.state('offline');
    expect(rec.lines.map((l) => l.length)).toEqual([65536, 65536, 18928, 5, 4]);
    expect(rec.lines[0]).toBe('a'.repeat(65536));
    expect(rec.lines[3]).toBe('x\r\ncr');
    expect(rec.lines[4]).toBe('last');
    expect(await env.readLog(10)).toEqual(rec.lines);
  });

  it('fails a start without a data directory: starting → stopping → offline, rejected', async () => {
    const { ctx } = await setup(ECHO_LOOP, undefined, { createDataDir: false });
    const { env, rec } = make(ctx);
    await expect(env.start()).rejects.toThrow(/does not exist/);
    expect(rec.states).toEqual(['starting', 'stopping', 'offline']);
    await env.create();
    await env.start();
    await rec.line('ready');
  });

  it('does nothing harmful when not running', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.stop();
    await env.waitForStop(1000, false);
    await env.terminate('SIGKILL');
    await env.attach();
    await env.inSituUpdate();
    expect(rec.states).toEqual([]);
    expect(env.state).toBe('offline');
    await expect(env.sendCommand('x')).rejects.toThrow('not attached to instance');
    expect(await env.readLog(10)).toEqual([]);
  });
});

describe('ProcessEnvironment: stop, waitForStop, terminate', () => {
  const TRAPS =
    "trap 'echo bye; exit 0' TERM; trap 'echo interrupted; exit 0' INT; echo ready; while :; do sleep 0.05; done";

  it('stops by signal (SIGTERM, case-insensitive) to the process group', async () => {
    const { ctx } = await setup(TRAPS, { type: 'signal', value: 'sigterm' });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    env.setState('running');
    await env.stop();
    expect(env.state).toBe('stopping');
    await rec.state('offline');
    expect(rec.lines).toContain('bye');
    expect(rec.states).toEqual(['starting', 'running', 'stopping', 'offline']);
    expect((await env.exitState()).exitCode).toBe(0);
  });

  it('sends SIGINT for the value C', async () => {
    const { ctx } = await setup(TRAPS, { type: 'signal', value: 'C' });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    await env.waitForStop(10_000, false);
    expect(rec.lines).toContain('interrupted');
    expect(env.state).toBe('offline');
  });

  it('stops with SIGTERM for stop type "stop" and empty', async () => {
    for (const type of ['stop', '']) {
      const { ctx } = await setup(TRAPS, { type, value: '' });
      const { env, rec } = make(ctx);
      await env.start();
      await rec.line('ready');
      await env.waitForStop(10_000, false);
      expect(rec.lines).toContain('bye');
    }
  });

  it('maps stop signal values', () => {
    expect(stopSignal('SIGABRT')).toBe('SIGABRT');
    expect(stopSignal('sigint')).toBe('SIGINT');
    expect(stopSignal('c')).toBe('SIGINT');
    expect(stopSignal('^C')).toBe('SIGINT');
    expect(stopSignal('SIGTERM')).toBe('SIGTERM');
    expect(stopSignal('SIGHUP')).toBe('SIGKILL');
    expect(stopSignal('')).toBe('SIGKILL');
  });

  it('waitForStop: timeout without terminate rejects STOP_TIMEOUT and leaves it running; with terminate kills', async () => {
    const { ctx } = await setup("trap '' TERM; echo ready; while :; do sleep 0.05; done", { type: 'stop', value: '' });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    env.setState('running');

    const err = await env.waitForStop(300, false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error & { code?: string }).code).toBe('STOP_TIMEOUT');
    expect((err as Error).message).toBe('timed out waiting for the server to stop');
    expect(await env.isRunning()).toBe(true);
    expect(env.state).toBe('stopping');

    await env.waitForStop(300, true);
    expect(env.state).toBe('offline');
    expect(await env.isRunning()).toBe(false);
    expect(await env.exitState()).toEqual({ exitCode: 137, oomKilled: false });
    expect(rec.states).toEqual(['starting', 'running', 'stopping', 'offline']);
  });

  it('waitForStop: an abort kills when terminate is set', async () => {
    const { ctx } = await setup("trap '' TERM; echo ready; while :; do sleep 0.05; done", { type: 'stop', value: '' });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    const ac = new AbortController();
    const waiting = env.waitForStop(60_000, true, ac.signal);
    await rec.state('stopping');
    ac.abort();
    await waiting;
    expect(env.state).toBe('offline');
    expect(await env.isRunning()).toBe(false);
  });

  it('terminate kills with the signal: stopping → offline, exit 128+signo', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    env.setState('running');
    await env.terminate('SIGKILL');
    expect(env.state).toBe('offline');
    expect(rec.states).toEqual(['starting', 'running', 'stopping', 'offline']);
    expect(await env.exitState()).toEqual({ exitCode: 137, oomKilled: false });
    expect(await env.isRunning()).toBe(false);
  });

  it('destroy kills the whole process tree', async () => {
    const { ctx } = await setup('sleep 1000 & echo "child $!"; wait');
    const { env, rec } = make(ctx);
    await env.start();
    await rec.until(() => rec.lines.some((l) => l.startsWith('child ')), 'child pid');
    const pid = Number(rec.lines[0].slice('child '.length));
    expect(processGone(pid)).toBe(false);
    await env.destroy();
    expect(env.state).toBe('offline');
    await until(() => processGone(pid), `sleep ${pid} gone`);
    expect(existsSync(env.consoleLogFile)).toBe(false);
  });

  it('the rest of the group dies with the main process, like a container', async () => {
    const { ctx } = await setup('sleep 1000 & echo "child $!"; exit 0');
    const { env, rec } = make(ctx);
    await env.start();
    await rec.state('offline');
    const pid = Number(rec.lines[0].slice('child '.length));
    await until(() => processGone(pid), `sleep ${pid} gone`);
  });

  it('detach stops the process without reporting state changes', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    env.setState('running');
    await env.detach();
    expect(await env.isRunning()).toBe(false);
    expect(rec.states).toEqual(['starting', 'running']);
    expect(env.listenerCount('state')).toBe(0);
  });
});

describe('ProcessEnvironment: console log', () => {
  it('readLog survives a new environment on the same directories; start truncates it', async () => {
    const { ctx } = await setup('for i in 1 2 3 4 5; do echo line$i; done');
    const { env, rec } = make(ctx);
    await env.start();
    await rec.state('offline');
    expect(await env.readLog(3)).toEqual(['line3', 'line4', 'line5']);

    const { env: env2 } = make(ctx);
    expect(await env2.readLog(3)).toEqual(['line3', 'line4', 'line5']);
    expect(await env2.readLog(100)).toEqual(['line1', 'line2', 'line3', 'line4', 'line5']);
    expect(env2.consoleLogFile).toBe(join(ctx.config().system.log_directory, 'console', `${UUID}.log`));

    const { env: env3, rec: rec3 } = make({ ...ctx, settings: () => ({ ...ctx.settings(), invocation: 'echo fresh' }) });
    await env3.start();
    await rec3.state('offline');
    expect(await env3.readLog(100)).toEqual(['fresh']);
  });

  it('readLog sees lines of a running server at once', async () => {
    const { ctx } = await setup(ECHO_LOOP);
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    await env.sendCommand('one');
    await rec.line('got one');
    expect(await env.readLog(2)).toEqual(['ready', 'got one']);
  });

  it('rotates beyond the cap and still reads the last lines across both files', async () => {
    const { root } = await setup('');
    const log = new ConsoleLog(join(root, 'log', 'console', 'x.log'), logger, 1000);
    log.reset();
    for (let i = 0; i < 300; i++) {
      log.append(`line ${i}`);
      log.flush();
    }
    log.append('a \rb'.replace(' \r', '\r\n'));
    log.append('');
    log.close();
    expect(existsSync(log.rotatedFile)).toBe(true);
    expect(readFileSync(log.file).length).toBeLessThanOrEqual(1000);
    const last = await log.readLast(150);
    expect(last.length).toBe(150);
    expect(last.slice(-3)).toEqual(['line 299', 'a\r\nb', '']);
    expect(last[0]).toBe('line 152');
    log.reset();
    expect(existsSync(log.rotatedFile)).toBe(false);
    expect(await log.readLast(10)).toEqual([]);
  });

  it('tails big files chunk-wise, multi-byte characters included', async () => {
    const { root } = await setup('');
    const log = new ConsoleLog(join(root, 'big.log'), logger);
    log.reset();
    for (let i = 0; i < 20_000; i++) log.append(`zeile ${i} äöü €`);
    log.close();
    expect(await tailLines(log.file, 2)).toEqual(['zeile 19998 äöü €', 'zeile 19999 äöü €']);
    const all = await tailLines(log.file, 30_000);
    expect(all.length).toBe(20_000);
    expect(all[0]).toBe('zeile 0 äöü €');
    expect(await tailLines(join(root, 'missing.log'), 5)).toEqual([]);
  });
});

describe('ProcessEnvironment: stats', () => {
  it('emits stats while running and stops afterwards', async () => {
    const { ctx } = await setup(ECHO_LOOP, undefined, { memory: 256 });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.line('ready');
    await rec.until(() => rec.stats.length >= 2, 'two stats samples');
    const s = rec.stats[rec.stats.length - 1];
    expect(s.memory_limit_bytes).toBe(256_000_000);
    expect(s.network).toEqual({ rx_bytes: 0, tx_bytes: 0 });
    expect(s.uptime).toBeGreaterThan(0);
    expect(s.cpu_absolute).toBeGreaterThanOrEqual(0);
    if (existsSync('/proc/self/stat')) expect(s.memory_bytes).toBeGreaterThan(0);
    await env.sendCommand('stop');
    await rec.state('offline');
    const count = rec.stats.length;
    // Any sample in flight at the exit is dropped; the timer is gone.
    await new Promise<void>((r) => setTimeout(r, 1200));
    expect(rec.stats.length).toBe(count);
  });

  it('uses the total memory as the limit when memory_limit is 0, and parses /proc stat lines', async () => {
    const { ctx } = await setup(ECHO_LOOP, undefined, { memory: 0 });
    const { env, rec } = make(ctx);
    await env.start();
    await rec.until(() => rec.stats.length >= 1, 'a stats sample');
    const { totalmem } = await import('node:os');
    expect(rec.stats[0].memory_limit_bytes).toBe(totalmem());
    expect(parseProcStat('42 (a b) c) S 1 42 42 0 -1 4194560 1 0 0 0 7 3 2 1 20 0 1 0 100 1000 50')).toEqual({
      pgrp: 42,
      session: 42,
      ticks: 13,
    });
  });
});

describe('ProcessEnvironment: installer', () => {
  it('runs the script in the data directory with the server env and reports success', async () => {
    const { ctx, config } = await setup('');
    const { env } = make(ctx);
    const output: string[] = [];
    const ok = await env.runInstaller({
      image: 'ghcr.io/pterodactyl/installers:alpine',
      entrypoint: 'ash',
      script: 'echo installing\r\necho "memory $SERVER_MEMORY"\r\necho done > installed.txt\r\n',
      onOutput: (l) => output.push(l),
      signal: new AbortController().signal,
    });
    expect(ok).toBe(true);
    expect(output).toEqual(['installing', 'memory 512']);
    expect(readFileSync(join(ctx.dataDirectory, 'installed.txt'), 'utf8')).toBe('done\n');
    expect(existsSync(join(config.system.tmp_directory, UUID))).toBe(false);
  });

  it('reports failure with its output', async () => {
    const { ctx, config } = await setup('');
    const { env } = make(ctx);
    const output: string[] = [];
    const ok = await env.runInstaller({
      image: 'x',
      entrypoint: 'bash',
      script: 'echo step\necho oops >&2\nexit 4\n',
      onOutput: (l) => output.push(l),
      signal: new AbortController().signal,
    });
    expect(ok).toBe(false);
    expect(output.sort()).toEqual(['oops', 'step']);
    expect(existsSync(join(config.system.tmp_directory, UUID))).toBe(false);
  });

  it('is killed by an abort', async () => {
    const { ctx } = await setup('');
    const { env } = make(ctx);
    const ac = new AbortController();
    const output: string[] = [];
    const ok = await env.runInstaller({
      image: 'x',
      entrypoint: '',
      script: 'echo started\nsleep 1000\necho never\n',
      onOutput: (l) => {
        output.push(l);
        if (l === 'started') ac.abort();
      },
      signal: ac.signal,
    });
    expect(ok).toBe(false);
    expect(output).toEqual(['started']);
  });
});

describe('process environment helpers', () => {
  it('expands only valid variable names', () => {
    expect(expandInvocation('java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}')).toBe(
      'java -Xmx${SERVER_MEMORY}M -jar ${SERVER_JARFILE}',
    );
    expect(expandInvocation('{{server.build.memory}} {{ X }}')).toBe('{{server.build.memory}} {{ X }}');
  });

  it('builds the child environment: first wins, HOME and PATH from the daemon', () => {
    const env = buildChildEnvironment(['A=1', 'A=2', 'B=x=y', 'bad', 'constructor=c', 'HOME=/nope'], '/data');
    expect(env).toMatchObject({ A: '1', B: 'x=y', constructor: 'c', HOME: '/data', PATH: process.env.PATH });
    expect(Object.keys(env)).not.toContain('bad');
  });
});
