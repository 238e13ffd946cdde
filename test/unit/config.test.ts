import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, applyPanelUpdate, loadConfig, parseConfigText, saveConfig } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { describeUnknownKey } from '../../src/config/unknown-keys.js';

/** A config.yml as the Go daemon (v1.11) writes it after boot: every key present. */
const GO_CONFIG = `debug: false
app_name: Pterodactyl
uuid: 5d8b4c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f
token_id: AbCdEfGhIjKlMnOp
token: averyveryveryverylongsecrettokenvalue0123456789abcdefghijklmnopq
api:
  host: 0.0.0.0
  port: 8080
  ssl:
    enabled: true
    cert: /etc/letsencrypt/live/node.example.com/fullchain.pem
    key: /etc/letsencrypt/live/node.example.com/privkey.pem
  disable_remote_download: false
  upload_limit: 100
  trusted_proxies: []
system:
  root_directory: /var/lib/pterodactyl
  log_directory: /var/log/pterodactyl
  data: /var/lib/pterodactyl/volumes
  archive_directory: /var/lib/pterodactyl/archives
  backup_directory: /var/lib/pterodactyl/backups
  tmp_directory: /tmp/pterodactyl
  username: pterodactyl
  timezone: Europe/Berlin
  user:
    rootless:
      enabled: false
      container_uid: 0
      container_gid: 0
    uid: 988
    gid: 988
  disk_check_interval: 150
  activity_send_interval: 60
  activity_send_count: 100
  check_permissions_on_boot: true
  enable_log_rotate: true
  websocket_log_count: 150
  sftp:
    bind_address: 0.0.0.0
    bind_port: 2022
    read_only: false
  crash_detection:
    enabled: true
    detect_clean_exit_as_crash: true
    timeout: 60
  backups:
    write_limit: 0
    compression_level: best_speed
  transfers:
    download_limit: 0
  openat_mode: auto
docker:
  network:
    interface: 172.18.0.1
    dns:
    - 1.1.1.1
    - 1.0.0.1
    name: pterodactyl_nw
    ispn: false
    driver: bridge
    network_mode: pterodactyl_nw
    is_internal: false
    enable_icc: true
    network_mtu: 1500
    interfaces:
      v4:
        subnet: 172.18.0.0/16
        gateway: 172.18.0.1
      v6:
        subnet: fdba:17c8:6c94::/64
        gateway: fdba:17c8:6c94::1011
  domainname: ""
  registries: {}
  tmpfs_size: 100
  container_pid_limit: 512
  installer_limits:
    memory: 1024
    cpu: 100
  overhead:
    override: false
    default_multiplier: 1.05
    multipliers: {}
  use_performant_inspect: true
  userns_mode: ""
  log_config:
    type: local
    config:
      compress: "false"
      max-file: "1"
      max-size: 5m
      mode: non-blocking
throttles:
  enabled: true
  lines: 2000
  line_reset_interval: 100
remote: https://panel.example.com
remote_query:
  timeout: 30
  boot_servers_per_page: 50
allowed_mounts: []
allowed_origins: []
allow_cors_private_network: false
ignore_panel_config_updates: false
`;

