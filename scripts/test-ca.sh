# Sourced, not run: a throwaway certificate authority for the TLS scripts (.ci/tls-check.sh,
# scripts/bench-tls.sh, scripts/bench-quorum-tls.sh, scripts/security-example.sh). ECDSA P-256,
# valid two days, made with the openssl CLI; nothing here is ever committed.
#
#   test_ca DIR "SUBJECT"        DIR/ca.key, DIR/ca.pem
#   test_leaf DIR NAME "SUBJECT" DIR/NAME.key, DIR/NAME.crt (signed by DIR's CA, for localhost
#                                and 127.0.0.1, server and client use) and DIR/NAME.pem, the
#                                key followed by the certificate (ZooKeeper's PEM key store)

test_ca() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$1/ca.key" -out "$1/ca.pem" -subj "$2" 2>/dev/null
}

test_leaf() {
  local dir="$1" name="$2" subject="$3"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "$subject" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -out "$dir/$name.crt" -extfile "$dir/$name.ext" 2>/dev/null
  cat "$dir/$name.key" "$dir/$name.crt" >"$dir/$name.pem"
}
