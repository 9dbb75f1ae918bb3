#!/usr/bin/env bash
# The foundation end to end: static binary, CLI, PKI on first start, TLS with client
# certificates, health and version endpoints, restart semantics, renewal, signals.
source "$(dirname "$0")/lib.sh"

expect_match "binary is statically linked" 'statically linked' "$(file -L "$KCP")"
expect "kcp version" "$KCP" version
expect_match "kcp version -o json" '"minor": "32"' "$("$KCP" version -o json)"
expect_match "kcp --help lists server" 'server' "$("$KCP" --help)"
expect_match "kcp server --help shows --data-dir" '--data-dir' "$("$KCP" server --help)"
"$KCP" server --no-such-flag >"$E2E_TMP/out" 2>&1; rc=$?
expect_eq "unknown flag exits 2" 2 "$rc"
expect_match "unknown flag message" 'unknown flag: --no-such-flag' "$(cat "$E2E_TMP/out")"
"$KCP" frobnicate >/dev/null 2>&1; expect_eq "unknown command exits 2" 2 "$?"

# A start without --init on an empty dir fails clearly.
empty=$E2E_TMP/empty; mkdir -p "$empty"
p=$(port)
"$KCP" server --data-dir "$empty" --listen "127.0.0.1:$p" >"$E2E_TMP/out" 2>&1; rc=$?
expect_eq "no --init on an empty dir exits 1" 1 "$rc"
expect_match "no --init message" 'holds no cluster.*--init' "$(cat "$E2E_TMP/out")"

# First start.
dir=$E2E_TMP/one; p=$(port)
start one "$dir" "$p" --init
pid=$LAST_PID
kc=$dir/kubeconfig
expect "first start becomes ready" ready "$kc"
expect_eq "kubectl get --raw /readyz" ok "$(kubectl --kubeconfig "$kc" get --raw /readyz 2>&1)"
expect_eq "/healthz" ok "$(kubectl --kubeconfig "$kc" get --raw /healthz 2>&1)"
expect_eq "/livez" ok "$(kubectl --kubeconfig "$kc" get --raw /livez 2>&1)"
expect_match "/readyz?verbose lists checks" '\[\+\]ping ok' "$(kubectl --kubeconfig "$kc" get --raw '/readyz?verbose' 2>&1)"
expect_match "kubectl version shows server v1.32" 'Server Version: v1\.32\.' "$(kubectl --kubeconfig "$kc" version 2>&1)"
expect_match "unknown path is a 404 Status" '"reason":"NotFound".*"code":404' \
  "$(curl -s --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$p/nope" 2>&1)"
for f in ca.crt ca.key server.crt server.key admin.crt admin.key; do
  expect_eq "pki/$f is mode 600" 600 "$(stat -c %a "$dir/pki/$f" 2>&1)"
done
expect_eq "pki/ is mode 700" 700 "$(stat -c %a "$dir/pki")"
expect_eq "kubeconfig is mode 600" 600 "$(stat -c %a "$kc")"
expect_match "kubeconfig names cluster, user, context kcp" 'current-context: kcp' "$(cat "$kc")"
sans=$(openssl x509 -in "$dir/pki/server.crt" -noout -ext subjectAltName 2>&1)
for san in DNS:one DNS:localhost DNS:kubernetes DNS:kubernetes.default.svc.cluster.local \
           'IP Address:127.0.0.1' 'IP Address:10.43.0.1'; do
  expect_match "server certificate SAN $san" "$san" "$sans"
done
expect_match "admin certificate subject" 'O ?= ?system:masters.*CN ?= ?kcp-admin' \
  "$(openssl x509 -in "$dir/pki/admin.crt" -noout -subject 2>&1)"
expect_match "leaf certificates last one year" "$(date -u -d '+365 days' +%b)" \
  "$(openssl x509 -in "$dir/pki/server.crt" -noout -enddate)"

# Client certificates: the admin cert is accepted; a certificate from another CA is rejected
# during the TLS handshake; no certificate is anonymous but still served health checks.
other=$E2E_TMP/other; p2=$(port)
start other "$other" "$p2" --init
ready "$other/kubeconfig" || fail "second cluster did not start"
out=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/pki/ca.crt" \
  --cert "$other/pki/admin.crt" --key "$other/pki/admin.key" "https://127.0.0.1:$p/readyz" 2>&1); rc=$?
expect_match "foreign client certificate fails the handshake (curl exit $rc)" '^(35|56|16)$' "$rc"
expect_eq "own admin certificate is accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' \
  --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "https://127.0.0.1:$p/readyz")"
expect_eq "no client certificate: /healthz still answers" ok \
  "$(curl -s --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$p/healthz")"

