import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { isAbortOf, raceSignal } from '../abortable.js';
import { isIsolatedNetworkMode } from './container-config.js';
import { engineMessage, isNotFound } from './errors.js';

/** Where the engine is expected: DOCKER_HOST, else the default socket. */
export function dockerEndpoint(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/**
 * A client for the engine named by DOCKER_HOST (docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and
 * DOCKER_CERT_PATH itself) or the default socket; pinged once so an unreachable engine fails here,
 * with a message that says where it looked.
 */
export async function connectDocker(_config?: Config, options: { timeoutMs?: number } = {}): Promise<Dockerode> {
  const docker = new Dockerode();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    await raceSignal(docker.ping(), deadline);
  } catch (err) {
    const reason = isAbortOf(err, deadline) ? `no answer within ${timeoutMs} ms` : engineMessage(err);
    throw new Error(`cannot reach the Docker engine at ${dockerEndpoint()}: ${reason}`, { cause: err });
  }
  return docker;
}

/**
 * Boot step of docs/protocol.md W15.1: make sure the configured network exists (created as the Go
 * daemon creates it), then derive `network.driver`, `interface` and `ispn` from it. In network mode
 * `none` or `host` no network is inspected or created at all.
 */
export async function ensureDockerNetwork(docker: Dockerode, config: Config, logger: Logger): Promise<void> {
  const net = config.docker.network;
  if (isIsolatedNetworkMode(net.network_mode)) {
    logger.info({ network_mode: net.network_mode }, 'docker network mode needs no network; skipping network setup');
    if (net.network_mode === 'host') {
      net.interface = '127.0.0.1';
      net.ispn = false;
    }
    return;
  }

  let info: Dockerode.NetworkInspectInfo | null = null;
  try {
    info = (await docker.getNetwork(net.name).inspect());
  } catch (err) {
    if (!isNotFound(err)) throw new Error(`inspecting docker network ${net.name}: ${engineMessage(err)}`, { cause: err });
  }

  if (!info) {
    logger.info({ name: net.name }, 'creating missing docker network');
    try {
      await docker.createNetwork({
        Name: net.name,
        Driver: net.driver,
        EnableIPv6: true,
        Internal: net.is_internal,
        IPAM: {
          Config: [
            { Subnet: net.interfaces.v4.subnet, Gateway: net.interfaces.v4.gateway },
            { Subnet: net.interfaces.v6.subnet, Gateway: net.interfaces.v6.gateway },
          ],
        },
        Options: {
          encryption: 'false',
          'com.docker.network.bridge.default_bridge': 'false',
          'com.docker.network.bridge.enable_icc': String(net.enable_icc),
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': 'pterodactyl0',
          'com.docker.network.driver.mtu': String(net.network_mtu),
        },
      });
    } catch (err) {
      throw new Error(`creating docker network ${net.name}: ${engineMessage(err)}`, { cause: err });
    }
    if (!['host', 'overlay', 'weavemesh'].includes(net.driver)) net.interface = net.interfaces.v4.gateway;
    try {
      info = (await docker.getNetwork(net.name).inspect());
    } catch {
      info = null;
    }
  }

  net.driver = info?.Driver ?? net.driver;
  switch (net.driver) {
    case 'host':
      net.interface = '127.0.0.1';
      net.ispn = false;
      break;
    case 'overlay':
    case 'weavemesh':
      net.interface = '';
      net.ispn = true;
      break;
    default:
      net.ispn = false;
  }
}
