#!/usr/bin/env bash
# Start, stop and report the services the test suite needs.
#
#   bash scripts/services.sh up     [SERVICE...]   # start what is missing (idempotent)
#   bash scripts/services.sh down   [--all] [SERVICE...]   # stop only what `up` started
#   bash scripts/services.sh status [SERVICE...]
#
# SERVICE defaults to every known one (see SERVICES below). Each service is three
# functions, up_NAME, down_NAME and status_NAME; add one by writing those and
# appending NAME to SERVICES.
#
# What `up` starts is recorded in .services/started, one line per process:
#   SERVICE NAME PID OWNER
# and `down` stops exactly the processes recorded with the same OWNER (with --all:
# every recorded one), so an engine or server that was already running, or that a
# developer started by hand for several test runs, is left alone. OWNER is
# $DUCTWORK_SERVICES_OWNER, "manual" by default; scripts/test.sh sets its own.
# Logs go to .services/*.log. Every wait is bounded.
#
# Environment:
#   DUCTWORK_SERVICES_OWNER   who `up` records as the starter and `down` stops for
#   DUCTWORK_CA_BUNDLE        CA bundle copied into images (default: the host's)
#   DUCTWORK_REBUILD_IMAGE=1  rebuild the base image even if it is up to date
#   DUCTWORK_AZURITE_BLOB_PORT  Azurite's blob port on 127.0.0.1 (default 10000)
#   DUCTWORK_AZURITE_HOME     where npm installs Azurite (default ~/.cache/ductwork/azurite)
#   DUCTWORK_SPARK_PORT       the Spark Connect server's port on 127.0.0.1 (default 15002)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.services
STARTED=$STATE/started
SERVICES=(docker azurite dask spark browser)

