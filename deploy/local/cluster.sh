# shellcheck shell=bash
# Local Redis Cluster and RabbitMQ cluster, for the failover tests. Sourced, never run:
# deploy/local/deps sources it after lib.sh (log, die, port_open, wait_port, KINO_*_DIR).
#
# `deploy/local/deps --cluster` starts these beside the single-node stores (Redis :6379,
# RabbitMQ rabbit@localhost :5672, which stay untouched); services use them when
# REDIS_URL/AMQP_URL name the cluster (KINO_REDIS_CLUSTER_NODES, KINO_RABBIT_CLUSTER_URLS).
#
#   ensure_redis_cluster     6 redis-server processes, 127.0.0.1:7000..7005 (cluster bus
#                            17000..17005), formed into 3 masters + 3 replicas; exports
#                            KINO_REDIS_CLUSTER_NODES=redis://127.0.0.1:7000,...
#   ensure_rabbitmq_cluster  3 RabbitMQ nodes kino1..3@localhost, AMQP 127.0.0.1:5701..5703,
#                            Erlang distribution 25701..25703, clustered with kino1; exports
#                            KINO_RABBIT_CLUSTER_URLS=amqp://guest:guest@127.0.0.1:5701/%2f,...
#                            and KINO_RABBIT_CLUSTER_NODES=kino1@localhost,...
#   stop_clusters            stops all nine processes; their state stays on disk
#   kill_redis_node PORT     SIGKILL one Redis node (a failover test's crash)
#   start_redis_node PORT    (re)start one Redis node with its usual settings and data;
#                            when the other five run, returns once the cluster is whole
#                            (the node synced as a replica) so the next kill can fail over
#   wait_redis_cluster_formed SECONDS   the same wait, on its own
#   stop_rabbit_node N       stop RabbitMQ node kinoN gracefully (N = 1..3)
#   kill_rabbit_node N       SIGKILL node kinoN's Erlang VM (a crash: no goodbye)
#   start_rabbit_node N      start it again; it rejoins the cluster from its own state
#
# All are idempotent: a node that is already up is left alone, a formed cluster is not
# re-created, and state from a previous boot (stale pid files, nodes.conf, Mnesia) is
# reused: the nodes find each other again.
#
# Why these settings:
#   ports              KINO_REDIS_CLUSTER_PORT (7000) and KINO_RABBIT_CLUSTER_PORT (5701):
#                      the usual Redis Cluster tutorial range, and a RabbitMQ range just
#                      above the default 5672, both clear of the single-node stores. The
#                      RabbitMQ distribution port is the AMQP port + 20000, as RabbitMQ's own
#                      default (25672 for 5672), so it never meets the default node's.
#   node-timeout 2000  a master is declared failed and its replica promoted 3-5 s after it
#                      dies (measured here; the default, 15 s, makes failover tests slow).
#                      A replica restarted moments ago cannot be promoted until it has
#                      synced: start_redis_node waits for that.
#   appendonly yes     a node killed with SIGKILL and restarted still has its data (AOF,
#                      fsync every second); `--save ""` turns off RDB snapshots, which would
#                      only duplicate it.
#   RabbitMQ nodes     run as the invoking user from the distribution's scripts, with their
#                      own config (not /etc/rabbitmq, whose listener is :5672), no plugins,
#                      one scheduler each (+S 1:1) to keep CPU and RAM small, distribution on
#                      loopback only, and cluster_partition_handling = pause_minority (what
#                      a 3-node production cluster uses).
#   Erlang cookie      the nodes and every rabbitmqctl this file runs use HOME=
#                      $KINO_CLUSTER_DIR/rabbitmq, whose .erlang.cookie is a copy of
#                      the default node's (/var/lib/rabbitmq/.erlang.cookie; else the
#                      invoking user's ~/.erlang.cookie; else a new random one). So the
#                      distribution's own `rabbitmqctl -n kino1@localhost ...` (which on
#                      Debian runs as the rabbitmq user) reaches these nodes too.
#   node names         kinoN@localhost (kinoN@$(hostname -s) where "localhost" does not
#                      resolve; KINO_RABBIT_CLUSTER_HOST overrides).

