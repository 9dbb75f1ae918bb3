#!/usr/bin/env bash
# Service allocation under concurrency: 50 Services created at once on one server get distinct
# ClusterIPs and NodePorts (reservations in memory), the same across the three servers of a
# cluster (allocation keys with "must not exist" preconditions decided at apply), a value in use
# is refused with upstream's 422, and a released value can be requested again, also after a
# restart or a change to type ExternalName; a full range answers upstream's 500. Checks are in
# services_checks.py (stdlib client: kclient.py); this script runs the servers and kubectl.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# add_counts FILE NAME: prints a python group's check lines and adds up its summary line.
add_counts() {
  local out=$1 name=$2 line
  grep -a -v -E '^[0-9]+ passed, [0-9]+ failed$' "$out"
  line=$(tail -1 "$out")
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASS=$((PASS + BASH_REMATCH[1])); FAIL=$((FAIL + BASH_REMATCH[2]))
  else
    fail "services_checks.py $name ended without a summary: $(tail -3 "$out")"
  fi
}
# py GROUP NAMESPACE SERVER...: runs one group of services_checks.py.
py() {
  local g=$1; shift
  python3 "$HERE/services_checks.py" "$g" "$@" >"$E2E_TMP/py-$g.out" 2>&1
  add_counts "$E2E_TMP/py-$g.out" "$g"
}

# ---- one server ----
dir=$E2E_TMP/one; p=$(port)
start one "$dir" "$p" --init
pid=$LAST_PID
kc=$dir/kubeconfig
ready "$kc" || { fail "server did not start"; done_testing; exit 1; }
k() { kubectl --kubeconfig "$kc" "$@"; }
one=127.0.0.1:$p:$dir/pki

for ns in race requested same ext; do k create ns "$ns" >/dev/null; done
py race race "$one"
py requested requested "$one"
py same-ip same "$one"
py external-name ext "$one"

# kubectl's view of a requested ClusterIP in use, and of one released.
ip=$(k -n requested get svc after-move -o jsonpath='{.spec.clusterIP}')
out=$(k -n requested create service clusterip dup --tcp=80:80 --clusterip="$ip" 2>&1)
expect_match "kubectl: a ClusterIP in use is refused" \
  "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: \[\"$ip\"\]: failed to allocate IP $ip: provided IP is already allocated" "$out"
k -n requested delete svc after-move >/dev/null
expect "kubectl: the released ClusterIP can be requested again" \
  k -n requested create service clusterip dup --tcp=80:80 --clusterip="$ip"

# Background kubectl creates too (each its own process and connection).
k create ns bg >/dev/null
bg=()
for i in $(seq 1 20); do k -n bg create service nodeport "bg-$i" --tcp=80:80 >/dev/null 2>&1 & bg+=($!); done
wait "${bg[@]}"
expect_eq "20 background kubectl creates: 20 services" 20 "$(k -n bg get svc -o name | wc -l)"
expect_eq "...with 20 distinct ClusterIPs" 20 "$(k -n bg get svc -o jsonpath='{range .items[*]}{.spec.clusterIP}{"\n"}{end}' | sort -u | wc -l)"
expect_eq "...and 20 distinct NodePorts" 20 "$(k -n bg get svc -o jsonpath='{range .items[*]}{.spec.ports[0].nodePort}{"\n"}{end}' | sort -u | wc -l)"

# A namespace's deletion releases its Services' values.
np=$(k -n bg get svc bg-1 -o jsonpath='{.spec.ports[0].nodePort}')
bgip=$(k -n bg get svc bg-1 -o jsonpath='{.spec.clusterIP}')
k delete ns bg --wait=false >/dev/null
gone() { ! k get ns bg >/dev/null 2>&1; }
for ((i = 0; i < 100; i++)); do gone && break; sleep 0.1; done
# The ClusterIP first: the NodePort Service gets the lowest free address, which may be bgip.
expect "a deleted namespace's ClusterIP can be requested again" \
  k -n requested create service clusterip reuse-ns-ip --tcp=80:80 --clusterip="$bgip"
expect "...and its NodePort" k -n requested create service nodeport reuse-ns --tcp=80:80 --node-port="$np"

# A restart keeps what is held.
kill "$pid"; exits_within "$pid" 10 || fail "server did not stop"
start one "$dir" "$p"; pid=$LAST_PID
ready "$kc" || fail "server did not restart"
expect_match "after a restart, a ClusterIP in use is still refused" 'provided IP is already allocated' \
  "$(k -n requested create service clusterip dup2 --tcp=80:80 --clusterip="$ip" 2>&1)"
N=20 PREFIX=again py race race "$one"
py distinct race "$one"
# Last on this server: every NodePort taken.
k create ns full >/dev/null
py full full "$one"

# ---- three servers: creates spread over them race for the same values ----
declare -A DIR PORT
up() {
  local n=$1; shift
  DIR[$n]=$E2E_TMP/$n; PORT[$n]=$(port)
  start "$n" "${DIR[$n]}" "${PORT[$n]}" "$@"
  ready "${DIR[$n]}/kubeconfig" 30
}
join() {
  local n=$1 token
  token=$("$KCP" token --data-dir "${DIR[n1]}") || return 1
  DIR[$n]=$E2E_TMP/$n; PORT[$n]=$(port)
  start "$n" "${DIR[$n]}" "${PORT[$n]}" --join "https://127.0.0.1:${PORT[n1]}" --token "$token"
  ready "${DIR[$n]}/kubeconfig" 60
}
if up n1 --init && join n2 && join n3; then
  servers=()
  for n in n1 n2 n3; do servers+=("127.0.0.1:${PORT[$n]}:${DIR[$n]}/pki"); done
  kubectl --kubeconfig "${DIR[n1]}/kubeconfig" create ns race >/dev/null
  kubectl --kubeconfig "${DIR[n1]}/kubeconfig" create ns same >/dev/null
  N=60 py race race "${servers[@]}"
  py same-ip same "${servers[@]}"
  py distinct race "${servers[@]:1:1}"
else
  fail "three-server cluster did not form: $(tail -3 "$E2E_TMP/n3.log" 2>/dev/null)"
fi

done_testing