APT_TIMEOUT=${APT_TIMEOUT:-600}                    # seconds for one apt-get call
DOCKERD_READY_TIMEOUT=${DOCKERD_READY_TIMEOUT:-60}  # seconds for `docker info` to answer
DOCKERD_STOP_TIMEOUT=${DOCKERD_STOP_TIMEOUT:-45}    # seconds for dockerd to exit after SIGTERM
DOCKER_PIDFILE=/var/run/docker.pid                 # dockerd's own default pid file
AZURITE_HOME=${DUCTWORK_AZURITE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ductwork/azurite}  # npm prefix
AZURITE_BIN=$AZURITE_HOME/node_modules/.bin/azurite-blob
AZURITE_PORT=${DUCTWORK_AZURITE_BLOB_PORT:-10000}
DASK_PORT=${DUCTWORK_DASK_PORT:-18786}
AZURITE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1;"
DASK_NWORKERS=2                                    # worker processes, one thread each
DASK_READY_TIMEOUT=${DASK_READY_TIMEOUT:-60}       # seconds for the cluster to answer
DASK_STOP_TIMEOUT=${DASK_STOP_TIMEOUT:-20}         # seconds for a dask process to exit
AZURITE_NPM_TIMEOUT=${AZURITE_NPM_TIMEOUT:-300}       # seconds for `npm install azurite@3`
AZURITE_READY_TIMEOUT=${AZURITE_READY_TIMEOUT:-30}   # seconds for the blob port to answer
AZURITE_STOP_TIMEOUT=${AZURITE_STOP_TIMEOUT:-15}     # seconds for azurite to exit after SIGTERM
SPARK_PORT=${DUCTWORK_SPARK_PORT:-15002}
SPARK_READY_TIMEOUT=${SPARK_READY_TIMEOUT:-150}   # seconds for the Connect server's port to open
SPARK_STOP_TIMEOUT=${SPARK_STOP_TIMEOUT:-20}      # seconds for its JVM to exit after SIGTERM
BASE_IMAGE=ductwork/python:3.11
OWNER=${DUCTWORK_SERVICES_OWNER:-manual}
OWNER=${OWNER//[[:space:]]/_}
ALL_OWNERS=0

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- bookkeeping -----------------------------------------------------------------

record_started() {  # SERVICE NAME PID
    mkdir -p "$STATE"
    printf '%s %s %s %s\n' "$1" "$2" "$3" "$OWNER" >>"$STARTED"
    log "recorded: $1 $2 pid $3 started by '$OWNER'"
}

started_pids() {  # SERVICE NAME [any] -> pids recorded for it (by OWNER, or by anyone)
    [ -f "$STARTED" ] || return 0
    local all=$ALL_OWNERS
    [ "${3:-}" = any ] && all=1
    awk -v s="$1" -v n="$2" -v o="$OWNER" -v all="$all" \
        '$1 == s && $2 == n && (all == 1 || ($4 == "" ? "manual" : $4) == o) { print $3 }' "$STARTED"
}

started_owner() {  # SERVICE NAME PID -> who recorded it
    awk -v s="$1" -v n="$2" -v p="$3" \
        '$1 == s && $2 == n && $3 == p { print ($4 == "" ? "manual" : $4); exit }' "$STARTED"
}

forget_started() {  # SERVICE NAME PID
    [ -f "$STARTED" ] || return 0
    local tmp
    tmp=$(mktemp "$STATE/started.XXXXXX")
    awk -v s="$1" -v n="$2" -v p="$3" '!($1 == s && $2 == n && $3 == p)' "$STARTED" >"$tmp"
    if [ -s "$tmp" ]; then mv "$tmp" "$STARTED"; else rm -f "$tmp" "$STARTED"; fi
}

left_alone() {  # SERVICE NAME WHAT: `down` found nothing of OWNER's to stop: say why
    local others
    others=$(started_pids "$1" "$2" any | paste -sd ' ' -)
    if [ -n "$others" ]; then
        log "$1: $2 (pid $others) was started by another owner ($(started_owner "$1" "$2" "${others%% *}")), not '$OWNER': leaving it (down --all stops it)"
    else
        log "$1: nothing started by this script; leaving $3 alone"
    fi
}

is_process() {  # PID NAME: true if PID is alive and its command name is NAME
    [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

still_starting() {  # PID: true while a process we just started has not exited
    # kill -0, not is_process: until setsid (and env, a launcher) have exec'd the
    # daemon, its command name differs — checking the name raced with exec.
    kill -0 "$1" 2>/dev/null
}

pids_named() {  # NAME -> pids of live processes with that exact command name
    local d
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
    done
    return 0
}

stop_pid() {  # PID NAME TIMEOUT: SIGTERM, wait up to TIMEOUT s, then SIGKILL
    local pid=$1 name=$2 limit=$3 t0
    t0=$(now)
    log "stopping $name (pid $pid): SIGTERM, waiting up to ${limit}s"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + limit))
    while is_process "$pid" "$name"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) still running after ${limit}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.2
    done
    log "$name (pid $pid) stopped in $(elapsed "$t0") s"
}

APT_UPDATED=0
apt_install() {  # PACKAGE...: apt-get update (once per invocation) and install
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
    [ "$(id -u)" = 0 ] || die "installing $* needs root (or install it by hand)"
    export DEBIAN_FRONTEND=noninteractive
    local t0
    if [ "$APT_UPDATED" = 0 ]; then
        t0=$(now)
        log "apt-get update (timeout ${APT_TIMEOUT}s)"
        timeout "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout=120 update -qq \
            || die "apt-get update failed or timed out"
        APT_UPDATED=1
        log "apt-get update took $(elapsed "$t0") s"
    fi
    t0=$(now)
    log "apt-get install -y --no-install-recommends $* (timeout ${APT_TIMEOUT}s)"
    timeout "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout=120 install -y -qq \
        --no-install-recommends "$@" >"$STATE/apt.log" 2>&1 \
        || { tail -n 30 "$STATE/apt.log" >&2; die "apt-get install $* failed or timed out (log: $STATE/apt.log)"; }
    log "apt-get install $* took $(elapsed "$t0") s"
}

