import type Dockerode from 'dockerode';
import { WingsError } from '../../errors.js';
import type { EnvironmentContext } from '../environment.js';
import { NODE_LABEL, containerName, containerResources, serverContainerOptions } from './container-config.js';
import { dockerError, isNotFound, statusCode } from './errors.js';
import { ensureImage } from './images.js';
import { serverNetworkMode } from './network.js';

/**
 * The engine side of one server's containers: looking them up with the ownership check, creating
 * the server container, removing, updating its limits. A node only touches containers labelled
 * with its own node uuid (docs/protocol.md D9.4), so every lookup goes through `inspectOwned`.
 */
export class ServerContainer {
  constructor(
    private readonly ctx: EnvironmentContext,
    private readonly docker: Dockerode,
  ) {}

  /** The server container's name: `<container_name_prefix><uuid>`. */
  get name(): string {
    return containerName(this.ctx.config(), this.ctx.uuid);
  }

  /**
   * Inspects a container by name. Missing ⇒ null. A container of that name that another node
   * owns is an error: we never touch it. Containers with no node label but the Pterodactyl service
   * label are the Go daemon's (same names when no prefix is configured): those we adopt.
   */
  async inspectOwned(name: string): Promise<Dockerode.ContainerInspectInfo | null> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw dockerError(`inspecting container ${name}`, err);
    }
    const config = this.ctx.config();
    const labels = info.Config?.Labels ?? {};
    const owner = labels[NODE_LABEL];
    const legacy = owner === undefined && config.docker.container_name_prefix === '' && labels.Service === 'Pterodactyl';
    if (owner !== config.uuid && !legacy) {
      throw new WingsError(
        'CONFLICT',
        `container ${name} belongs to another node (${NODE_LABEL}=${owner ?? '<none>'}), not touching it`,
      );
    }
    return info;
  }

  /** The server container, null when it does not exist. */
  inspect(): Promise<Dockerode.ContainerInspectInfo | null> {
    return this.inspectOwned(this.name);
  }

  /** Creates the server container from the current settings (pulling its image first when needed). */
  async create(signal?: AbortSignal): Promise<Dockerode.Container> {
    const settings = this.ctx.settings();
    const image = await ensureImage(this.docker, this.ctx, settings.container.image ?? '', signal);
    signal?.throwIfAborted();
    const config = this.ctx.config();
    const options = serverContainerOptions({
      config,
      settings,
      uuid: this.ctx.uuid,
      dataDirectory: this.ctx.dataDirectory,
      env: this.ctx.environmentVariables(),
      networkMode: await serverNetworkMode(this.docker, config, settings),
      logger: this.ctx.logger,
    });
    options.Image = image;
    try {
      return await this.docker.createContainer(options);
    } catch (err) {
      throw dockerError(`creating container ${options.name}`, err);
    }
  }

  /** Removes a container with its anonymous volumes; missing, or already being removed, is fine. */
  async remove(info: Dockerode.ContainerInspectInfo): Promise<void> {
    try {
      await this.docker.getContainer(info.Id).remove({ force: true, v: true });
    } catch (err) {
      if (!isNotFound(err) && statusCode(err) !== 409) throw dockerError(`removing container ${info.Name}`, err);
    }
  }

  /** Applies the current limits to the live server container; no container is fine. */
  async updateResources(): Promise<void> {
    const info = await this.inspect();
    if (!info) return;
    const resources = containerResources(this.ctx.config(), this.ctx.settings().build, { pidsLimit: true });
    delete resources.OomKillDisable; // not updatable on a live container
    try {
      await this.docker.getContainer(info.Id).update(resources);
    } catch (err) {
      if (isNotFound(err)) return;
      throw dockerError('updating the container resources', err);
    }
  }
}