describe('config.yml', () => {
  it('loads a file written by the Go daemon unchanged, with the docs/protocol.md D9.2 additions defaulted', () => {
    const { config } = parseConfigText(GO_CONFIG, 'config.yml');
    expect(config.token_id).toBe('AbCdEfGhIjKlMnOp');
    expect(config.system.user.uid).toBe(988);
    expect(config.docker.log_config.config['max-size']).toBe('5m');
    expect(config.environment).toBe('docker');
    expect(config.docker.container_name_prefix).toBe('');
    expect(config.system.transfers).toEqual({ download_limit: 0, upload_limit: 0, stop_timeout: 10, idle_timeout: 120 });
  });

  it('gives every key its Go default when the file is minimal', () => {
    const { config } = parseConfigText('token: x\n', 'config.yml');
    expect(config).toEqual(ConfigSchema.parse({ token: 'x' }));
    expect(config.api.port).toBe(8080);
    expect(config.system.data).toBe('/var/lib/pterodactyl/volumes');
    expect(config.throttles.lines).toBe(2000);
    expect(config.docker.network.dns).toEqual(['1.1.1.1', '1.0.0.1']);
    expect(config.remote_query.boot_servers_per_page).toBe(50);
  });

  it('names the file, the key and the problem when a value is wrong', () => {
    // one line per problem, `<file>: <key>: <message>` (docs/configuration.md)
    expect(() => parseConfigText('api:\n  port: "eighty"\n', '/etc/x/config.yml')).toThrow(
      new ConfigError('/etc/x/config.yml', [{ key: 'api.port', message: 'expected number, received string' }]),
    );
    expect(() => parseConfigText('api:\n  port: "eighty"\n', '/etc/x/config.yml')).toThrow(/^\/etc\/x\/config\.yml: api\.port: expected number, received string$/);
    expect(() => parseConfigText('environment: kubernetes\n', 'c.yml')).toThrow(/^c\.yml: environment: expected one of "docker"\|"process"$/);
    expect(() => parseConfigText('a: [\n', 'c.yml')).toThrow(/^c\.yml: not valid YAML: [^\n]+$/);
    expect(() => parseConfigText('- a\n', 'c.yml')).toThrow(/^c\.yml: the top level must be a mapping$/);
    expect(() => loadConfig('/nonexistent/config.yml')).toThrow(ConfigError);
    expect(() => loadConfig('/nonexistent/config.yml')).toThrow(/^\/nonexistent\/config\.yml: configuration file not found$/);
  });

  it('keeps unknown keys and writes mode 0600 when saving', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'config.yml');
    fs.writeFileSync(file, `${GO_CONFIG}future_key:\n  nested: [1, 2]\n`);
    const loaded = loadConfig(file);
    const next = applyPanelUpdate(loaded.config, { api: { upload_limit: 300 }, allowed_mounts: ['/x'] });
    saveConfig(loaded, next);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('future_key');
    expect(text).toContain('upload_limit: 300');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const again = loadConfig(file);
    expect(again.config.allowed_mounts).toEqual([]); // ignored through /api/update
    expect(again.config.api.ssl.cert).toBe('/etc/letsencrypt/live/node.example.com/fullchain.pem');
    fs.rmSync(dir, { recursive: true });
  });

  it('keeps the current certificate paths when the Panel sends Let\'s Encrypt defaults', () => {
    const { config } = parseConfigText('api:\n  ssl:\n    enabled: true\n    cert: /srv/cert.pem\n    key: /srv/key.pem\n', 'c.yml');
    const next = applyPanelUpdate(config, { api: { ssl: { enabled: true, cert: '/etc/letsencrypt/live/n/fullchain.pem', key: '/etc/letsencrypt/live/n/privkey.pem' } } });
    expect(next.api.ssl.cert).toBe('/srv/cert.pem');
    expect(next.api.ssl.key).toBe('/srv/key.pem');
  });

  it('names unknown keys with the nearest known key, and accepts the Go daemon\'s full file without a word', () => {
    expect(parseConfigText(GO_CONFIG, 'config.yml').unknown).toEqual([]);
    const { unknown, config } = parseConfigText(
      'api:\n  prot: 18130\nsytem:\n  data: /srv\nsystem:\n  transfers:\n    idle_timout: 5\n  passwd:\n    enable: true\n' +
        'docker:\n  registries:\n    ghcr.io:\n      username: a\nzzz_unrelated_setting: 1\n',
      'c.yml',
    );
    expect(config.api.port).toBe(8080);
    expect(unknown.map(describeUnknownKey)).toEqual([
      'api.prot: unknown key, ignored (did you mean "api.port"?)',
      'sytem: unknown key, ignored (did you mean "system"?)',
      'system.transfers.idle_timout: unknown key, ignored (did you mean "system.transfers.idle_timeout"?)',
      'system.passwd: read by Pelican and newer Go Wings, not by wings-ts (kept in the file, ignored)',
      'zzz_unrelated_setting: unknown key, ignored',
    ]);
  });
});