venv_python() {
    [ -x "$ROOT/.venv/bin/python" ] || die "$ROOT/.venv is missing: create it first (bash scripts/test.sh does)"
    echo "$ROOT/.venv/bin/python"
}

# --- docker ----------------------------------------------------------------------

docker_ready() { timeout 10 docker info >/dev/null 2>&1; }

up_docker() {
    local t0 pid before
    if ! command -v dockerd >/dev/null; then
        t0=$(now)
        log "dockerd not found: installing Debian's docker.io"
        before=$(pids_named dockerd)
        apt_install docker.io
        command -v dockerd >/dev/null || die "docker.io installed but dockerd is still not on PATH"
        # A package init script may have started one; if so, it is ours to stop.
        for pid in $(pids_named dockerd); do
            if ! grep -qx "$pid" <<<"$before"; then
                log "the docker.io package started dockerd (pid $pid): recording it"
                record_started docker dockerd "$pid"
            fi
        done
        log "engine install took $(elapsed "$t0") s"
    fi
    command -v docker >/dev/null || die "dockerd is installed but the docker CLI is not on PATH"

    if docker_ready; then
        log "docker engine already answering: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    else
        local running
        running=$(pids_named dockerd | paste -sd ' ' -)
        t0=$(now)
        if [ -n "$running" ]; then
            # Never a second dockerd beside a running one: wait for it instead.
            log "dockerd already running (pid $running) but not answering yet: waiting for it"
        else
            [ "$(id -u)" = 0 ] || die "docker engine is not running and starting dockerd needs root"
            mkdir -p "$STATE"
            log "starting dockerd in the background (log: $STATE/dockerd.log)"
            # Its own session, so a Ctrl-C meant for the tests reaches it only through
            # `down`. With job control off (set +m) the child is no process-group
            # leader, so setsid execs in place and $! is dockerd's pid. 9>&-: the
            # daemon must not inherit (and so hold) our lock.
            set +m
            setsid dockerd --pidfile "$DOCKER_PIDFILE" >>"$STATE/dockerd.log" 2>&1 </dev/null 9>&- &
            pid=$!
            record_started docker dockerd "$pid"
        fi
        local deadline=$((SECONDS + DOCKERD_READY_TIMEOUT))
        until docker_ready; do
            if [ -z "$running" ] && ! still_starting "$pid"; then
                tail -n 30 "$STATE/dockerd.log" >&2 || true
                forget_started docker dockerd "$pid"
                die "dockerd exited during start-up (log: $STATE/dockerd.log)"
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                [ -n "$running" ] && die "dockerd (pid $running) is running but \`docker info\` still fails after ${DOCKERD_READY_TIMEOUT}s: check DOCKER_HOST and that daemon's log; not starting a second one"
                tail -n 30 "$STATE/dockerd.log" >&2 || true
                die "docker info did not answer within ${DOCKERD_READY_TIMEOUT}s (log: $STATE/dockerd.log; stop it with: bash scripts/services.sh down docker)"
            fi
            sleep 0.2
        done
        log "docker engine ready in $(elapsed "$t0") s: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    fi

    ensure_base_image
}

ensure_base_image() {
    local t0
    if [ ! -x /usr/bin/python3.11 ]; then
        t0=$(now)
        log "base image path: no Debian python3.11 on this host: installing python3.11 python3.11-venv"
        apt_install python3.11 python3.11-venv
        log "python3.11 install took $(elapsed "$t0") s"
    else
        log "base image path: copying the host's Debian python3.11 ($(dpkg-query -W -f '${Version}' python3.11 2>/dev/null || echo '?'))"
    fi
    # The builder prints each stage's timing and the image ID; it does nothing when
    # the image is present and matches the host venv's pinned dependencies.
    "$(venv_python)" "$ROOT/scripts/docker/build_base_image.py" --tag "$BASE_IMAGE" \
        --ca-bundle "${DUCTWORK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" \
        ${DUCTWORK_REBUILD_IMAGE:+--rebuild}
}

