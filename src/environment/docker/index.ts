export { DockerEnvironment } from './docker-environment.js';
export { connectDocker, dockerEndpoint, ensureDockerNetwork } from './client.js';
export {
  NODE_LABEL,
  containerName,
  containerResources,
  installerContainerName,
  memoryMultiplier,
  stopSignal,
} from './container-config.js';
export { PULL_FINISHED, PULL_STARTED, ensureImage, registryAuth } from './images.js';
