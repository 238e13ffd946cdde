import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { TEST_ORIGIN as ORIGIN, WsClient as Client, closeSocketsOf, daemonSockets } from '../helpers/ws.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

// A reader that stops reading must cost the daemon a bounded amount of memory and must not hold
// up the other readers of its server. Console lines for a congested socket go through a small
// queue that drops the oldest line (websocket.md, delivery); a socket whose writes make no
// progress for the write deadline is closed without a close frame, as a failed write closes it
// (the client sees 1006 once it reads again). Each case runs on a daemon of its own with the
// deadline set explicitly, so what the paused reader sees does not depend on how fast this
// machine moves the lines.
describe('a slow console websocket reader against real daemons', () => {
  let tp: TestPanel;
  /** The daemon's per-socket console queue: what a congested socket still gets when it resumes. */
  const CONSOLE_QUEUE = 8;
  const BODY = randomBytes(12_000).toString('base64');
  const LINE_BYTES = 'got 0000-'.length + BODY.length;
  /** Deadline far beyond what a test may run (vitest's 60 s): a reader always resumes before it. */
  let patient: TestNode;
  /** Short deadline: a reader paused past it is closed, however fast the lines were produced. */
  let strict: TestNode;
  const STRICT_DEADLINE_MS = 2000;

  /**
   * Lines enough to overflow, three times over, what a reader that reads nothing still takes:
   * the daemon's kernel send buffer (autotuned up to tcp_wmem's maximum), the reader's receive
   * buffer (tcp_rmem's default: it grows only while the reader reads) and the daemon's 64 KiB of
   * user-space buffering. 4 MiB + 128 KiB here: about 800 lines.
   */
  function overflowLines(): number {
    const sysctl = (name: string, field: number, fallback: number): number => {
      try {
        const v = Number(fs.readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[field]);
        return Number.isFinite(v) && v > 0 ? v : fallback;
      } catch {
        return fallback;
      }
    };
    const buffered = sysctl('tcp_wmem', 2, 4 << 20) + sysctl('tcp_rmem', 1, 128 << 10) + (64 << 10);
    return Math.ceil((3 * buffered) / LINE_BYTES / CONSOLE_QUEUE) * CONSOLE_QUEUE;
  }

  async function startWithDeadline(name: string, deadlineMs: number): Promise<TestNode> {
    // read by the daemon at startup; the environment is copied when it is spawned
    process.env.WINGS_WS_WRITE_DEADLINE_MS = String(deadlineMs);
    try {
      return await startNode(tp, { name, config: { allowed_origins: [ORIGIN] } });
    } finally {
      delete process.env.WINGS_WS_WRITE_DEADLINE_MS;
    }
  }
  beforeAll(async () => {
    tp = await startPanel();
    // one after the other: each daemon takes the variable as it is when it is spawned
    patient = await startWithDeadline('ws-patient', 600_000);
    strict = await startWithDeadline('ws-strict', STRICT_DEADLINE_MS);
  });
  // closed even when a test fails, here and on the daemons
  afterEach(() => closeSocketsOf([patient, strict]));
  afterAll(async () => {
    await Promise.all([patient?.stop(), strict?.stop()]);
    await tp?.close();
  });

  const wsUrl = (server: string, n: TestNode) => `${n.url.replace(/^http/, 'ws')}/api/servers/${server}/ws`;
  /** A socket of `server` on `n`, authenticated with every permission. */
  async function reader(n: TestNode, server: string, perMessageDeflate = true): Promise<Client> {
    const c = await Client.open(wsUrl(server, n), { Origin: ORIGIN }, { perMessageDeflate });
    c.send('auth', (await tp.panel.admin.websocketToken(server, { permissions: ['*'] })).data.token);
    await c.expectEvent('status');
    return c;
  }

  /**
   * The echo server in Node, which reads its standard input in blocks: the shell's `read` takes
   * one byte per system call, and moving these 13 MB of lines through it cost 25 s of CPU.
   */
  const BULK_ECHO = {
    ...ECHO_SERVER,
    skip_egg_scripts: true,
    invocation: `echo "Done (ready)"; exec '${process.execPath}' -e "require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => console.log('got ' + l))"`,
  };

  /** A running echo server on `n` with two readers: `fast`, and `slow` whose TCP socket no longer reads. */
  async function pausedReader(n: TestNode): Promise<{ server: string; fast: Client; slow: Client; raw: Socket }> {
    const server = (await tp.panel.admin.createServer({ node_id: n.id, ...BULK_ECHO })).uuid;
    await n.api('POST', `/api/servers/${server}/power`, { action: 'start' });
    await n.waitForState(server, 'running');
    const fast = await reader(n, server);
    // no compression: the bytes on the wire are the lines themselves
    const slow = await reader(n, server, false);
    const raw = (slow.ws as unknown as { _socket: Socket })._socket;
    raw.pause();
    return { server, fast, slow, raw };
  }

  /**
   * Sends lines `0 … total-1`, then `END`, and checks that the fast reader got every one in order.
   * A batch of eight (the queue's size) goes once the fast reader holds the previous one: it never
   * has more than a queue's worth outstanding, whatever the machine's load, while the paused
   * reader falls megabytes behind.
   */
  async function sendLines(n: TestNode, server: string, fast: Client, total: number): Promise<void> {
    const send = async (commands: string[]): Promise<void> => {
      expect((await n.api('POST', `/api/servers/${server}/commands`, { commands })).status).toBe(204);
      const last = `got ${commands.at(-1)}`;
      await fast.expectEvent('console output', { pred: (x) => x.args?.[0] === last, timeoutMs: 20_000 });
    };
    for (let i = 0; i < total; i += CONSOLE_QUEUE) await send(range(i, i + CONSOLE_QUEUE).map((k) => `${k}-${BODY}`));
    await send(['END']);
    expect(lines(fast)).toEqual(range(0, total));
  }

  /** The numbers of the bulk lines a reader received, in the order it received them. */
  const lines = (c: Client): number[] =>
    c.messages
      .filter((x) => x.event === 'console output' && x.args?.[0]?.startsWith('got ') && x.args[0].length > 1000)
      .map((x) => Number(x.args![0].slice(4, x.args![0].indexOf('-'))));
  const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]);

  async function kill(n: TestNode, server: string): Promise<void> {
    await n.api('POST', `/api/servers/${server}/power`, { action: 'kill' });
    await n.waitForState(server, 'offline');
  }

  it('a reader that resumes before the write deadline gets the newest lines; the others get everything', async () => {
    const { server, fast, slow, raw } = await pausedReader(patient);
    const total = overflowLines();
    await sendLines(patient, server, fast, total);

    raw.resume();
    await slow.expectEvent('console output', { pred: (x) => x.args?.[0] === 'got END', timeoutMs: 20_000 });
    // What was on its way before the socket congested, then what the queue held when it
    // resumed: the newest lines, in order, END last. Everything in between was dropped.
    const got = lines(slow);
    expect(got.length).toBeLessThan(total);
    expect(got[0]).toBe(0);
    expect(increasing(got)).toBe(true);
    expect(got.slice(-(CONSOLE_QUEUE - 1))).toEqual(range(total - (CONSOLE_QUEUE - 1), total));
    expect(slow.messages.filter((x) => x.event === 'console output').at(-1)).toEqual({ event: 'console output', args: ['got END'] });
    // and the socket is still served
    expect(slow.ws.readyState).toBe(WebSocket.OPEN);
    const m = slow.mark();
    slow.send('send stats');
    await slow.expectEvent('stats', { from: m });
    await kill(patient, server);
  });

  it('a reader that stays paused past the write deadline is closed by the daemon; the others get everything', async () => {
    const { server, fast, slow, raw } = await pausedReader(strict);
    const total = overflowLines();
    await sendLines(strict, server, fast, total);
    // Its buffers are full, so its writes make no progress: the daemon lets it go within the
    // deadline (plus its one-second sweep), whether that ran out during the lines or only now.
    await waitFor(async () => (await daemonSockets(strict)) === 1, {
      timeoutMs: STRICT_DEADLINE_MS + 10_000,
      what: 'the daemon to close the paused socket',
    });

    // The reader gets what was already on its way, in order, then the connection ends without
    // a close frame.
    raw.resume();
    expect((await slow.closed).code).toBe(1006);
    const got = lines(slow);
    expect(got.length).toBeLessThan(total);
    expect(increasing(got)).toBe(true);
    expect(slow.find('console output', 0, (x) => x.args?.[0] === 'got END')).toBeUndefined();
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
    await kill(strict, server);
  });
});
