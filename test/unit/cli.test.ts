import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { printFatal } from '../../src/cli/fatal.js';
import { barPayload, createMultiBar, resolveTarget } from '../../src/cli/transfers.js';
import { ConfigError } from '../../src/config/errors.js';
import { DEFAULT_CONFIG_PATH } from '../../src/config/load.js';
import type { TransferView } from '../../src/transfer/transfer.js';
import { tmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;

/** An in-memory stream that says it is (or is not) a terminal, as process.stdout / stderr do. */
function capture(isTTY: boolean): NodeJS.WriteStream & { text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream & { text(): string };
  Object.assign(stream, { isTTY, columns: 160, rows: 40, text: () => text });
  return stream;
}

function view(over: Partial<TransferView> = {}): TransferView {
  return {
    server: '8f2c6a1e-5d7b-4c3a-9e1f-0a2b3c4d5e6f',
    state: 'processing',
    direction: 'outgoing',
    bytes_total: Math.round(155.2 * MiB),
    bytes_done: 13 * MiB,
    files_done: 12,
    rate_bytes_per_second: Math.round(4.1 * MiB),
    eta_seconds: 32,
    started_at: new Date().toISOString(),
    error: null,
    ...over,
  };
}

describe('wings transfers', () => {
  it('reads the default config.yml when neither --url nor --config is given', () => {
    expect(DEFAULT_CONFIG_PATH).toBe('/etc/pterodactyl/config.yml');
    const file = path.join(tmpDir(), 'config.yml');
    fs.writeFileSync(file, stringify({ token: 'node-token', api: { host: '0.0.0.0', port: 18123 } }));
    expect(resolveTarget({}, file)).toEqual({ url: 'http://127.0.0.1:18123', token: 'node-token' });
    expect(resolveTarget({ token: 'other' }, file)).toEqual({ url: 'http://127.0.0.1:18123', token: 'other' });
    // --url alone does not read the default file
    expect(() => resolveTarget({ url: 'http://127.0.0.1:1' }, file)).toThrow(/give --url and --token/);
    expect(resolveTarget({ url: 'http://127.0.0.1:1/', token: 't' }, file)).toEqual({ url: 'http://127.0.0.1:1', token: 't' });
    // a missing default names the file it looked for
    expect(() => resolveTarget({}, '/nonexistent/pterodactyl/config.yml')).toThrow(
      /^\/nonexistent\/pterodactyl\/config\.yml: configuration file not found$/,
    );
  });

  it('draws the --watch bar on a terminal in the same units on both sides, never INF or a raw byte count', () => {
    const cases: [TransferView, RegExp][] = [
      [view(), / 8% +13\.0 MiB \/ 155\.2 MiB {2}\s*4\.1 MiB\/s {2}ETA 32s/],
      [view({ eta_seconds: null, rate_bytes_per_second: 0 }), / 8% +13\.0 MiB \/ 155\.2 MiB {2}\s*0 B\/s {2}ETA \?/],
      [view({ bytes_total: null }), / \?% +13\.0 MiB \/ \? {2}\s*4\.1 MiB\/s {2}ETA 32s/],
    ];
    for (const [t, expected] of cases) {
      const out = capture(true);
      const multibar = createMultiBar(out);
      const total = t.bytes_total ?? Math.max(1, t.bytes_done);
      multibar.create(total, t.bytes_done, barPayload(t));
      multibar.stop();
      // without the cursor movements
      const text = out.text().replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]/g, '');
      expect(text).toContain('8f2c6a1e out processing');
      expect(text).toMatch(expected);
      expect(text).not.toMatch(/INF|Infinity|NaN|undefined|\{\w+\}/);
      expect(text).not.toContain(String(total));
    }
  });
});

describe('fatal lines', () => {
  const err = new ConfigError('/etc/x/config.yml', [
    { key: 'api.port', message: 'expected number, received string' },
    { key: null, message: 'second problem' },
  ]);

  it('one plain line per problem off a terminal, red on a terminal, plain with NO_COLOR', () => {
    const pipe = capture(false);
    printFatal(err, 'failed to boot', pipe);
    expect(pipe.text()).toBe('wings: /etc/x/config.yml: api.port: expected number, received string\nwings: /etc/x/config.yml: second problem\n');

    const tty = capture(true);
    printFatal(new Error('connect ECONNREFUSED 127.0.0.1:1\n    at stack line'), 'failed to boot', tty);
    expect(tty.text()).toBe('\u001b[31mwings: failed to boot: connect ECONNREFUSED 127.0.0.1:1\u001b[0m\n');

    const saved = process.env.NO_COLOR;
    process.env.NO_COLOR = '1';
    try {
      const noColour = capture(true);
      printFatal(err, 'failed to boot', noColour);
      expect(noColour.text()).not.toContain('\u001b[');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });
});
