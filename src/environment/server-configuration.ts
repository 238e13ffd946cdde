import { z } from 'zod';

/**
 * The two halves of the configuration the Panel serves for a server (GET
 * /api/remote/servers/{uuid}) that an environment runs it from: its settings (image, limits,
 * allocations, invocation, mounts) and its process configuration (stop method, startup rules).
 * They live here, below the environment, so `environment/` needs nothing from `server/`.
 * Lenient where the Panel is lenient; anything unknown is ignored.
 */

const nullableString = z.string().nullish().transform((v) => v ?? '');

export const SettingsSchema = z.object({
  uuid: z.string(),
  meta: z
    .object({ name: nullableString, description: nullableString })
    .nullish()
    .transform((v) => v ?? { name: '', description: '' }),
  suspended: z.boolean().nullish().transform((v) => v ?? false),
  environment: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? null),
  invocation: nullableString,
  skip_egg_scripts: z.boolean().nullish().transform((v) => v ?? false),
  labels: z.record(z.string(), z.string()).nullish().transform((v) => v ?? null),
  build: z
    .object({
      memory_limit: z.number().nullish().transform((v) => v ?? 0),
      swap: z.number().nullish().transform((v) => v ?? 0),
      io_weight: z.number().nullish().transform((v) => v ?? 0),
      cpu_limit: z.number().nullish().transform((v) => v ?? 0),
      threads: z.string().nullish().transform((v) => v ?? ''),
      disk_space: z.number().nullish().transform((v) => v ?? 0),
      oom_disabled: z.boolean().nullish().transform((v) => v ?? false),
    })
    .nullish()
    .transform(
      (v) =>
        v ?? { memory_limit: 0, swap: 0, io_weight: 0, cpu_limit: 0, threads: '', disk_space: 0, oom_disabled: false },
    ),
  container: z
    .object({ image: z.string().nullish() })
    .passthrough()
    .nullish()
    .transform((v) => (v?.image ? { image: v.image } : {}) as { image?: string }),
  allocations: z
    .object({
      force_outgoing_ip: z.boolean().nullish().transform((v) => v ?? false),
      default: z
        .object({ ip: nullableString, port: z.number().nullish().transform((v) => v ?? 0) })
        .nullish()
        .transform((v) => v ?? { ip: '', port: 0 }),
      mappings: z.record(z.string(), z.array(z.number())).nullish().transform((v) => v ?? null),
    })
    .nullish()
    .transform((v) => v ?? { force_outgoing_ip: false, default: { ip: '', port: 0 }, mappings: null }),
  mounts: z
    .array(z.object({ source: z.string(), target: z.string(), read_only: z.boolean().nullish().transform((v) => v ?? false) }))
    .nullish()
    .transform((v) => v ?? null),
  egg: z
    .object({ id: nullableString, file_denylist: z.array(z.string()).nullish().transform((v) => v ?? []) })
    .nullish()
    .transform((v) => v ?? { id: '', file_denylist: [] }),
  crash_detection_enabled: z.boolean().optional(),
});

export type ServerSettings = z.infer<typeof SettingsSchema> & { crash_detection_enabled: boolean };

export const ProcessConfigurationSchema = z.object({
  startup: z
    .object({
      done: z.array(z.string()).nullish().transform((v) => v ?? []),
      user_interaction: z.array(z.string()).nullish().transform((v) => v ?? []),
      strip_ansi: z.boolean().nullish().transform((v) => v ?? false),
    })
    .nullish()
    .transform((v) => v ?? { done: [], user_interaction: [], strip_ansi: false }),
  stop: z
    .object({ type: nullableString, value: nullableString })
    .nullish()
    .transform((v) => v ?? { type: '', value: '' }),
  configs: z
    .array(
      z.object({
        file: z.string(),
        parser: z.string(),
        replace: z
          .array(z.object({ match: z.string(), if_value: z.string().nullish(), replace_with: z.unknown() }))
          .nullish()
          .transform((v) => v ?? []),
      }),
    )
    .nullish()
    .transform((v) => v ?? []),
});

export type ProcessConfiguration = z.infer<typeof ProcessConfigurationSchema>;
