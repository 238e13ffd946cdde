#!/usr/bin/env bash
# Builds the local test image wings-ts/busybox:latest without any registry: a rootfs made of the
# static busybox binary, imported with `docker import`. Its /entrypoint.sh behaves like the
# Pterodactyl yolk images' entrypoint. Skips the build when the image exists and carries this
# script's content hash as a label. Prints the image id.
set -euo pipefail

IMAGE=${WINGS_TEST_IMAGE:-wings-ts/busybox:latest}
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HASH=$(sha256sum "$SELF" | cut -c1-16)

existing=$(docker image inspect --format '{{ index .Config.Labels "wings-ts.image-hash" }}' "$IMAGE" 2>/dev/null || true)
if [ "$existing" = "$HASH" ]; then
  docker image inspect --format '{{.Id}}' "$IMAGE"
  exit 0
fi

BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] && [ -x /bin/busybox ]; then BUSYBOX=/bin/busybox; fi
if [ -z "$BUSYBOX" ]; then
  echo "docker-test-image: ERROR: busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "docker-test-image: ERROR: $BUSYBOX is dynamically linked; install busybox-static" >&2
  exit 1
fi

ROOT=$(mktemp -d /tmp/wings-ts-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/etc" "$ROOT/tmp" \
  "$ROOT/home/container" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/mnt/server" "$ROOT/mnt/install"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 755 "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  # `busybox --list` names busybox itself: linking it would replace the binary by a self-link.
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$ROOT/bin/$applet"
done
ln -sf ../../bin/busybox "$ROOT/usr/bin/env"

cat >"$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
container:x:988:988:container:/home/container:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$ROOT/etc/group" <<'GROUP'
root:x:0:
container:x:988:
nogroup:x:65534:
GROUP
chown 988:988 "$ROOT/home/container"

# The yolk images' entrypoint: run the startup command in /home/container with every {{VAR}}
# turned into ${VAR}, evaluated by the shell. One addition: with arguments (an installer container's
# Cmd, e.g. `sh /mnt/install/install.sh`) it runs them, as the usual installer images would.
cat >"$ROOT/entrypoint.sh" <<'ENTRY'
#!/bin/sh
if [ "$#" -gt 0 ]; then exec "$@"; fi
cd /home/container || exit 1
MODIFIED_STARTUP=$(printf '%s' "${STARTUP:-}" | sed -e 's/{{/${/g' -e 's/}}/}/g')
echo ":/home/container$ ${MODIFIED_STARTUP}"
eval exec sh -c "\"\$MODIFIED_STARTUP\""
ENTRY
chmod 755 "$ROOT/entrypoint.sh"

docker import \
  --change 'ENTRYPOINT ["/entrypoint.sh"]' \
  --change 'WORKDIR /home/container' \
  --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
  --change "LABEL wings-ts.image-hash=$HASH" \
  --message "wings-ts test image (busybox-static)" \
  - "$IMAGE" < <(tar -C "$ROOT" --numeric-owner -cf - .) >/dev/null

docker image inspect --format '{{.Id}}' "$IMAGE"
