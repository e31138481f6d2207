#!/usr/bin/env bash
# `make test-docker`: the Docker tests (pytest -m docker: the compose stack from outside, the akto_container
# fixture) on a real Docker engine, from a machine that may have none yet:
#   1. installs docker.io, docker-compose and debootstrap with apt-get when missing (root);
#   2. starts dockerd in the background when none answers at $DOCKER_HOST (or the default socket), waits
#      for it with a deadline, and stops it again at the end;
#   3. picks the base image: python:3.11-slim when present or pullable, else the local Debian base image
#      (docker/build-base-image.sh, debootstrap) as no image registry is reachable;
#   4. runs the tests with AKTO_HARNESS_REQUIRE_DOCKER=1, so that they fail instead of skipping.
# Where Docker cannot be installed or started, it prints one line saying why and exits 0.
# Logs: reports/test-docker-*.log. Timings of each step are printed at the end (docs/containers.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
DOCKERD_TIMEOUT_S="${DOCKERD_TIMEOUT_S:-60}"
TESTS_TIMEOUT_S="${TESTS_TIMEOUT_S:-1200}"
mkdir -p reports
started_at=$SECONDS
timings=()

say() { echo "test-docker: $*"; }
cannot_run() {
  say "SKIPPED: Docker cannot run on this machine: $*"
  exit 0
}
step_done() { timings+=("$1 $(( SECONDS - step_started ))s"); }
daemon_answers() { timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# 1. packages ---------------------------------------------------------------------------------------------
step_started=$SECONDS
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || cannot_run "${missing[*]} not installed, and installing needs root"
  command -v apt-get >/dev/null || cannot_run "${missing[*]} not installed, and there is no apt-get"
  say "installing ${missing[*]} (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    > reports/test-docker-apt.log 2>&1 || cannot_run "apt-get install ${missing[*]} failed (reports/test-docker-apt.log)"
fi
step_done packages

# 2. daemon -----------------------------------------------------------------------------------------------
step_started=$SECONDS
dockerd_pid=""
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill -TERM "$dockerd_pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || return 0; sleep 0.2; done
  say "dockerd (pid $dockerd_pid) did not stop within 20 s; killing it"
  kill -KILL "$dockerd_pid" 2>/dev/null || true
}
if ! daemon_answers; then
  [ "$(id -u)" = 0 ] || cannot_run "no Docker daemon answers and starting dockerd needs root"
  dockerd_args=()
  case "${DOCKER_HOST:-}" in
    "") ;;
    unix://*) socket="${DOCKER_HOST#unix://}"; mkdir -p "$(dirname "$socket")"
              dockerd_args=(-H "$DOCKER_HOST" --pidfile "$(dirname "$socket")/dockerd.pid") ;;
    *) cannot_run "DOCKER_HOST=$DOCKER_HOST does not answer and is not a local socket to start dockerd on" ;;
  esac
  setsid dockerd "${dockerd_args[@]}" > reports/test-docker-dockerd.log 2>&1 < /dev/null &
  dockerd_pid=$!
  trap stop_dockerd EXIT
  deadline=$(( SECONDS + DOCKERD_TIMEOUT_S ))
  until daemon_answers; do
    kill -0 "$dockerd_pid" 2>/dev/null \
      || { dockerd_pid=""; cannot_run "dockerd exited: $(tail -n 1 reports/test-docker-dockerd.log)"; }
    (( SECONDS < deadline )) || cannot_run "dockerd did not answer within ${DOCKERD_TIMEOUT_S} s (reports/test-docker-dockerd.log)"
    sleep 0.2
  done
  say "started dockerd (pid $dockerd_pid); it is stopped again at the end"
fi
step_done dockerd

# 3. base image -------------------------------------------------------------------------------------------
step_started=$SECONDS
if [ -z "${AKTO_BASE_IMAGE:-}" ]; then
  if docker image inspect python:3.11-slim >/dev/null 2>&1; then
    AKTO_BASE_IMAGE=python:3.11-slim
  elif docker image inspect akto-harness-base:bookworm >/dev/null 2>&1; then
    AKTO_BASE_IMAGE=akto-harness-base:bookworm
  elif timeout 120 docker pull -q python:3.11-slim >/dev/null 2>&1; then
    AKTO_BASE_IMAGE=python:3.11-slim
  else
    say "no image registry reachable: building the local base image (debootstrap)"
    docker/build-base-image.sh > reports/test-docker-base-image.log 2>&1 \
      || { tail -n 20 reports/test-docker-base-image.log; say "FAILED: building the local base image"; exit 1; }
    AKTO_BASE_IMAGE=akto-harness-base:bookworm
  fi
fi
export AKTO_BASE_IMAGE
say "base image $AKTO_BASE_IMAGE"
step_done base_image

# 4. the tests --------------------------------------------------------------------------------------------
step_started=$SECONDS
status=0
AKTO_HARNESS_REQUIRE_DOCKER=1 timeout --kill-after=30 "$TESTS_TIMEOUT_S" \
  "$PYTHON" -m pytest -q -s -p no:cacheprovider -m docker tests/compose || status=$?
step_done tests
say "timings: ${timings[*]} total $(( SECONDS - started_at ))s"
exit "$status"