down_docker() {
    local pid any=0
    for pid in $(started_pids docker dockerd); do
        any=1
        if is_process "$pid" dockerd; then
            stop_pid "$pid" dockerd "$DOCKERD_STOP_TIMEOUT"
        else
            log "dockerd (pid $pid) recorded as ours is no longer running"
        fi
        # dockerd removes its pid file on a clean exit; not after SIGKILL.
        if [ -f "$DOCKER_PIDFILE" ] && ! is_process "$(cat "$DOCKER_PIDFILE" 2>/dev/null || echo 0)" dockerd; then
            rm -f "$DOCKER_PIDFILE"
            log "removed $DOCKER_PIDFILE"
        fi
        forget_started docker dockerd "$pid"
    done
    [ "$any" = 1 ] || left_alone docker dockerd "the engine"
}

status_docker() {
    local pid ours
    ours=$(started_pids docker dockerd any | paste -sd ' ' -)
    if ! command -v dockerd >/dev/null; then
        echo "docker: dockerd not installed"
        return 0
    fi
    local running
    running=$(pids_named dockerd | paste -sd ' ' -)
    if docker_ready; then
        echo "docker: engine up ($(docker version --format '{{.Server.Version}}' 2>/dev/null)), dockerd pid ${running:-?}${ours:+, started by services.sh (pid $ours, owner $(started_owner docker dockerd "${ours%% *}"))}"
    elif [ -n "$running" ]; then
        echo "docker: dockerd running (pid $running) but not answering"
    else
        echo "docker: engine down"
    fi
    for pid in $ours; do
        is_process "$pid" dockerd || echo "docker: recorded pid $pid is gone (stale entry in $STARTED)"
    done
    if docker_ready; then
        local id
        if id=$(docker image inspect --format '{{.Id}} {{.Size}}' "$BASE_IMAGE" 2>/dev/null); then
            echo "docker: image $BASE_IMAGE ${id%% *} ($(awk -v b="${id##* }" 'BEGIN { printf "%.0f MB", b / 1e6 }'))"
        else
            echo "docker: image $BASE_IMAGE absent"
        fi
    fi
}

# --- azurite ---------------------------------------------------------------------
# Microsoft's Azure Storage emulator (blob service only), for the az:// store tests.
# Installed with npm into a cache outside the clone; each start gets a fresh data dir
# under .services (deleted blobs never shrink Azurite's files), which `down` removes.

azurite_ready() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$AZURITE_PORT" 2>/dev/null; }

is_azurite() {  # PID: alive, and a node running azurite-blob (pids get reused)
    is_process "$1" node && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q azurite-blob
}

install_azurite() {
    local t0
    if [ -x "$AZURITE_BIN" ] && [ -f "$AZURITE_HOME/node_modules/azurite/package.json" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null; then
        log "npm not found: installing Debian's nodejs and npm (Azurite runs on Node.js)"
        apt_install nodejs npm
        command -v npm >/dev/null || die "nodejs and npm installed but npm is still not on PATH: start Azurite yourself on 127.0.0.1:$AZURITE_PORT"
    fi
    mkdir -p "$AZURITE_HOME" "$STATE"
    t0=$(now)
    log "installing azurite@3 with npm into $AZURITE_HOME (timeout ${AZURITE_NPM_TIMEOUT}s, log: $STATE/azurite-npm.log)"
    timeout "$AZURITE_NPM_TIMEOUT" npm install --prefix "$AZURITE_HOME" --no-audit --no-fund \
        --loglevel=error azurite@3 >"$STATE/azurite-npm.log" 2>&1 \
        || { tail -n 30 "$STATE/azurite-npm.log" >&2; die "npm install azurite@3 failed or timed out (log: $STATE/azurite-npm.log)"; }
    [ -x "$AZURITE_BIN" ] || die "npm installed azurite but $AZURITE_BIN is missing (log: $STATE/azurite-npm.log)"
    log "azurite $(azurite_version) installed in $(elapsed "$t0") s"
}

azurite_version() {
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$AZURITE_HOME/node_modules/azurite/package.json" 2>/dev/null | head -n 1
}

up_azurite() {
    local t0 pid data
    if azurite_ready; then
        log "azurite: something already answers on 127.0.0.1:$AZURITE_PORT: leaving it alone"
        return 0
    fi
    install_azurite
    mkdir -p "$STATE"
    data=$(mktemp -d "$STATE/azurite-data.XXXXXX")
    t0=$(now)
    log "starting azurite-blob on 127.0.0.1:$AZURITE_PORT in the background (data: $data, log: $STATE/azurite.log)"
    # Without --disableTelemetry it phones home and ignores SIGTERM; current
    # azure-storage-blob sends API versions newer than Azurite knows.
    set +m
    setsid "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$data" \
        --silent --skipApiVersionCheck --disableTelemetry >>"$STATE/azurite.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$data" >"$STATE/azurite-$pid.location"
    record_started azurite azurite-blob "$pid"
    local deadline=$((SECONDS + AZURITE_READY_TIMEOUT))
    until azurite_ready; do
        if ! still_starting "$pid"; then
            tail -n 30 "$STATE/azurite.log" >&2 || true
            forget_azurite "$pid"
            die "azurite-blob exited during start-up (log: $STATE/azurite.log; is port $AZURITE_PORT taken? set DUCTWORK_AZURITE_BLOB_PORT)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$STATE/azurite.log" >&2 || true
            die "azurite-blob did not listen on 127.0.0.1:$AZURITE_PORT within ${AZURITE_READY_TIMEOUT}s (log: $STATE/azurite.log; stop it with: bash scripts/services.sh down azurite)"
        fi
        sleep 0.2
    done
    log "azurite $(azurite_version) ready on 127.0.0.1:$AZURITE_PORT in $(elapsed "$t0") s (pid $pid)"
}

forget_azurite() {  # PID: drop its record and its data dir
    local loc=$STATE/azurite-$1.location data
    if [ -f "$loc" ]; then
        data=$(cat "$loc")
        # Only ever a dir this script made under .services.
        case "$data" in "$STATE"/azurite-data.*) rm -rf -- "$data" && log "removed $data" ;; esac
        rm -f "$loc"
    fi
    forget_started azurite azurite-blob "$1"
}

down_azurite() {
    local pid any=0
    for pid in $(started_pids azurite azurite-blob); do
        any=1
        if is_azurite "$pid"; then
            stop_pid "$pid" node "$AZURITE_STOP_TIMEOUT"
        else
            log "azurite-blob (pid $pid) recorded as ours is no longer running"
        fi
        forget_azurite "$pid"
    done
    [ "$any" = 1 ] || left_alone azurite azurite-blob "any Azurite"
}

status_azurite() {
    local pid ours
    ours=$(started_pids azurite azurite-blob any | paste -sd ' ' -)
    if [ -x "$AZURITE_BIN" ]; then
        echo "azurite: azurite $(azurite_version) installed in $AZURITE_HOME"
    else
        echo "azurite: not installed (in $AZURITE_HOME)"
    fi
    if azurite_ready; then
        echo "azurite: blob service up on 127.0.0.1:$AZURITE_PORT${ours:+, started by services.sh (pid $ours, owner $(started_owner azurite azurite-blob "${ours%% *}"))}"
    else
        echo "azurite: blob service down on 127.0.0.1:$AZURITE_PORT"
    fi
    for pid in $ours; do
        is_azurite "$pid" || echo "azurite: recorded pid $pid is gone (stale entry in $STARTED)"
    done
}

# --- dask ------------------------------------------------------------------------
# A real cluster on loopback, started with Dask's own CLI from the project's venv (so
# its workers import this checkout's ductwork): one scheduler and one `dask worker`
# parent running DASK_NWORKERS worker processes under nannies. Tests find it at
# tcp://127.0.0.1:$DASK_PORT (DUCTWORK_DASK_PORT).

dask_bin() {
    [ -x "$ROOT/.venv/bin/dask" ] || die "$ROOT/.venv/bin/dask is missing: pip install -e '.[dask]' (bash scripts/test.sh installs everything)"
    echo "$ROOT/.venv/bin/dask"
}

dask_answers() {  # true when the scheduler answers with at least DASK_NWORKERS workers
    timeout 20 "$(venv_python)" - "$DASK_PORT" "$DASK_NWORKERS" <<'PY' >/dev/null 2>&1
import sys
from distributed import Client
with Client(f"tcp://127.0.0.1:{sys.argv[1]}", timeout=3) as client:
    sys.exit(0 if len(client.scheduler_info()["workers"]) >= int(sys.argv[2]) else 1)
PY
}

dask_port_open() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$DASK_PORT" 2>/dev/null; }

start_dask() {  # NAME READY ARGS...: `dask NAME ARGS` in the background until READY succeeds
    local name=$1 ready=$2 pid
    shift 2
    # The workers' own credentials for az:// stores, as a real cluster's come from its
    # environment: ductwork never sends secrets through the scheduler. These are
    # Azurite's published development-account credentials, not a secret.
    (cd "$STATE"; AZURE_STORAGE_CONNECTION_STRING="$AZURITE_CONNECTION_STRING" \
        setsid "$(dask_bin)" "$name" "$@" >>"$STATE/dask-$name.log" 2>&1 </dev/null 9>&- &
     echo $! >"$STATE/dask-$name.pid")
    pid=$(cat "$STATE/dask-$name.pid")
    record_started dask "$name" "$pid"
    local deadline=$((SECONDS + DASK_READY_TIMEOUT))
    until "$ready"; do
        still_starting "$pid" || { tail -n 30 "$STATE/dask-$name.log" >&2; forget_started dask "$name" "$pid"; die "dask $name exited during start-up (log: $STATE/dask-$name.log)"; }
        [ "$SECONDS" -lt "$deadline" ] || die "dask $name not ready within ${DASK_READY_TIMEOUT}s (log: $STATE/dask-$name.log)"
        sleep 0.3
    done
}

up_dask() {
    local t0
    t0=$(now)
    if dask_port_open; then
        if dask_answers; then
            log "dask: a scheduler with workers already answers on 127.0.0.1:$DASK_PORT: leaving it"
            return 0
        fi
        [ -n "$(started_pids dask scheduler any)" ] \
            || die "port $DASK_PORT is taken by something that is not a Dask scheduler with $DASK_NWORKERS workers: free it or set DUCTWORK_DASK_PORT"
    fi
    dask_bin >/dev/null
    mkdir -p "$STATE"
    set +m
    if ! dask_port_open; then
        log "dask: starting a scheduler on 127.0.0.1:$DASK_PORT (log: $STATE/dask-scheduler.log)"
        start_dask scheduler dask_port_open --host 127.0.0.1 --port "$DASK_PORT" \
            --no-dashboard --dashboard-address 127.0.0.1:0
    fi
    log "dask: starting $DASK_NWORKERS workers (log: $STATE/dask-worker.log)"
    start_dask worker dask_answers "tcp://127.0.0.1:$DASK_PORT" --nworkers "$DASK_NWORKERS" \
        --nthreads 1 --no-dashboard --host 127.0.0.1
    log "dask: scheduler and $DASK_NWORKERS workers ready in $(elapsed "$t0") s at tcp://127.0.0.1:$DASK_PORT"
}

down_dask() {
    local name pid any=0
    for name in worker scheduler; do  # workers first, so none reconnects to a dying scheduler
        for pid in $(started_pids dask "$name"); do
            any=1
            if is_process "$pid" dask; then
                stop_pid "$pid" dask "$DASK_STOP_TIMEOUT"
            else
                log "dask $name (pid $pid) recorded as ours is no longer running"
            fi
            forget_started dask "$name" "$pid"
        done
    done
    [ "$any" = 1 ] || left_alone dask scheduler "any cluster"
}

status_dask() {
    local name pid
    if dask_port_open; then
        if dask_answers; then
            echo "dask: scheduler up on tcp://127.0.0.1:$DASK_PORT with >= $DASK_NWORKERS workers"
        else
            echo "dask: port $DASK_PORT open, but no scheduler with $DASK_NWORKERS workers answers"
        fi
    else
        echo "dask: no scheduler on 127.0.0.1:$DASK_PORT"
    fi
    for name in scheduler worker; do
        for pid in $(started_pids dask "$name" any); do
            if is_process "$pid" dask; then
                echo "dask: $name pid $pid started by services.sh (owner $(started_owner dask "$name" "$pid"))"
            else
                echo "dask: recorded $name pid $pid is gone (stale entry in $STARTED)"
            fi
        done
    done
}

# --- browser (the studio's tests: Debian's chromium driven by Selenium) -----------------
# Nothing runs: `up` installs chromium and chromium-driver when missing; `down` has nothing
# to stop (the tests start and stop their own headless browser).

up_browser() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        log "browser: chromium and chromedriver present"
        return 0
    fi
    apt_install chromium chromium-driver
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
        || die "chromium or chromedriver still missing after apt-get install"
}

