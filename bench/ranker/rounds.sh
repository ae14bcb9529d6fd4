# Sourced by bench/ranker/cluster and bench/ranker/ab: one measured round of the ranker
# under ranker-load, and the cleanup of every round's keys. Needs RUN, EVENTS, RATE,
# LATENCY_SECS (and deploy/local/lib.sh, cluster.sh sourced).
RANKER_PORT=18287
ranker_pid=
cleanup() {
  [[ -n $ranker_pid ]] && kill "$ranker_pid" 2>/dev/null
  wait 2>/dev/null || true
  redis-cli --scan --pattern "bench:rounds:$RUN:*" | xargs -r -n 1000 redis-cli del >/dev/null
  for port in $(redis_cluster_ports); do
    redis-cli -p "$port" --scan --pattern "bench:rounds:$RUN:*" 2>/dev/null |
      xargs -r -n 1 redis-cli -p "$port" del >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# round LABEL REDIS_URL N BIN_DIR -> "LABEL events_per_s p50 p99 max offered": one ranker
# (RANKER_ROLES=rank) of BIN_DIR and its ranker-load (MODE=kino, Zipf) on queues and keys
# of round N's own.
round() {
  local prefix="bench-rounds-$RUN-$3." redis_prefix="bench:rounds:$RUN:$3:" out
  BIND_ADDR=127.0.0.1:$RANKER_PORT RUST_LOG=warn REDIS_URL=$2 REDIS_PREFIX=$redis_prefix \
    QUEUE_PREFIX=$prefix QUEUE_EXPIRES_SECS=600 MONGODB_DATABASE="bench_rounds_$RUN" \
    RANKER_ROLES=rank "$4/ranker" >"$KINO_LOG_DIR/bench-ranker-rounds.log" 2>&1 &
  ranker_pid=$!
  wait_port bench 127.0.0.1 "$RANKER_PORT" 30
  for _ in $(seq 1 150); do curl -fs "127.0.0.1:$RANKER_PORT/readyz" >/dev/null && break; sleep 0.2; done
  sleep 1 # the consumer declares its queue once connected
  out=$(MODE=kino SKEW=zipf EVENTS=$EVENTS RATE=$RATE LATENCY_SECS=$LATENCY_SECS \
    QUEUE_PREFIX=$prefix REDIS_PREFIX=$redis_prefix REDIS_URL=$2 "$4/ranker-load")
  kill "$ranker_pid"; wait "$ranker_pid" 2>/dev/null || true
  ranker_pid=
  read -r _ eps p50 p99 max offered <<<"$out"
  echo "$1 $eps $p50 $p99 $max $offered"
}
