#!/usr/bin/env bash
# /openapi/v2 as kube-apiserver serves it: JSON, or gnostic's protobuf Document for the media
# types kubectl and client-go ask for (application/com.github.proto-openapi.spec.v2@v1.0+protobuf
# and its ".v1.0" spelling), the same ETag on both, Vary: Accept, 304 for a current copy, 406 for
# anything else; and kubectl's v2 explain reading the protobuf document.
source "$(dirname "$0")/lib.sh"

dir=$E2E_TMP/oa; p=$(port)
start oa "$dir" "$p" --init
ready "$dir/kubeconfig" || { fail "server did not start"; done_testing; exit 1; }
k() { kubectl --kubeconfig "$dir/kubeconfig" "$@"; }
PB_OLD='application/com.github.proto-openapi.spec.v2@v1.0+protobuf'
PB='application/com.github.proto-openapi.spec.v2.v1.0+protobuf'
# get ACCEPT OUT [curl args...]: the response headers on stdout, the body in OUT.
get() {
  local accept=$1 out=$2; shift 2
  curl -s --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    -H "Accept: $accept" -D - -o "$out" "$@" "https://127.0.0.1:$p/openapi/v2" | tr -d '\r'
}
hdr() { awk -v h="$1" 'tolower($0) ~ "^" tolower(h) ":" {sub(/^[^:]*: */, ""); print}' <<<"$2"; }

pbh=$(get "$PB_OLD" "$E2E_TMP/v2.pb")
expect_match "protobuf for kubectl's Accept: 200" '^HTTP/1.1 200' "$pbh"
expect_eq "...Content-Type is upstream's" "$PB" "$(hdr Content-Type "$pbh")"
expect_eq "...Vary: Accept" "Accept" "$(hdr Vary "$pbh")"
etag=$(hdr Etag "$pbh")
expect_match "...an ETag of 128 hex digits, quoted" '^"[0-9A-F]{128}"$' "$etag"
# Document{swagger = 1: "2.0", info = 2: {title = 1: "Kubernetes"}}.
expect_eq "...the body opens with Document.swagger \"2.0\" and info" \
  "0a03322e3012" "$(head -c 6 "$E2E_TMP/v2.pb" | od -An -tx1 | tr -d ' \n')"
expect_eq "the newer spelling of the protobuf type is served too" "$PB" \
  "$(hdr Content-Type "$(get "$PB" /dev/null)")"
jsh=$(get "application/json" "$E2E_TMP/v2.json")
expect_eq "JSON has the same ETag (upstream's: the JSON's SHA-512)" "$etag" "$(hdr Etag "$jsh")"
expect_eq "...which is the SHA-512 of the JSON" "$etag" \
  "\"$(sha512sum "$E2E_TMP/v2.json" | awk '{print toupper($1)}')\""
expect_eq "Accept */* gets JSON" "application/json" "$(hdr Content-Type "$(get '*/*' /dev/null)")"
expect_eq "a higher q picks protobuf" "$PB" \
  "$(hdr Content-Type "$(get "application/json;q=0.5, $PB_OLD" /dev/null)")"
expect_match "If-None-Match with the ETag: 304" '^HTTP/1.1 304' \
  "$(get "$PB_OLD" /dev/null -H "If-None-Match: $etag")"
expect_match "Accept text/html: 406" '^HTTP/1.1 406' "$(get text/html /dev/null)"
if command -v protoc-c >/dev/null || command -v protoc >/dev/null; then
  dec=$(command -v protoc || command -v protoc-c)
  "$dec" --decode_raw <"$E2E_TMP/v2.pb" >"$E2E_TMP/v2.txt" 2>&1
  expect_match "protoc --decode_raw reads the document" '1: "io.k8s.api.core.v1.ConfigMap"' \
    "$(grep -F '1: "io.k8s.api.core.v1.ConfigMap"' "$E2E_TMP/v2.txt" | head -1)"
fi

# kubectl's explain from the v2 document (it asks for protobuf).
out=$(k explain deployments.spec.template.spec.containers.ports --output=plaintext-openapiv2 2>&1)
expect_match "kubectl explain --output=plaintext-openapiv2 reads nested fields" \
  'containerPort[[:space:]]+<integer> -required-' "$out"
expect_match "...and the group-version from x-kubernetes-group-version-kind" 'VERSION: +apps/v1' "$out"
expect_match "kubectl explain configmap.data (map of strings)" 'data <map\[string\]string>' \
  "$(k explain configmap.data --output=plaintext-openapiv2 2>&1)"

done_testing
