import { z } from 'zod';
import {
  ProcessConfigurationSchema,
  SettingsSchema,
  type ProcessConfiguration,
  type ServerSettings,
} from '../environment/server-configuration.js';

/**
 * The server configuration the Panel serves at GET /api/remote/servers/{uuid}
 * (docs/protocol.md W7.1, W23.3). Lenient where the Panel is lenient; anything unknown is ignored.
 * Its two halves (settings, process configuration) are defined beside the environment that runs
 * them and re-exported here for the server's callers.
 */

export * from '../environment/server-configuration.js';

export const ServerConfigurationSchema = z.object({
  settings: SettingsSchema,
  process_configuration: ProcessConfigurationSchema,
});

export interface ServerConfigurationData {
  settings: ServerSettings;
  processConfiguration: ProcessConfiguration;
}

/** Parses one Panel entry; throws with a readable message when it does not fit. */
export function parseServerConfiguration(
  raw: unknown,
  crashDetectionDefault: boolean,
): ServerConfigurationData {
  const parsed = ServerConfigurationSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid server configuration: ${z.prettifyError(parsed.error)}`);
  const s = parsed.data.settings;
  return {
    settings: { ...s, crash_detection_enabled: s.crash_detection_enabled ?? crashDetectionDefault },
    processConfiguration: parsed.data.process_configuration,
  };
}

/** The `configuration` object of GET /api/servers/:server (docs/protocol.md W8), in Wings' key order. */
export function configurationView(s: ServerSettings): Record<string, unknown> {
  return {
    uuid: s.uuid,
    meta: s.meta,
    suspended: s.suspended,
    invocation: s.invocation,
    skip_egg_scripts: s.skip_egg_scripts,
    environment: s.environment,
    labels: s.labels,
    allocations: s.allocations,
    build: {
      memory_limit: s.build.memory_limit,
      swap: s.build.swap,
      io_weight: s.build.io_weight,
      cpu_limit: s.build.cpu_limit,
      disk_space: s.build.disk_space,
      threads: s.build.threads,
      oom_disabled: s.build.oom_disabled,
    },
    crash_detection_enabled: s.crash_detection_enabled,
    mounts: s.mounts,
    egg: s.egg,
    container: s.container,
  };
}
