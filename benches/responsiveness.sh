#!/usr/bin/env bash
# Tiny requests alone, then among 8 heavy clients, against one sum server: the quick form of
# the comparison's responsiveness section, for trying one configuration by hand.
#
#   cargo build --release --example sumserver --example sumclient
#   bash benches/responsiveness.sh 'subprocess:2'
#
# Prints three lines: the tiny client alone (2 s), the tiny client while 8 clients send
# n = 20,000,000 (~15-20 ms) requests, and those heavy clients' rate.
set -euo pipefail
executor="${1:?usage: responsiveness.sh EXECUTOR}"
bin="$(dirname "$0")/../target/release/examples"
out="$(mktemp)"
"$bin/sumserver" --executor "$executor" --addr 127.0.0.1:0 >"$out" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out" "$out.heavy"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
addr=$(grep -o '127.0.0.1:[0-9]*' "$out" | head -1)
tiny() {
    "$bin/sumclient" --addr "$addr" --clients 1 --requests 100000000 --n 1 --keepalive \
        --max-duration 2s | grep -E "requests/s|p99" | tr '\n' ' ' || true # stopped by time
    echo
}
echo "$executor"
echo -n "tiny alone:  "; tiny
"$bin/sumclient" --addr "$addr" --clients 8 --requests 100000000 --n 20000000 --keepalive \
    --max-duration 3500ms >"$out.heavy" &
heavy=$!
sleep 0.5
echo -n "tiny loaded: "; tiny
wait $heavy || true # the heavy clients too stop by time
echo -n "heavy:       "; grep -E "requests/s" "$out.heavy" || true
