#!/usr/bin/env bash
# Peak memory of `rudder-clevertap transform` on a large NDJSON file (BENCHMARKS.md, "Transform").
# Generates EVENTS events (default 200000, ~700 bytes each, the benchmark's mix), runs the
# optimised binary under /usr/bin/time -v, and prints the peak RSS, the time and the output size.
#   scripts/bench-transform-memory.sh            # release build
#   PROFILE=bench EVENTS=50000 scripts/bench-transform-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-200000}"
PROFILE="${PROFILE:-release}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --quiet --profile "$PROFILE" --bin rudder-clevertap
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
case "$PROFILE" in dev | test) DIR=debug ;; bench) DIR=release ;; *) DIR="$PROFILE" ;; esac
BIN="$TARGET_DIR/$DIR/rudder-clevertap"

CTX='{"library":{"name":"RudderLabs JavaScript SDK","version":"3.0.3"},"locale":"en-GB","ip":"203.0.113.7","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36","page":{"path":"/pricing","referrer":"https://www.google.com/","title":"Pricing","url":"https://shop.example.com/pricing?utm_source=newsletter"},"campaign":{"source":"newsletter","medium":"email","name":"spring-sale"},"traits":{"email":"ana@example.com"}}'
awk -v n="$EVENTS" -v ctx="$CTX" 'BEGIN {
  for (i = 0; i < n; i++) {
    head = sprintf("{\"messageId\":\"m-%07d\",\"anonymousId\":\"a-7f3c9e2b-%07d\",\"userId\":\"u-%07d\",\"channel\":\"web\",\"originalTimestamp\":\"2024-03-05T10:20:30.123Z\",\"context\":%s,", i, i, i, ctx)
    k = i % 6
    if (k == 0) body = "\"type\":\"identify\",\"traits\":{\"email\":\"ana@example.com\",\"name\":\"Ana Lima\",\"gender\":\"female\",\"plan\":\"pro\",\"address\":{\"city\":\"Pune\"}}"
    else if (k == 1) body = "\"type\":\"track\",\"event\":\"Plan Upgraded\",\"properties\":{\"from\":\"basic\",\"to\":\"pro\",\"price\":19.99}"
    else if (k == 2) body = "\"type\":\"page\",\"name\":\"Pricing\",\"properties\":{\"path\":\"/pricing\",\"title\":\"Pricing\"}"
    else if (k == 3) body = "\"type\":\"screen\",\"name\":\"Checkout\",\"properties\":{\"step\":2}"
    else if (k == 4) body = "\"type\":\"track\",\"event\":\"Order Completed\",\"properties\":{\"checkout_id\":\"chk-77\",\"revenue\":42.5,\"products\":[{\"product_id\":\"p1\",\"price\":30},{\"product_id\":\"p2\",\"price\":6.25},{\"product_id\":\"p3\",\"price\":4.5}]}"
    else body = "\"type\":\"alias\",\"previousId\":\"a-old\""
    print head body "}"
  }
}' > "$WORK/events.ndjson"
echo '{"accountId":"W9R-000-EXAM","passcode":"example-passcode","region":"eu1","trackAnonymous":true}' > "$WORK/dest.json"

echo "input: $EVENTS events, $(du -h "$WORK/events.ndjson" | cut -f1)"
/usr/bin/time -v "$BIN" transform --destination "$WORK/dest.json" "$WORK/events.ndjson" \
  > "$WORK/out.json" 2> "$WORK/time.txt" || { code=$?; [ "$code" = 1 ] || { cat "$WORK/time.txt"; exit "$code"; }; }
echo "output: $(du -h "$WORK/out.json" | cut -f1)"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$WORK/time.txt"
KB="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")"
echo "peak RSS: $((KB / 1024)) MB"
