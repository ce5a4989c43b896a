#!/usr/bin/env bash
# Containerized registry for the tests: a podman API service plus a `localhost/registry:2` image
# built FROM scratch with Debian's distribution registry binary (no image can be pulled here).
#
#   bash .ci/container-registry.sh start   # configure podman, build the image, start the API service
#   bash .ci/container-registry.sh env     # print the export lines the tests need (eval them)
#   bash .ci/container-registry.sh stop    # stop the service and remove leftover test containers
#   bash .ci/container-registry.sh status  # exit 0 when the service answers
#
# Re-runnable: `start` rebuilds the image from cached layers and reuses a service that already
# answers. Needs root (podman as root; run as root on CI). Packages: podman runc docker-registry
# (installed by .ci/run).
set -euo pipefail

STATE_DIR=${STELLA_OCI_PODMAN_STATE:-/run/stella-oci-podman}
SOCK=${STELLA_OCI_PODMAN_SOCK:-/run/stella-oci-podman.sock}
IMAGE=${STELLA_OCI_REGISTRY_IMAGE_NAME:-localhost/registry:2}
REGISTRY_BIN=${STELLA_OCI_REGISTRY_BIN:-/usr/bin/docker-registry}
CONF="$STATE_DIR/containers.conf"
PIDFILE="$STATE_DIR/service.pid"
LOG="$STATE_DIR/service.log"
export CONTAINERS_CONF="$CONF"

log() { printf '[container-registry] %s\n' "$*" >&2; }

write_conf() {
  mkdir -p "$STATE_DIR"
  cat >"$CONF" <<'TOML'
# Written by .ci/container-registry.sh (podman 4.3 on Debian 12, as root).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
TOML
}

build_image() {
  local ctx
  ctx=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$ctx'" RETURN
  mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/etc/docker/registry" "$ctx/rootfs/var/lib/registry" "$ctx/rootfs/tmp"
  cp "$REGISTRY_BIN" "$ctx/rootfs/usr/bin/docker-registry"
  # The binary and every shared object ldd names (libc and the loader on Debian 12).
  local lib
  for lib in $(ldd "$REGISTRY_BIN" | grep -oE '/[^ ]+' | sort -u); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  cat >"$ctx/rootfs/etc/docker/registry/config.yml" <<'YAML'
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
  secret: stella-oci-tests
YAML
  cat >"$ctx/Containerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]
DOCKERFILE
  podman build --quiet --tag "$IMAGE" --file "$ctx/Containerfile" "$ctx" >/dev/null
  log "image $IMAGE built ($(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12))"
}

service_answers() {
  [[ -S "$SOCK" ]] && curl -fsS --max-time 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}

start_service() {
  if service_answers; then
    log "podman service already answers on $SOCK"
    return 0
  fi
  rm -f "$SOCK"
  # setsid: the service outlives this script and is not tied to the caller's terminal.
  setsid podman system service --time=0 "unix://$SOCK" </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"

  for _ in $(seq 1 100); do
    if service_answers; then
      log "podman service up on $SOCK (pid $(cat "$PIDFILE"))"
      return 0
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "podman service exited; its log:"; cat "$LOG" >&2; return 1
    fi
    sleep 0.1
  done
  log "podman service did not answer on $SOCK within 10 s; its log:"; cat "$LOG" >&2
  return 1
}

smoke_test() {
  # Run the image once through podman's own port mapping and GET /v2/: proves runtime,
  # networking and the image before pytest relies on them.
  local name="stella-oci-smoke-$$" port
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman run -d --rm --name "$name" --label io.stellaops.oci-tests=1 -p 127.0.0.1::5000 "$IMAGE" >/dev/null
  port=$(podman port "$name" 5000 | head -1 | sed 's/.*://')
  local ok=1
  for _ in $(seq 1 100); do
    if curl -fsS --max-time 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then ok=0; break; fi
    sleep 0.1
  done
  if [[ $ok -ne 0 ]]; then
    log "smoke test: GET /v2/ on 127.0.0.1:$port did not answer; container log:"
    podman logs "$name" >&2 || true
  else
    log "smoke test: $IMAGE answered GET /v2/ on 127.0.0.1:$port"
  fi
  podman rm -f "$name" >/dev/null 2>&1 || true
  return $ok
}

stop_service() {
  export CONTAINERS_CONF="$CONF"
  if command -v podman >/dev/null 2>&1 && [[ -f "$CONF" ]]; then
    local ids
    ids=$(podman ps -aq --filter label=io.stellaops.oci-tests=1 2>/dev/null || true)
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086
      podman rm -f $ids >/dev/null 2>&1 || true
      log "removed leftover test containers"
    fi
  fi
  if [[ -f "$PIDFILE" ]]; then
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      log "podman service (pid $pid) stopped"
    fi
    rm -f "$PIDFILE"
  fi
  rm -f "$SOCK"
}

print_env() {
  cat <<ENV
export CONTAINERS_CONF='$CONF'
export DOCKER_HOST='unix://$SOCK'
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_CONNECTION_MODE=docker_host
ENV
}

case "${1:-start}" in
  start)
    if [[ $(id -u) -ne 0 ]]; then log "needs root (podman as root)"; exit 1; fi
    for tool in podman runc curl "$REGISTRY_BIN"; do
      command -v "$tool" >/dev/null 2>&1 || { log "missing $tool (apt-get install podman runc docker-registry curl)"; exit 1; }
    done
    write_conf
    build_image
    smoke_test
    start_service
    ;;
  stop) stop_service ;;
  env) print_env ;;
  status) service_answers ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
