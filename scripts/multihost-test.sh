#!/usr/bin/env bash
# Two "hosts" on one machine: mpirun -np 2 across two Linux network namespaces joined by a veth
# pair. Each process has its own hostname (UTS namespace, `a` and `b`) and its own /etc/hosts
# (mount namespace) naming the other; mpirun reaches host b through an rsh agent that runs
# `ip netns exec`. With `--mca btl tcp,self` and `--bind-to none` the ranks can only talk over
# TCP, as on two machines, and MPI sees two nodes (no shared memory).
#
# Checks: the ring, mpi and auto reduction strategies give the greedy ids of one process, and
# oneshot and twoshot (shared memory only) are refused with a clear error on a non-zero exit.
#
#   scripts/multihost-test.sh [BINARY] [MODEL_DIR] [TOKENS] [NEW_TOKENS]
#
# Defaults: .build/debug/nemotron-run, the dense test fixture and its reference prompt. Exit
# status: 0 passed, 1 failed, 77 skipped (the reason is printed: not root, no network
# namespaces, missing tools). Only addresses of the veth pair it creates (10.254.N.1-2/30) are
# used, every command is bounded in time, and the namespaces are removed on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
BINARY=$(realpath "${1:-.build/debug/nemotron-run}")
MODEL=$(realpath "${2:-Tests/NemotronTests/Fixtures/dense}")
TOKENS=${3:-1,17,42,300,5,99,250}
NEW_TOKENS=${4:-8}
LIMIT=120

skip() { echo "multihost: SKIPPED: $*"; exit 77; }
fail() { echo "multihost: FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces (CI runs as root)"
for tool in ip unshare mount mpirun timeout; do
    command -v "$tool" >/dev/null || skip "'$tool' is not installed"
done
[ -x "$BINARY" ] || fail "no binary at $BINARY (build first)"

id=$$
A="nr-a-$id"
B="nr-b-$id"
net="10.254.$((id % 250))"
work=$(mktemp -d /tmp/nemotron-multihost.XXXXXX)
chmod 755 "$work"
cleanup() {
    ip netns del "$A" 2>/dev/null
    ip netns del "$B" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

if ! reason=$(ip netns add "$A" 2>&1); then skip "network namespaces are not allowed here: $reason"; fi
ip netns add "$B" || skip "cannot create a second network namespace"
if ! reason=$(ip link add "nrva$id" type veth peer name "nrvb$id" 2>&1); then
    skip "cannot create a veth pair: $reason"
fi
ip link set "nrva$id" netns "$A" && ip link set "nrvb$id" netns "$B" || fail "cannot move the veth ends"
ip -n "$A" addr add "$net.1/30" dev "nrva$id" && ip -n "$B" addr add "$net.2/30" dev "nrvb$id" || fail "addresses"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "nrva$id" up && ip -n "$B" link set "nrvb$id" up || fail "cannot bring the veth pair up"
unshare --uts --mount true 2>/dev/null || skip "UTS and mount namespaces are not allowed here (unshare --uts --mount)"

printf '127.0.0.1 localhost\n%s.1 a\n%s.2 b\n' "$net" "$net" > "$work/hosts"
# Runs a command "on" host $1: in its network namespace, with its hostname and /etc/hosts.
cat > "$work/on" <<EOF
#!/bin/sh
host=\$1; shift
exec ip netns exec "nr-\$host-$id" unshare --uts --mount /bin/sh -c \
    "mount --bind $work/hosts /etc/hosts && hostname \$host && exec /bin/sh -c '\$*'"
EOF
# The rsh agent mpirun starts remote daemons with: `agent HOST COMMAND...`, as ssh would.
cat > "$work/agent" <<EOF
#!/bin/sh
host=\$1; shift
exec "$work/on" "\$host" "\$@"
EOF
chmod +x "$work/on" "$work/agent"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --allow-run-as-root --mca plm_rsh_agent $work/agent --mca btl tcp,self \
--mca btl_tcp_if_include $net.0/30 --mca oob_tcp_if_include $net.0/30 --bind-to none -np 2 --host a,b"

hosts=$(timeout "$LIMIT" "$work/on" a "$MPIRUN hostname" 2>"$work/err") || fail "mpirun hostname: $(cat "$work/err")"
[ "$(echo "$hosts" | sort | tr '\n' ' ')" = "a b " ] || fail "ranks should run on hosts a and b, got: $hosts"
echo "multihost: ranks run on hosts: $(echo "$hosts" | sort | tr '\n' ' ')"

generate="$BINARY generate --model $MODEL --tokens $TOKENS --max-new-tokens $NEW_TOKENS --temperature 0 --json \
--ignore-eos --threads 1"
ids() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["generated_ids"])'; }
expected=$(timeout "$LIMIT" $generate 2>/dev/null | ids) || fail "the single-process run failed"
echo "multihost: one process:        $expected"

status=0
for strategy in ring mpi auto; do
    out=$(timeout "$LIMIT" "$work/on" a "$MPIRUN $generate --allreduce-strategy $strategy" 2>"$work/err")
    code=$?
    got=$(echo "$out" | ids 2>/dev/null)
    printf 'multihost: %-6s 2 hosts:      %s (exit %s)\n' "$strategy" "$got" "$code"
    if [ "$code" != 0 ] || [ "$got" != "$expected" ]; then
        echo "multihost: $strategy differs or failed:"; cat "$work/err"; status=1
    fi
done
for strategy in oneshot twoshot; do
    out=$(timeout "$LIMIT" "$work/on" a "$MPIRUN $generate --allreduce-strategy $strategy" 2>"$work/err")
    code=$?
    message=$(grep '^error: ' "$work/err" | head -1)
    printf 'multihost: %-7s refused:      %s (exit %s)\n' "$strategy" "$message" "$code"
    if [ "$code" = 0 ] || [ -n "$out" ] || ! grep -q "spans several nodes and $strategy needs shared memory" "$work/err"
    then
        echo "multihost: $strategy was not refused clearly:"; cat "$work/err"; status=1
    fi
done
[ "$status" = 0 ] && echo "multihost: PASSED"
exit "$status"