KINO_REDIS_CLUSTER_PORT=${KINO_REDIS_CLUSTER_PORT:-7000}
KINO_RABBIT_CLUSTER_PORT=${KINO_RABBIT_CLUSTER_PORT:-5701}
# Short node names need a host part that resolves; "localhost" does nearly everywhere.
if [[ -z ${KINO_RABBIT_CLUSTER_HOST:-} ]]; then
  KINO_RABBIT_CLUSTER_HOST=localhost
  getent hosts localhost >/dev/null 2>&1 || KINO_RABBIT_CLUSTER_HOST=$(hostname -s)
fi
# The clusters are the machine's (fixed node names and ports), so their data, logs and pid
# files are too, in the cache dir rather than a checkout's .kino: every checkout on the
# machine (a clean clone's CI run beside a working tree) finds the same nodes and the same
# state, as with the SMTP sink's mail dir.
KINO_CLUSTER_DIR=${KINO_CLUSTER_DIR:-$KINO_CACHE_DIR/clusters}
KINO_REDIS_CLUSTER_DIR=$KINO_CLUSTER_DIR/redis
KINO_RABBIT_CLUSTER_DIR=$KINO_CLUSTER_DIR/rabbitmq
KINO_CLUSTER_LOG_DIR=$KINO_CLUSTER_DIR/logs
KINO_CLUSTER_RUN_DIR=$KINO_CLUSTER_DIR/run
mkdir -p "$KINO_REDIS_CLUSTER_DIR" "$KINO_RABBIT_CLUSTER_DIR" "$KINO_CLUSTER_LOG_DIR" "$KINO_CLUSTER_RUN_DIR"

# proc_running PID: the process exists and is not a zombie. (A daemon that exits is
# reparented to PID 1, which may take a second or more to reap it; kill -0 alone would
# still find it.)
proc_running() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z* ]]
}

