import { z } from 'zod';

/**
 * config.yml as the Go daemon (Wings v1.11) reads it, with its defaults (docs/protocol.md W5), plus
 * the wings-ts additions of docs/protocol.md D9.2. Unknown keys are ignored here and preserved on
 * save (see load.ts).
 */

const CompressionLevel = z.enum(['none', 'best_speed', 'best_compression']);

const Ssl = z.object({
  enabled: z.boolean().default(false),
  cert: z.string().default(''),
  key: z.string().default(''),
});

const Api = z.object({
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8080),
  ssl: Ssl.prefault({}),
  disable_remote_download: z.boolean().default(false),
  upload_limit: z.number().int().default(100),
  trusted_proxies: z.array(z.string()).default([]),
});

const Transfers = z.object({
  download_limit: z.number().min(0).default(0),
  upload_limit: z.number().min(0).default(0),
  compression_level: CompressionLevel.optional(),
  stop_timeout: z.number().positive().default(10),
  idle_timeout: z.number().positive().default(120),
});

const System = z.object({
  root_directory: z.string().default('/var/lib/pterodactyl'),
  log_directory: z.string().default('/var/log/pterodactyl'),
  data: z.string().default('/var/lib/pterodactyl/volumes'),
  archive_directory: z.string().default('/var/lib/pterodactyl/archives'),
  backup_directory: z.string().default('/var/lib/pterodactyl/backups'),
  tmp_directory: z.string().default('/tmp/pterodactyl'),
  username: z.string().default('pterodactyl'),
  timezone: z.string().default(''),
  user: z
    .object({
      rootless: z
        .object({
          enabled: z.boolean().default(false),
          container_uid: z.number().int().default(0),
          container_gid: z.number().int().default(0),
        })
        .prefault({}),
      uid: z.number().int().default(0),
      gid: z.number().int().default(0),
    })
    .prefault({}),
  disk_check_interval: z.number().int().min(0).default(150),
  activity_send_interval: z.number().int().default(60),
  activity_send_count: z.number().int().default(100),
  check_permissions_on_boot: z.boolean().default(true),
  enable_log_rotate: z.boolean().default(true),
  websocket_log_count: z.number().int().min(0).default(150),
  sftp: z
    .object({
      bind_address: z.string().default('0.0.0.0'),
      bind_port: z.number().int().default(2022),
      read_only: z.boolean().default(false),
    })
    .prefault({}),
  crash_detection: z
    .object({
      enabled: z.boolean().default(true),
      detect_clean_exit_as_crash: z.boolean().default(true),
      timeout: z.number().int().min(0).default(60),
    })
    .prefault({}),
  backups: z
    .object({
      write_limit: z.number().min(0).default(0),
      compression_level: CompressionLevel.default('best_speed'),
    })
    .prefault({}),
  transfers: Transfers.prefault({}),
  openat_mode: z.string().default('auto'),
});

const NetworkInterfaces = z.object({
  v4: z
    .object({ subnet: z.string().default('172.18.0.0/16'), gateway: z.string().default('172.18.0.1') })
    .prefault({}),
  v6: z
    .object({
      subnet: z.string().default('fdba:17c8:6c94::/64'),
      gateway: z.string().default('fdba:17c8:6c94::1011'),
    })
    .prefault({}),
});

const Docker = z.object({
  network: z
    .object({
      interface: z.string().default('172.18.0.1'),
      dns: z.array(z.string()).default(['1.1.1.1', '1.0.0.1']),
      name: z.string().default('pterodactyl_nw'),
      ispn: z.boolean().default(false),
      driver: z.string().default('bridge'),
      network_mode: z.string().default('pterodactyl_nw'),
      is_internal: z.boolean().default(false),
      enable_icc: z.boolean().default(true),
      network_mtu: z.number().int().default(1500),
      interfaces: NetworkInterfaces.prefault({}),
    })
    .prefault({}),
  domainname: z.string().default(''),
  registries: z
    .record(z.string(), z.object({ username: z.string().default(''), password: z.string().default('') }))
    .default({}),
  tmpfs_size: z.number().int().min(0).default(100),
  container_pid_limit: z.number().int().min(0).default(512),
  installer_limits: z
    .object({ memory: z.number().int().default(1024), cpu: z.number().int().default(100) })
    .prefault({}),
  overhead: z
    .object({
      override: z.boolean().default(false),
      default_multiplier: z.number().default(1.05),
      multipliers: z.record(z.string(), z.number()).default({}),
    })
    .prefault({}),
  use_performant_inspect: z.boolean().default(true),
  userns_mode: z.string().default(''),
  log_config: z
    .object({
      type: z.string().default('local'),
      config: z
        .record(z.string(), z.string())
        .default({ 'max-size': '5m', 'max-file': '1', compress: 'false', mode: 'non-blocking' }),
    })
    .prefault({}),
  /** wings-ts addition (docs/protocol.md D9.4): prefix of container names, so two nodes can share one engine. */
  container_name_prefix: z.string().default(''),
});

export const ConfigSchema = z.object({
  debug: z.boolean().default(false),
  app_name: z.string().default('Pterodactyl'),
  uuid: z.string().default(''),
  token_id: z.string().default(''),
  token: z.string().default(''),
  api: Api.prefault({}),
  system: System.prefault({}),
  docker: Docker.prefault({}),
  throttles: z
    .object({
      enabled: z.boolean().default(true),
      lines: z.number().int().positive().default(2000),
      line_reset_interval: z.number().int().positive().default(100),
    })
    .prefault({}),
  remote: z.string().default(''),
  remote_query: z
    .object({
      timeout: z.number().positive().default(30),
      boot_servers_per_page: z.number().int().positive().default(50),
    })
    .prefault({}),
  allowed_mounts: z.array(z.string()).default([]),
  allowed_origins: z.array(z.string()).default([]),
  allow_cors_private_network: z.boolean().default(false),
  ignore_panel_config_updates: z.boolean().default(false),
  /** wings-ts addition (docs/protocol.md D9.3): `docker` (default) or `process`. */
  environment: z.enum(['docker', 'process']).default('docker'),
  /** wings-ts addition: serve /metrics without auth on this port when set (0 = only on the API, node token). */
  metrics: z
    .object({
      port: z.number().int().min(0).max(65535).default(0),
      host: z.string().default('127.0.0.1'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type CompressionLevelName = z.infer<typeof CompressionLevel>;

/**
 * The transfer compression level: `system.transfers.compression_level`, else the backups' level
 * (docs/protocol.md D9.2).
 */
export function transferCompressionLevel(config: Config): CompressionLevelName {
  return config.system.transfers.compression_level ?? config.system.backups.compression_level;
}

export function gzipLevel(name: CompressionLevelName): number {
  return name === 'none' ? 0 : name === 'best_compression' ? 9 : 1;
}
