import type Dockerode from 'dockerode';
import type { Config } from '../../config/schema.js';
import type { ServerSettings } from '../server-configuration.js';
import { isIsolatedNetworkMode, outgoingIpNetworkName } from './container-config.js';
import { dockerError, isNotFound, statusCode } from './errors.js';

/**
 * The network mode of a server's containers (server and installer alike). With
 * `allocations.force_outgoing_ip` the server gets a bridge network of its own per default IP, so
 * its outgoing traffic leaves from that address; created on first use (as the Go daemon does) and
 * shared by every server with the same IP. Never in network mode none or host, which use no network.
 */
export async function serverNetworkMode(docker: Dockerode, config: Config, settings: ServerSettings): Promise<string> {
  const mode = config.docker.network.network_mode;
  const allocations = settings.allocations;
  if (isIsolatedNetworkMode(mode) || !allocations.force_outgoing_ip || allocations.default.ip === '') return mode;
  const ip = allocations.default.ip;
  const name = outgoingIpNetworkName(ip);
  try {
    await docker.getNetwork(name).inspect();
  } catch (err) {
    if (!isNotFound(err)) throw dockerError(`inspecting network ${name}`, err);
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        EnableIPv6: false,
        Internal: false,
        Attachable: false,
        Ingress: false,
        Options: {
          encryption: 'false',
          'com.docker.network.bridge.default_bridge': 'false',
          'com.docker.network.host_ipv4': ip,
        },
      });
    } catch (createErr) {
      // 409: another server with the same IP created it meanwhile.
      if (statusCode(createErr) !== 409) throw dockerError(`creating network ${name}`, createErr);
    }
  }
  return name;
}