expect_match "no client certificate: the API answers 401" '"code":401' \
  "$(curl -s --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$p/api/v1/namespaces")"

# A second server on the same data dir is refused (it would serve a diverging cache).
"$KCP" server --data-dir "$dir" --listen "127.0.0.1:$(port)" >"$E2E_TMP/out" 2>&1; rc=$?
expect_eq "second server on the same data dir exits 1" 1 "$rc"
expect_match "second server message" 'in use by another kcp process' "$(cat "$E2E_TMP/out")"

# SIGTERM drains and exits 0 within 2 s.
kill -TERM "$pid"
if exits_within "$pid" 2; then expect_eq "SIGTERM exits 0 within 2 s" 0 "$EXIT_STATUS"; else fail "SIGTERM: still running after 2 s"; fi

# --init on an existing data dir changes nothing.
sums=$(cd "$dir" && sha256sum pki/* kubeconfig)
start one "$dir" "$p" --init
pid=$LAST_PID
expect "restart with --init becomes ready" ready "$kc"
expect_eq "--init on an existing cluster changes no file" "$sums" "$(cd "$dir" && sha256sum pki/* kubeconfig)"
kill -INT "$pid"
if exits_within "$pid" 2; then expect_eq "SIGINT exits 0 within 2 s" 0 "$EXIT_STATUS"; else fail "SIGINT: still running after 2 s"; fi

# systemd Type=notify: READY=1 once serving, STOPPING=1 on SIGTERM, over $NOTIFY_SOCKET.
sock=$E2E_TMP/notify.sock
python3 "$(dirname "$0")/notify_listen.py" "$sock" 8 >"$E2E_TMP/notify.out" 2>&1 &
lpid=$!
for ((i = 0; i < 50; i++)); do [[ -S $sock ]] && break; sleep 0.1; done
NOTIFY_SOCKET=$sock "$KCP" server --data-dir "$dir" --listen "127.0.0.1:$p" --node-name one \
  >>"$E2E_TMP/one.log" 2>&1 &
npid=$!
PIDS+=("$npid")
ready "$kc" || fail "server under NOTIFY_SOCKET did not start"
for ((i = 0; i < 50; i++)); do grep -q READY=1 "$E2E_TMP/notify.out" && break; sleep 0.1; done
expect_match "sd_notify READY=1 sent" 'READY=1' "$(cat "$E2E_TMP/notify.out")"
kill -TERM "$npid"; exits_within "$npid" 2 || fail "notify server did not stop"
for ((i = 0; i < 20; i++)); do grep -q STOPPING=1 "$E2E_TMP/notify.out" && break; sleep 0.1; done
expect_match "sd_notify STOPPING=1 sent" 'STOPPING=1' "$(cat "$E2E_TMP/notify.out")"
kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null

# Restart without --init, 300 days later: certificates with < 90 days left are renewed at start.
# The renewed certificates start in that future, so they are checked at that time with openssl
# (kubectl would rightly call them not yet valid today).
old_end=$(openssl x509 -in "$dir/pki/server.crt" -noout -enddate)
start one "$dir" "$p" --testing-clock-offset 7200h
pid=$LAST_PID
later=$(( $(date +%s) + 300 * 86400 ))
for ((i = 0; i < 100; i++)); do
  served=$(openssl s_client -connect "127.0.0.1:$p" </dev/null 2>/dev/null | openssl x509 -noout -enddate 2>/dev/null)
  [[ -n $served ]] && break; sleep 0.1
done
new_end=$(openssl x509 -in "$dir/pki/server.crt" -noout -enddate)
if [[ $old_end != "$new_end" ]]; then pass "server certificate renewed at start ($new_end)"; else fail "server certificate not renewed: $new_end"; fi
expect_eq "the running server serves the renewed certificate" "$new_end" "$served"
expect "renewed certificates verify against the CA 300 days on" \
  openssl verify -attime "$later" -CAfile "$dir/pki/ca.crt" "$dir/pki/server.crt" "$dir/pki/admin.crt"
expect_match "kubeconfig embeds the renewed admin certificate" "$(base64 -w0 "$dir/pki/admin.crt")" "$(cat "$kc")"
expect_eq "CA unchanged by renewal" "$(grep ' pki/ca.crt' <<<"$sums" | cut -d' ' -f1)" "$(sha256sum "$dir/pki/ca.crt" | cut -d' ' -f1)"
kill -TERM "$pid"; exits_within "$pid" 2 || fail "stop after renewal test"

# Port in use: a clear error, exit 1.
start one-again "$dir" "$p2"
if exits_within "$LAST_PID" 5; then expect_eq "listen address in use exits 1" 1 "$EXIT_STATUS"; else fail "listen address in use: still running"; fi

done_testing