down_browser() { :; }

status_browser() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1), chromedriver present"
    else
        echo "browser: chromium or chromedriver missing (bash scripts/services.sh up browser)"
    fi
}

# --- spark -----------------------------------------------------------------------
# A Spark Connect server on loopback, for the spark backend's tests: one JVM started with
# spark-submit from the venv's pyspark (which ships the server's jars: nothing is
# downloaded), local[2] inside. Java comes from Debian when missing. Tests find it at
# sc://127.0.0.1:$SPARK_PORT (DUCTWORK_SPARK_PORT).

spark_port_open() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$SPARK_PORT" 2>/dev/null; }

is_spark() {  # PID: alive, and a JVM running the Connect server (pids get reused)
    is_process "$1" java && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q SparkConnectServer
}

spark_home() {  # the installed pyspark package: it is a SPARK_HOME (bin/, jars/)
    "$(venv_python)" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null \
        || die "pyspark is not installed in $ROOT/.venv: pip install -e '.[spark]' (bash scripts/test.sh installs everything)"
}

up_spark() {
    local t0 pid home
    t0=$(now)
    if spark_port_open; then
        log "spark: something already answers on 127.0.0.1:$SPARK_PORT: leaving it alone"
        return 0
    fi
    if ! command -v java >/dev/null; then
        log "spark: no java on PATH: installing Debian's openjdk-17-jre-headless"
        apt_install openjdk-17-jre-headless
        command -v java >/dev/null || die "openjdk-17-jre-headless installed but java is still not on PATH"
    fi
    home=$(spark_home)
    [ -x "$home/bin/spark-submit" ] || die "$home/bin/spark-submit is missing: reinstall pyspark"
    mkdir -p "$STATE/spark"
    log "spark: starting a Spark Connect server on 127.0.0.1:$SPARK_PORT (log: $STATE/spark.log)"
    set +m
    # SPARK_LOCAL_IP: bind loopback, not the external address. The cwd keeps its warehouse
    # and metastore under .services. spark-submit execs the JVM in place: $! is its pid.
    (cd "$STATE/spark"; SPARK_HOME=$home SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$(venv_python)" \
        setsid "$home/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
        --master 'local[2]' --conf spark.connect.grpc.binding.address=127.0.0.1 \
        --conf spark.connect.grpc.binding.port="$SPARK_PORT" --conf spark.ui.enabled=false \
        --conf spark.log.level=WARN --conf spark.sql.shuffle.partitions=4 \
        >>"$STATE/spark.log" 2>&1 </dev/null 9>&- &
     echo $! >"$STATE/spark.pid")
    pid=$(cat "$STATE/spark.pid")
    record_started spark connect-server "$pid"
    local deadline=$((SECONDS + SPARK_READY_TIMEOUT))
    until spark_port_open; do
        if ! still_starting "$pid"; then
            tail -n 30 "$STATE/spark.log" >&2 || true
            forget_started spark connect-server "$pid"
            die "the Spark Connect server exited during start-up (log: $STATE/spark.log; is port $SPARK_PORT taken? set DUCTWORK_SPARK_PORT)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$STATE/spark.log" >&2 || true
            die "the Spark Connect server did not listen on 127.0.0.1:$SPARK_PORT within ${SPARK_READY_TIMEOUT}s (log: $STATE/spark.log; stop it with: bash scripts/services.sh down spark)"
        fi
        sleep 0.5
    done
    log "spark: Connect server ready on sc://127.0.0.1:$SPARK_PORT in $(elapsed "$t0") s (pid $pid)"
}

