#!/usr/bin/env bash
# History end to end, beyond 40-history: plain git reads, a crash while history trails the
# writes (then no gap and no duplicate), identical commit ids when the same entries are replayed
# into fresh repositories, the contents of a conflict branch, the read-only API, the size report,
# an offline squash (then a restart that keeps recording), and history switched off.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

dir=$E2E_TMP/h; p=$(port)
start h "$dir" "$p" --init
pid=$LAST_PID
kc=$dir/kubeconfig
ready "$kc" || { fail "server did not start"; done_testing; exit 1; }
k() { kubectl --kubeconfig "$kc" "$@"; }
repo=$("$KCP" history path --data-dir "$dir")
g() { git --git-dir "$repo" "$@"; }
# waits until the repository's newest Raft-Index is at least $1
caught_up() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(g log -1 --format='%(trailers:key=Raft-Index,valueonly)' refs/heads/main 2>/dev/null | head -1) -ge $1 ]] && return 0
    sleep 0.1
  done
  return 1
}
rv_of() { k get cm "$1" -o jsonpath='{.metadata.resourceVersion}'; }

expect_eq "the repository is DIR/history.git" "$(cd "$dir" && pwd)/history.git" "$repo"
expect_eq "HEAD is refs/heads/main" "refs/heads/main" "$(g symbolic-ref HEAD)"

# Plain git sees one YAML file per object.
k create cm plain --from-literal=colour=blue >/dev/null
caught_up "$(rv_of plain)"
show=$(g show HEAD:core/configmaps/default/plain.yaml)
expect_match "git show of the object's file" 'colour: blue' "$show"
expect_eq "no resourceVersion churn in files" "" "$(grep resourceVersion <<<"$show")"
expect_match "cluster-scoped objects under _cluster" 'core/namespaces/_cluster/default.yaml' "$(g ls-tree -r --name-only HEAD)"
msg=$(g log -1 --format=%B HEAD)
expect_match "trailers name term, index and resourceVersion" "Raft-Term: [0-9]+.*Raft-Index: $(rv_of plain).*Resource-Version: $(rv_of plain)" "$(tr '\n' ' ' <<<"$msg")"
expect_eq "author is the API user" "kcp-admin <kcp-admin@kcp>" "$(g log -1 --format='%an <%ae>' HEAD)"

# Conflict branch: parent is the commit the writer read, tree holds the rejected version.
k create cm cf --from-literal=v=1 >/dev/null
read_rv=$(rv_of cf)
k get cm cf -o json >"$E2E_TMP/stale.json"
k label cm cf won=yes >/dev/null
k replace -f "$E2E_TMP/stale.json" >/dev/null 2>&1
k create cm after-conflict >/dev/null
caught_up "$(rv_of after-conflict)"
ref=$(g for-each-ref --format='%(refname)' 'refs/conflicts/configmaps/default/cf/')
expect_match "conflict ref named by object and index" '^refs/conflicts/configmaps/default/cf/[0-9]+$' "$ref"
parent_idx=$(g log -1 --format='%(trailers:key=Raft-Index,valueonly)' "$ref^" | head -1)
expect_eq "conflict parent is the revision the writer read" "$read_rv" "$parent_idx"
rejected=$(g show "$ref:core/configmaps/default/cf.yaml")
expect_eq "the rejected version lacks the winner's label" "" "$(grep won <<<"$rejected")"
expect_match "the main line has the winner" 'won: "?yes' "$(g show "HEAD:core/configmaps/default/cf.yaml")"
expect_match "kcp history conflicts lists it" 'configmaps/default/cf by kcp-admin' "$("$KCP" history conflicts --data-dir "$dir")"

# The read-only API, outside discovery: kubectl get --raw, and curl with the admin certificate.
api=/apis/history.kcp.io/v1
log=$(k get --raw "$api/log?object=configmaps/default/plain" 2>&1)
expect_match "API log of an object" '"verb":"create","object":"configmaps/default/plain","user":"kcp-admin","time":"[0-9TZ:-]+","raftIndex":[0-9]+' "$log"
created=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][-1]["commit"])' <<<"$log" 2>&1)
expect_match "API object as of a commit, as YAML" 'colour: blue' "$(k get --raw "$api/object?object=configmaps/default/plain&at=$created" 2>&1)"
expect_match "API diff of an object's first and last versions" '@@.*\+ +won: "?yes' "$(k get --raw "$api/diff?object=configmaps/default/cf" 2>&1)"
expect_match "API conflicts" '"object":"configmaps/default/cf","user":"kcp-admin".*"readResourceVersion":'"$read_rv" "$(k get --raw "$api/conflicts" 2>&1)"
expect_match "API unknown commit is a NotFound Status" 'NotFound.*unknown commit nope' "$(k get --raw "$api/object?object=configmaps/default/plain&at=nope" 2>&1)"
expect_match "API limit is bounded" 'BadRequest.*limit' "$(k get --raw "$api/log?limit=1001" 2>&1)"
c() { curl -s --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "$@"; }
two=$(c "https://127.0.0.1:$p$api/log?limit=2")
expect_eq "curl with the admin certificate: limit=2" "2 True" "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["items"]), d["truncated"])' <<<"$two" 2>&1)"
expect_eq "curl without a certificate: 401" "401" "$(curl -sk -o "$E2E_TMP/anon" -w '%{http_code}' "https://127.0.0.1:$p$api/log")"
expect_match "...with an Unauthorized Status" '"kind":"Status".*"reason":"Unauthorized"' "$(cat "$E2E_TMP/anon")"