# wait_pids_gone SECONDS PID...: wait until none of the PIDs runs; false if one still does.
wait_pids_gone() {
  local secs=$1 i pid alive
  shift
  for ((i = 0; i < secs * 10; i++)); do
    alive=0
    for pid in "$@"; do proc_running "$pid" && alive=1 && break; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------
# Redis Cluster
# ---------------------------------------------------------------------------------------

redis_cluster_ports() {
  local i
  for ((i = 0; i < 6; i++)); do echo $((KINO_REDIS_CLUSTER_PORT + i)); done
}

# rcli PORT ARGS...: redis-cli against one node, never hanging, \r stripped.
rcli() {
  local port=$1
  shift
  timeout 10 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null | tr -d '\r'
}

# redis_node_up PORT: true when a Redis answers there (LOADING counts: it is up, replaying
# its AOF).
redis_node_up() {
  local reply
  reply=$(rcli "$1" ping) || return 1
  [[ $reply == PONG || $reply == LOADING* ]]
}

# redis_node_pid PORT: the pid of the cluster node on PORT (empty when none): asked from
# the node itself, else from its pid file when that pid is still that redis-server (a pid
# file left from a previous boot may name an unrelated process by now).
redis_node_pid() {
  local port=$1 pid pidfile=$KINO_CLUSTER_RUN_DIR/redis-cluster-$1.pid
  pid=$(rcli "$port" info server | sed -n 's/^process_id://p') || true
  if [[ -z $pid && -f $pidfile ]]; then
    pid=$(cat "$pidfile")
    [[ $pid =~ ^[0-9]+$ && $(ps -o args= -p "$pid" 2>/dev/null) == *redis-server*:"$port"* ]] || pid=""
  fi
  echo "$pid"
}

# redis_launch PORT: start the node on PORT unless it is up; wait until it accepts.
redis_launch() {
  local port=$1
  local dir=$KINO_REDIS_CLUSTER_DIR/$port log=$KINO_CLUSTER_LOG_DIR/redis-cluster-$port.log
  redis_node_up "$port" && return 0
  port_open 127.0.0.1 "$port" && die "127.0.0.1:$port is taken by something that is not Redis (KINO_REDIS_CLUSTER_PORT)"
  command -v redis-server >/dev/null || die "redis-server not found (deploy/local/deps installs it)"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --dir "$dir" --logfile "$log" --pidfile "$KINO_CLUSTER_RUN_DIR/redis-cluster-$port.pid" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --appendonly yes --save "" \
    || die "redis-server on :$port did not start (log: $log)"
  wait_port "Redis cluster node" 127.0.0.1 "$port" 30 "$log"
}

# start_redis_node PORT: (re)start one node with its usual settings and data. When the
# other five are up, also wait until the cluster is whole again: a restarted master comes
# back as a replica of its promoted replica, and is only of use once it has synced.
start_redis_node() {
  local port=$1 other
  redis_launch "$port"
  for other in $(redis_cluster_ports); do
    redis_node_up "$other" || return 0
  done
  wait_redis_cluster_formed 30 \
    || die "the Redis cluster is not whole 30 s after :$port came back (logs: $KINO_CLUSTER_LOG_DIR/redis-cluster-*.log)"
}

# kill_redis_node PORT: SIGKILL the node (no AOF fsync, no goodbye to the cluster), and
# wait until it is gone.
kill_redis_node() {
  local port=$1 pid
  pid=$(redis_node_pid "$port")
  [[ -n $pid ]] || { log "Redis cluster node :$port is not running"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  wait_pids_gone 5 "$pid" || true
}

# stop_redis_node PORT...: graceful stop (SIGTERM: the AOF is fsynced), of all the given
# nodes at once; KILL for any still running after 10 s.
stop_redis_node() {
  local port pid pids=()
  for port in "$@"; do
    pid=$(redis_node_pid "$port")
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  if ((${#pids[@]})) && ! wait_pids_gone 10 "${pids[@]}"; then
    for pid in "${pids[@]}"; do
      proc_running "$pid" || continue
      log "Redis cluster node (pid $pid) still running 10 s after SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    done
  fi
  for port in "$@"; do rm -f "$KINO_CLUSTER_RUN_DIR/redis-cluster-$port.pid"; done
}

# redis_node_info_field PORT FIELD: one field of CLUSTER INFO on that node.
redis_node_info_field() {
  rcli "$1" cluster info | sed -n "s/^$2://p"
}

# redis_node_sees_healthy_cluster PORT: in that node's CLUSTER NODES view, 6 nodes, all
# connected and none failing: 3 masters serving slots and 3 replicas.
redis_node_sees_healthy_cluster() {
  rcli "$1" cluster nodes | awk '
    { n++ }
    $3 ~ /fail|handshake|noaddr/ || $8 != "connected" { bad++ }
    $3 ~ /master/ && NF >= 9 { masters++ }
    $3 ~ /slave/ { replicas++ }
    END { exit !(n == 6 && !bad && masters == 3 && replicas == 3) }'
}

# redis_replica_synced PORT: the node is a master, or a replica whose link to its master
# is up (it has finished its sync). A replica that has never synced since it was
# (re)started cannot be promoted: its master's failure would leave its slots unserved.
redis_replica_synced() {
  local info
  info=$(rcli "$1" info replication) || return 1
  [[ $info == *$'\n'role:master* || $info == *$'\n'master_link_status:up* ]]
}

# redis_cluster_formed: the cluster is whole: every node says cluster_state:ok, knows all
# 6 nodes and sees 3 masters with a replica each (right after `--cluster create`, state:ok
# comes before every node has heard which nodes are replicas), and every replica is in
# sync with its master.
redis_cluster_formed() {
  local port
  for port in $(redis_cluster_ports); do
    [[ $(redis_node_info_field "$port" cluster_state) == ok ]] || return 1
    [[ $(redis_node_info_field "$port" cluster_known_nodes) == 6 ]] || return 1
    redis_node_sees_healthy_cluster "$port" || return 1
    redis_replica_synced "$port" || return 1
  done
}

# wait_redis_cluster_formed SECONDS: wait until redis_cluster_formed (a failover test
# calls it before its next kill).
wait_redis_cluster_formed() {
  local i
  for ((i = 0; i < $1 * 2; i++)); do
    redis_cluster_formed && return 0
    sleep 0.5
  done
  return 1
}

ensure_redis_cluster() {
  local start=$SECONDS port fresh=1 addrs=() urls=()
  for port in $(redis_cluster_ports); do
    addrs+=("127.0.0.1:$port")
    urls+=("redis://127.0.0.1:$port")
  done
  export KINO_REDIS_CLUSTER_NODES
  KINO_REDIS_CLUSTER_NODES=$(IFS=,; echo "${urls[*]}")

  for port in $(redis_cluster_ports); do redis_launch "$port"; done
  redis_cluster_formed && return 0

  # Fresh nodes know only themselves and serve no slots: form the cluster. Otherwise they
  # are restarted members (after a reboot, or a node brought back): give gossip time to
  # bring them together before deciding the state is broken.
  for port in $(redis_cluster_ports); do
    [[ $(redis_node_info_field "$port" cluster_known_nodes) == 1 &&
      $(redis_node_info_field "$port" cluster_slots_assigned) == 0 ]] || fresh=0
  done
  if ((!fresh)) && ! wait_redis_cluster_formed 20; then
    # Half-formed or inconsistent (a node's directory deleted, a create interrupted): the
    # only safe repair for a test cluster is to start over. Its data is discarded.
    log "warning: the Redis cluster on :${KINO_REDIS_CLUSTER_PORT}.. is not consistent; resetting it (its data is lost)"
    for port in $(redis_cluster_ports); do
      rcli "$port" flushall >/dev/null || true # refused by replicas: RESET HARD empties them
      rcli "$port" cluster reset hard >/dev/null || true
    done
    fresh=1
  fi
  if ((fresh)); then
    log "creating the Redis cluster (3 masters, 3 replicas) on ${addrs[0]}..${addrs[5]#*:}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      >"$KINO_CLUSTER_LOG_DIR/redis-cluster-create.log" 2>&1 \
      || { tail -n 20 "$KINO_CLUSTER_LOG_DIR/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed (log: $KINO_CLUSTER_LOG_DIR/redis-cluster-create.log)"; }
  fi
  if ! wait_redis_cluster_formed 60; then
    rcli "$KINO_REDIS_CLUSTER_PORT" cluster nodes >&2 || true
    die "the Redis cluster did not reach cluster_state:ok on all 6 nodes within 60 s (logs: $KINO_CLUSTER_LOG_DIR/redis-cluster-*.log)"
  fi
  log "Redis cluster ready on ${addrs[0]}..${addrs[5]#*:} ($((SECONDS - start)) s)"
}

stop_redis_cluster() {
  # shellcheck disable=SC2046 # one port a word
  stop_redis_node $(redis_cluster_ports)
}

# ---------------------------------------------------------------------------------------
# RabbitMQ cluster
# ---------------------------------------------------------------------------------------

# The distribution's scripts themselves: Debian's /usr/sbin/rabbitmq* are wrappers that
# switch to the rabbitmq user and its HOME (hence its cookie) and run in /var/lib/rabbitmq.
rabbit_bin_dir() {
  if [[ -n ${KINO_RABBITMQ_BIN_DIR:-} ]]; then
    echo "$KINO_RABBITMQ_BIN_DIR"
  elif [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    echo /usr/lib/rabbitmq/bin
  elif command -v rabbitmq-server >/dev/null; then
    dirname "$(readlink -f "$(command -v rabbitmq-server)")"
  else
    die "rabbitmq-server not found (deploy/local/deps installs it)"
  fi
}

rabbit_node_name() { echo "kino$1@$KINO_RABBIT_CLUSTER_HOST"; }
rabbit_amqp_port() { echo $((KINO_RABBIT_CLUSTER_PORT + $1 - 1)); }
rabbit_dist_port() { echo $((KINO_RABBIT_CLUSTER_PORT + $1 - 1 + 20000)); }
rabbit_node_dir() { echo "$KINO_RABBIT_CLUSTER_DIR/kino$1"; }

# rabbit_prepare N: the node's directories, config and the shared cookie.
rabbit_prepare() {
  local n=$1 dir cookie=$KINO_RABBIT_CLUSTER_DIR/.erlang.cookie src value=""
  dir=$(rabbit_node_dir "$n")
  mkdir -p "$dir/mnesia" "$dir/log" "$dir/conf.d"
  if [[ ! -s $cookie ]]; then
    # The default node's cookie, so the distribution's rabbitmqctl reaches these nodes too;
    # else the invoking user's; else a new one.
    for src in /var/lib/rabbitmq/.erlang.cookie "$HOME/.erlang.cookie"; do
      [[ -r $src && -s $src ]] && { value=$(cat "$src"); break; }
    done
    [[ -n $value ]] || value=$(LC_ALL=C tr -dc '[:upper:]' </dev/urandom | head -c 20 || true)
    (umask 077 && printf '%s' "$value" >"$cookie")
    chmod 400 "$cookie"
  fi
  [[ -f $KINO_RABBIT_CLUSTER_DIR/enabled_plugins ]] || echo '[].' >"$KINO_RABBIT_CLUSTER_DIR/enabled_plugins"
  [[ -f $KINO_RABBIT_CLUSTER_DIR/rabbitmq-env.conf ]] \
    || echo "# Empty on purpose: the nodes get their settings from deploy/local/cluster.sh, not /etc/rabbitmq/rabbitmq-env.conf." \
      >"$KINO_RABBIT_CLUSTER_DIR/rabbitmq-env.conf"
  cat >"$dir/rabbitmq.conf" <<EOF
# Written by deploy/local/cluster.sh. Listener (127.0.0.1:$(rabbit_amqp_port "$n")) and
# distribution port ($(rabbit_dist_port "$n")) come from its environment variables.
cluster_name = kino-local
loopback_users.guest = true
cluster_partition_handling = pause_minority
EOF
}

# rabbit_env N CMD...: run CMD with node N's environment.
rabbit_env() {
  local n=$1 dir
  shift
  dir=$(rabbit_node_dir "$n")
  env HOME="$KINO_RABBIT_CLUSTER_DIR" \
    RABBITMQ_CONF_ENV_FILE="$KINO_RABBIT_CLUSTER_DIR/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="$(rabbit_node_name "$n")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$(rabbit_amqp_port "$n")" \
    RABBITMQ_DIST_PORT="$(rabbit_dist_port "$n")" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_CONFIG_FILES="$dir/conf.d" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$KINO_RABBIT_CLUSTER_DIR/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/kino$n.pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +SDcpu 1:1 -kernel inet_dist_use_interface {127,0,0,1}" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    "$@"
}

# rabbit_ctl N ARGS...: rabbitmqctl against node kinoN (with the shared cookie).
rabbit_ctl() {
  local n=$1
  shift
  rabbit_env "$n" "$(rabbit_bin_dir)/rabbitmqctl" -n "$(rabbit_node_name "$n")" "$@"
}

# rabbit_node_pid N: the OS pid of node kinoN's Erlang VM (empty when none): the beam.smp
# that boots RabbitMQ with RABBITMQ_NODENAME=kinoN@... in its environment. Found from the
# start of the VM (its pid file and distribution port come seconds later), never the
# default node's VM nor a rabbitmqctl's, and a stale pid file cannot mislead it.
rabbit_node_pid() {
  local node p
  node=$(rabbit_node_name "$1")
  for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == beam.smp ]] || continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- ' -s rabbit boot' || continue
    tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "RABBITMQ_NODENAME=$node" || continue
    echo "${p#/proc/}"
    return 0
  done
  return 0
}

# rabbit_node_alive N: the node's Erlang VM runs (booting, running, or app stopped).
rabbit_node_alive() {
  port_open 127.0.0.1 "$(rabbit_dist_port "$1")" || [[ -n $(rabbit_node_pid "$1") ]]
}

# rabbit_launch N: start node N detached unless its VM is already up (no waiting).
rabbit_launch() {
  local n=$1 dir
  rabbit_node_alive "$n" && return 0
  port_open 127.0.0.1 "$(rabbit_amqp_port "$n")" \
    && die "127.0.0.1:$(rabbit_amqp_port "$n") is taken by something else (KINO_RABBIT_CLUSTER_PORT)"
  dir=$(rabbit_node_dir "$n")
  rabbit_prepare "$n"
  rm -f "$dir/kino$n.pid" # left by a node that was killed, or by a previous boot
  rabbit_env "$n" "$(rabbit_bin_dir)/rabbitmq-server" -detached \
    >>"$KINO_CLUSTER_LOG_DIR/rabbitmq-cluster-kino$n.log" 2>&1 \
    || die "rabbitmq-server for $(rabbit_node_name "$n") did not start (logs: $KINO_CLUSTER_LOG_DIR/rabbitmq-cluster-kino$n.log, $dir/log/)"
}

# rabbit_await N: wait until node N has fully booted and accepts AMQP connections.
rabbit_await() {
  local n=$1 dir
  dir=$(rabbit_node_dir "$n")
  # The pid file appears a moment after -detached returns; `wait` then follows the boot.
  wait_file "$dir/kino$n.pid" 60 \
    || die "$(rabbit_node_name "$n") wrote no pid file within 60 s (logs: $KINO_CLUSTER_LOG_DIR/rabbitmq-cluster-kino$n.log, $dir/log/)"
  rabbit_ctl "$n" wait --timeout 300 "$dir/kino$n.pid" >/dev/null 2>&1 \
    || { tail -n 20 "$dir/log/$(rabbit_node_name "$n").log" >&2 2>/dev/null; die "$(rabbit_node_name "$n") did not boot (log: $dir/log/)"; }
  wait_port "RabbitMQ $(rabbit_node_name "$n")" 127.0.0.1 "$(rabbit_amqp_port "$n")" 60 "$dir/log/$(rabbit_node_name "$n").log"
}

# wait_file PATH SECONDS
wait_file() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    [[ -s $1 ]] && return 0
    sleep 0.2
  done
  return 1
}

# start_rabbit_node N: start node kinoN (N = 1..3) unless it is up, and wait for it; a
# node that was a cluster member rejoins by itself.
start_rabbit_node() {
  if rabbit_node_alive "$1" && port_open 127.0.0.1 "$(rabbit_amqp_port "$1")"; then return 0; fi
  rabbit_launch "$1"
  rabbit_await "$1"
}

# kill_rabbit_node N: SIGKILL node kinoN's Erlang VM and wait until it is gone (its
# clients' sockets are reset, its quorum queue members vanish without a word).
kill_rabbit_node() {
  local n=$1 pid i
  pid=$(rabbit_node_pid "$n")
  [[ -n $pid ]] || { log "$(rabbit_node_name "$n") is not running"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  wait_pids_gone 30 "$pid" || die "$(rabbit_node_name "$n") (pid $pid) survived SIGKILL"
  for ((i = 0; i < 150; i++)); do
    port_open 127.0.0.1 "$(rabbit_dist_port "$n")" || break
    sleep 0.2
  done
  rm -f "$(rabbit_node_dir "$n")/kino$n.pid"
}

# stop_rabbit_node N: stop node kinoN gracefully and wait until its process has exited.
stop_rabbit_node() {
  local n=$1 pid i
  pid=$(rabbit_node_pid "$n")
  if rabbit_node_alive "$n"; then
    rabbit_ctl "$n" stop >/dev/null 2>&1 || true
  fi
  if [[ -n $pid ]] && ! wait_pids_gone 30 "$pid"; then
    log "$(rabbit_node_name "$n") still running 30 s after stop; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Its pid unknown (stop failed before the VM was seen): until its port closes.
  for ((i = 0; i < 150; i++)); do
    port_open 127.0.0.1 "$(rabbit_dist_port "$n")" || break
    sleep 0.2
  done
  rm -f "$(rabbit_node_dir "$n")/kino$n.pid"
}

# json_node_list FIELD JSON: the node names in one list of `cluster_status --formatter
# json` output (running_nodes, disk_nodes), one a line.
json_node_list() {
  [[ $2 =~ \"$1\":\[([^]]*)\] ]] || return 0
  tr -d '" ' <<<"${BASH_REMATCH[1]}" | tr ',' '\n'
}

ensure_rabbitmq_cluster() {
  local start=$SECONDS urls=() nodes=() n
  for n in 1 2 3; do
    urls+=("amqp://guest:guest@127.0.0.1:$(rabbit_amqp_port "$n")/%2f")
    nodes+=("$(rabbit_node_name "$n")")
  done
  export KINO_RABBIT_CLUSTER_URLS KINO_RABBIT_CLUSTER_NODES
  KINO_RABBIT_CLUSTER_URLS=$(IFS=,; echo "${urls[*]}")
  KINO_RABBIT_CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")

  # Start every node that is down before waiting for any: after a reboot, each member waits
  # for the others before it finishes booting.
  local i running launched=()
  for n in 1 2 3; do
    if ! rabbit_node_alive "$n"; then
      ((${#launched[@]})) || log "starting the RabbitMQ cluster nodes (${nodes[*]}; takes a while)"
      launched+=("$n")
      rabbit_launch "$n"
    fi
  done
  for n in 1 2 3; do
    port_open 127.0.0.1 "$(rabbit_amqp_port "$n")" && continue
    if [[ " ${launched[*]} " == *" $n "* ]]; then
      rabbit_await "$n"
    # Up before this run but not listening: still booting, or its app was stopped (a join
    # cut short, a stop_app by hand).
    elif wait_port "RabbitMQ ${nodes[n - 1]} (distribution)" 127.0.0.1 "$(rabbit_dist_port "$n")" 60 &&
      [[ $(rabbit_ctl "$n" eval 'rabbit_boot_state:get().' 2>/dev/null) == stopped ]]; then
      log "${nodes[n - 1]} runs but its app does not; starting it"
      rabbit_ctl "$n" start_app >/dev/null 2>&1 || die "${nodes[n - 1]}: start_app failed (log: $(rabbit_node_dir "$n")/log/)"
    else
      rabbit_ctl "$n" await_startup --timeout 300 >/dev/null 2>&1 || die "${nodes[n - 1]} did not finish booting (log: $(rabbit_node_dir "$n")/log/)"
    fi
  done

  # Join kino2 and kino3 to kino1 unless kino1 already sees them running. A node kino1
  # lists as a member but not (yet) as running is a member that has just booted: it gets
  # 20 s to show up before it is joined afresh.
  local json members joinlog=$KINO_CLUSTER_LOG_DIR/rabbitmq-cluster-join.log
  for ((i = 0; i < 30; i++)); do
    json=$(rabbit_ctl 1 cluster_status --formatter json 2>/dev/null) || json=""
    running=$(json_node_list running_nodes "$json")
    members=$(json_node_list disk_nodes "$json")
    [[ $(grep -cxF -e "${nodes[0]}" -e "${nodes[1]}" -e "${nodes[2]}" <<<"$running") == 3 ]] && break
    for n in 2 3; do
      grep -qxF "${nodes[n - 1]}" <<<"$running" && continue
      grep -qxF "${nodes[n - 1]}" <<<"$members" && ((i != 10)) && continue
      log "joining ${nodes[n - 1]} to ${nodes[0]}"
      # The CLI reports the feature flag sync on stderr at length: into the log with it.
      {
        rabbit_ctl "$n" stop_app
        # A blank node first (it may have been a member of a cluster kino1 no longer knows).
        rabbit_ctl "$n" reset || rabbit_ctl "$n" force_reset
        rabbit_ctl "$n" join_cluster "${nodes[0]}" && rabbit_ctl "$n" start_app
      } >>"$joinlog" 2>&1 \
        || { tail -n 20 "$joinlog" >&2; die "${nodes[n - 1]} could not join ${nodes[0]} (logs: $joinlog, $(rabbit_node_dir "$n")/log/)"; }
    done
    sleep 2
  done
  ((i < 30)) || die "RabbitMQ cluster: ${nodes[0]} sees running nodes [$(echo "$running" | xargs)], expected ${nodes[*]}"
  for n in 1 2 3; do
    wait_port "RabbitMQ ${nodes[n - 1]}" 127.0.0.1 "$(rabbit_amqp_port "$n")" 60
  done
  ((${#launched[@]} || i > 0)) && log "RabbitMQ cluster ready: ${nodes[*]} on 127.0.0.1:$(rabbit_amqp_port 1)..$(rabbit_amqp_port 3) ($((SECONDS - start)) s)"
  return 0
}

stop_rabbitmq_cluster() {
  local n pids=()
  # In parallel, so the three stops take the time of one. Only these jobs are waited for:
  # the caller may have other background jobs (services started by deps).
  for n in 1 2 3; do
    stop_rabbit_node "$n" &
    pids+=($!)
  done
  wait "${pids[@]}"
}

# stop_clusters: stop the six Redis nodes and the three RabbitMQ nodes; data stays.
stop_clusters() {
  stop_redis_cluster
  stop_rabbitmq_cluster
}