down_spark() {
    local pid any=0
    for pid in $(started_pids spark connect-server); do
        any=1
        if is_spark "$pid"; then
            stop_pid "$pid" java "$SPARK_STOP_TIMEOUT"
        else
            log "the Spark Connect server (pid $pid) recorded as ours is no longer running"
        fi
        forget_started spark connect-server "$pid"
    done
    [ "$any" = 1 ] || left_alone spark connect-server "any Spark server"
}

status_spark() {
    local pid ours
    ours=$(started_pids spark connect-server any | paste -sd ' ' -)
    if spark_port_open; then
        echo "spark: Connect server up on sc://127.0.0.1:$SPARK_PORT${ours:+, started by services.sh (pid $ours, owner $(started_owner spark connect-server "${ours%% *}"))}"
    else
        echo "spark: no Connect server on 127.0.0.1:$SPARK_PORT"
    fi
    for pid in $ours; do
        is_spark "$pid" || echo "spark: recorded pid $pid is gone (stale entry in $STARTED)"
    done
}

# --- main ------------------------------------------------------------------------

main() {
    local action=${1:-}
    [ $# -gt 0 ] && shift
    case "$action" in
        up|down|status) ;;
        *) echo "usage: $0 up|down [--all]|status [${SERVICES[*]}]" >&2; exit 2 ;;
    esac
    if [ "$action" = down ] && [ "${1:-}" = --all ]; then
        ALL_OWNERS=1
        shift
    fi
    local wanted=("$@") svc known
    [ ${#wanted[@]} -gt 0 ] || wanted=("${SERVICES[@]}")
    for svc in "${wanted[@]}"; do
        known=0
        for k in "${SERVICES[@]}"; do [ "$k" = "$svc" ] && known=1; done
        [ "$known" = 1 ] || die "unknown service '$svc' (known: ${SERVICES[*]})"
    done
    if [ "$action" = status ]; then
        for svc in "${wanted[@]}"; do "status_$svc"; done
        return 0
    fi
    mkdir -p "$STATE"
    # One up/down at a time.
    exec 9>"$STATE/lock"
    flock -w 600 9 || die "another services.sh has held $STATE/lock for 10 minutes (fuser -v $STATE/lock)"
    if [ "$action" = down ]; then
        # Stop in reverse order of start.
        local i
        for ((i = ${#wanted[@]} - 1; i >= 0; i--)); do "down_${wanted[$i]}"; done
    else
        for svc in "${wanted[@]}"; do "up_$svc"; done
    fi
}

main "$@"