# The size report: one "key: value" a line.
size=$("$KCP" history size --data-dir "$dir" 2>&1)
expect "kcp history size counts commits" grep -qE '^commits: [1-9][0-9]*$' <<<"$size"
for key in "first raft index" "last raft index" "oldest commit" "objects in HEAD" "pack bytes" "loose bytes" "total on disk"; do
  grep -q "^$key: ." <<<"$size" || fail "kcp history size lacks \"$key\": $size"
done
expect_eq "every line of kcp history size is key: value" "" "$(grep -vE '^[A-Za-z ]+: .+$' <<<"$size")"

# Crash while history trails a burst of writes, restart: no gap, no duplicate.
python3 "$HERE/history_load.py" "$dir" "$p" 400 16 crash >"$E2E_TMP/load.out" 2>&1 &
load=$!
base=$(rv_of after-conflict)
caught_up $((base + 50)) # the burst is under way (history trails it), then the crash
lag=$(( $(k get --raw /api/v1/namespaces/default/configmaps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])') - $(g log -1 --format='%(trailers:key=Raft-Index,valueonly)' refs/heads/main | head -1) ))
kill -9 "$pid"
exits_within "$pid" 5 || fail "server did not die"
wait "$load"
echo "# killed with history $lag entries behind; load: $(cat "$E2E_TMP/load.out")"
start h "$dir" "$p"
pid=$LAST_PID
ready "$kc" || fail "server did not restart"
k create cm after-crash >/dev/null
caught_up "$(rv_of after-crash)" || fail "history did not catch up after the crash"
dups=$(g log --format='%(trailers:key=Raft-Index,valueonly)' refs/heads/main | grep . | sort | uniq -d | head -3)
expect_eq "no Raft-Index recorded twice" "" "$dups"
k get cm -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.resourceVersion}{"\n"}{end}' >"$E2E_TMP/cms"
g log --format='%(trailers:key=Raft-Index,valueonly)' refs/heads/main | grep . | sort -n >"$E2E_TMP/indexes"
missing=0
while read -r name rv; do
  grep -qx "$rv" "$E2E_TMP/indexes" || missing=$((missing + 1))
  [[ $name == crash-* ]] || continue
done <"$E2E_TMP/cms"
expect_eq "every object's resourceVersion has its commit (no gap)" 0 "$missing"
n_api=$(grep -c '^crash-' "$E2E_TMP/cms")
n_git=$(g ls-tree --name-only HEAD core/configmaps/default/ | grep -c '/crash-')
expect_eq "every acknowledged object is in HEAD's tree" "$n_api" "$n_git"

# The same entries give the same commit ids: replay the retained entries into fresh repos.
head_a=$(g rev-parse HEAD)
expect_fail "kcp history squash refuses while the server runs" "$KCP" history squash --keep-commits 5 --data-dir "$dir"
kill -TERM "$pid"; exits_within "$pid" 5 || fail "server did not stop"
for x in b c; do
  cp -a "$dir" "$E2E_TMP/$x"
  rm -rf "$E2E_TMP/$x/history.git"
  px=$(port)
  sed -i "s#https://127.0.0.1:$p#https://127.0.0.1:$px#" "$E2E_TMP/$x/kubeconfig"
  start "$x" "$E2E_TMP/$x" "$px"
  ready "$E2E_TMP/$x/kubeconfig" || fail "replica $x did not start"
done
head_of() { git --git-dir "$E2E_TMP/$1/history.git" rev-parse -q --verify refs/heads/main 2>/dev/null; }
for ((i = 0; i < 300; i++)); do
  [[ $(head_of b) == "$head_a" && $(head_of c) == "$head_a" ]] && break
  sleep 0.1
done
head_b=$(head_of b)
head_c=$(head_of c)
expect_eq "two fresh repositories replay to the same head" "$head_b" "$head_c"
expect_eq "...which is the original head" "$head_a" "$head_b"

# Retention offline: squash the stopped server's main line to 5 commits, restart, keep recording.
n_before=$(g rev-list --count refs/heads/main)
tree_before=$(g rev-parse 'HEAD^{tree}')
out=$("$KCP" history squash --keep-commits 5 --data-dir "$dir" 2>/dev/null)
expect_match "squash says what it folded" "^squashed $((n_before - 5)) commits \(Raft-Index [0-9]+\.\.[0-9]+\) into a root; kept 5 commits" "$out"
expect_eq "5 commits on the main line" 5 "$(g rev-list --count refs/heads/main)"
expect_eq "the head's tree is unchanged" "$tree_before" "$(g rev-parse 'HEAD^{tree}')"
expect_match "the root says what it replaces" "Squashed-Commits: $((n_before - 5))" "$(g log -1 --format=%B "$(g rev-list --max-parents=0 HEAD)")"
expect "git fsck is clean after the squash" g fsck --full --no-dangling
size=$("$KCP" history size --data-dir "$dir" 2>&1)
expect "one pack after the squash" grep -qx 'packs: 1' <<<"$size"
expect "no loose objects after the squash" grep -qx 'loose objects: 0' <<<"$size"
start h "$dir" "$p" --history-keep-commits 100
pid=$LAST_PID
ready "$kc" || fail "server did not restart after the squash"
k create cm after-squash >/dev/null
caught_up "$(rv_of after-squash)" || fail "history did not record after the squash"
hlog=$("$KCP" history log --data-dir "$dir" 2>&1)
expect_match "new writes still record" 'create +configmaps/default/after-squash kcp-admin' "$hlog"
n_after=$(grep -cE '^[0-9a-f]{12} ' <<<"$hlog")
expect "kcp history log shows at most 6 commits ($n_after)" test "$n_after" -le 6

# History off: no repository, and the store retains nothing.
off=$E2E_TMP/off; po=$(port)
KCP_HISTORY=off start off "$off" "$po" --init
ready "$off/kubeconfig" || fail "server with history off did not start"
expect_fail "no repository with KCP_HISTORY=off" test -d "$off/history.git"

done_testing
