#!/usr/bin/env bash
# Solotab's task runner. Each command first installs whatever is missing, skipping what is
# already there at the right version.
#
#   ./dev.sh run     set up, then run the app with `cargo leptos watch` (SQLite, nothing else)
#   ./dev.sh test    set up, then run every test: fmt, clippy, unit/HTTP/restart, Playwright
#   ./dev.sh bench   set up, then measure what enforcement costs (release build) and append the
#                    figures to docs/BENCHMARKS.md; --quick: a short run that only prints
#   ./dev.sh soak [secs]  the load + kill -9 history check for longer (default 600 s, release)
#   ./dev.sh bundle  the release build, and the size of what the browser downloads
#   ./dev.sh setup   only set up
#
# Works offline except for the package registries (crates.io, npm, Debian).
set -euo pipefail

cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION=0.3.11
SCHEMATHESIS_VERSION=4.32.5
# schemathesis (PyPI) lives in its own virtualenv under target/, away from the system Python.
SCHEMATHESIS_VENV=target/tools/schemathesis

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Seconds since this script started, for the timing summary.
START=$SECONDS
declare -a TIMINGS=()
timed() {
  local label=$1; shift
  local t0=$SECONDS
  "$@"
  TIMINGS+=("$label: $((SECONDS - t0)) s")
}

apt_install() {
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

setup_system() {
  local need_browser=$1 missing=()
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  # jemalloc (the server's allocator) is built from C with its configure script and make.
  command -v make >/dev/null || missing+=(make)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ "$need_browser" = yes ] && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    missing+=(chromium)
  fi
  # The HTTP benchmark's load generator (also run, briefly, by the test command).
  command -v wrk >/dev/null || missing+=(wrk)
  # The release bundle's compressed size, which the test command and the benchmarks print.
  command -v brotli >/dev/null || missing+=(brotli)
  # The browser tests put two instances behind nginx.
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ "$need_browser" = yes ] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3 python3-venv)
  fi
  apt_install "${missing[@]}"
  if ! command -v rustup >/dev/null; then
    # Debian 13 packages rustup; Debian 12 does not, and nothing else can be fetched here.
    if apt-cache show rustup >/dev/null 2>&1 || { apt-get update -qq 2>/dev/null && apt-cache show rustup >/dev/null 2>&1; }; then
      apt_install rustup
    fi
    command -v rustup >/dev/null ||
      die "rustup is missing and this Debian has no rustup package: install it (see rustup.rs), then rerun"
  fi
}

setup_rust() {
  # rust-toolchain.toml names the compiler and the wasm32 target; install them if missing.
  local channel
  channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
  if ! rustup run "$channel" rustc --version >/dev/null 2>&1 ||
    ! rustup run "$channel" cargo clippy --version >/dev/null 2>&1 ||
    ! rustup target list --installed --toolchain "$channel" | grep -qx wasm32-unknown-unknown; then
    say "Installing Rust $channel with the wasm32 target"
    rustup toolchain install
  fi
}

installed_version() { "$@" --version 2>/dev/null | awk '{print $2}'; }

setup_cargo_tools() {
  if [ "$(installed_version cargo-leptos)" != "$CARGO_LEPTOS_VERSION" ]; then
    # no_downloads: fail clearly instead of fetching tools from GitHub; --debug builds in half
    # the time and behaves the same (it only orchestrates the build).
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (about 8 minutes)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --debug
  fi
  # wasm-bindgen-cli must match the wasm-bindgen crate exactly, or it refuses the wasm.
  local want
  want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
  [ -n "$want" ] || die "cannot find the wasm-bindgen version in Cargo.lock"
  if [ "$(installed_version wasm-bindgen)" != "$want" ]; then
    # Not --locked: its lock file names a crate version the registry here does not serve.
    say "Installing wasm-bindgen-cli $want (about 5 minutes)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

setup_npm() {
  # Playwright from npm, never 'npx playwright install': the browser is Debian's Chromium.
  if [ ! -f end2end/node_modules/.package-lock.json ] ||
    [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "Installing the end-to-end test packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
}

setup_fuzzer() {
  local st=$SCHEMATHESIS_VENV/bin/st
  if [ "$("$st" --version 2>/dev/null | awk '{print $3}')" != "$SCHEMATHESIS_VERSION" ]; then
    say "Installing schemathesis $SCHEMATHESIS_VERSION (PyPI) in $SCHEMATHESIS_VENV"
    python3 -m venv "$SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

setup() {
  local need_browser=${1:-no}
  timed "system packages" setup_system "$need_browser"
  timed "rust toolchain" setup_rust
  timed "cargo-leptos, wasm-bindgen-cli" setup_cargo_tools
  [ "$need_browser" = yes ] && timed "npm packages" setup_npm
  [ "$need_browser" = yes ] && timed "schemathesis" setup_fuzzer
  return 0
}

# A TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL for the tests, in this order: SOLOTAB_TEST_POSTGRES_URL if set; the server this
# project's machines run on 127.0.0.1:5432 (trust, database `test`) if it answers; else a
# private one (Debian's postgresql, installed if missing; data in a temporary directory, on a
# free port), stopped when this script exits. Each test works in a schema of its own.
# SOLOTAB_PRIVATE_POSTGRES=1 skips the machine's server (to try the fresh-machine path).
PG_PRIVATE=""
REDIS_PRIVATE=""
find_or_start_postgres() {
  [ -n "${SOLOTAB_TEST_POSTGRES_URL:-}" ] && return 0
  local shared=postgres://postgres@127.0.0.1:5432/test
  if [ -z "${SOLOTAB_PRIVATE_POSTGRES:-}" ] && command -v psql >/dev/null &&
    psql "$shared" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    say "PostgreSQL: the machine's, on 127.0.0.1:5432"
    export SOLOTAB_TEST_POSTGRES_URL=$shared
    return 0
  fi
  local bin port as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_PRIVATE=$(mktemp -d /tmp/solotab-pg.XXXXXX)
  port=$(free_port)
  say "PostgreSQL: a private instance on 127.0.0.1:$port (data in $PG_PRIVATE)"
  # PostgreSQL refuses to run as root: as root, run it as Debian's postgres user.
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_PRIVATE"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PG_PRIVATE/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$PG_PRIVATE/data" -l "$PG_PRIVATE/log" -w \
    -o "-p $port -k $PG_PRIVATE -c listen_addresses=127.0.0.1 ${PG_EXTRA_OPTIONS:-}" start >/dev/null
  "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export SOLOTAB_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/test"
}

stop_private_postgres() {
  [ -n "$PG_PRIVATE" ] || return 0
  local bin as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$PG_PRIVATE/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_PRIVATE"
}

# The Redis the tests use: SOLOTAB_TEST_REDIS_URL if set, else the machine's on 6379, else a
# private one (Debian's redis-server, installed if missing) on a free port, with its
# append-only file in a temporary directory, stopped on exit.
find_or_start_redis() {
  [ -n "${SOLOTAB_TEST_REDIS_URL:-}" ] && return 0
  if [ -z "${SOLOTAB_PRIVATE_REDIS:-}" ] && command -v redis-cli >/dev/null &&
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    say "Redis: the machine's, on 127.0.0.1:6379"
    export SOLOTAB_TEST_REDIS_URL=redis://127.0.0.1:6379
    return 0
  fi
  local port
  REDIS_PRIVATE=$(mktemp -d /tmp/solotab-redis.XXXXXX)
  port=$(free_port)
  say "Redis: a private instance on 127.0.0.1:$port (data in $REDIS_PRIVATE)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
    --dir "$REDIS_PRIVATE" --daemonize yes --pidfile "$REDIS_PRIVATE/redis.pid" \
    --logfile "$REDIS_PRIVATE/log"
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export SOLOTAB_TEST_REDIS_URL="redis://127.0.0.1:$port"
}

stop_private_stores() {
  stop_private_postgres
  if [ -n "$REDIS_PRIVATE" ]; then
    kill "$(cat "$REDIS_PRIVATE/redis.pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$REDIS_PRIVATE"
  fi
}

# The outage tests start, stop and restart PostgreSQL and Redis servers of their own: their
# binaries must be here even when the tests use servers that already run.
ensure_store_servers() {
  local missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

run_tests() {
  trap stop_private_stores EXIT
  timed "store servers" ensure_store_servers
  timed "postgresql" find_or_start_postgres
  timed "redis" find_or_start_redis

  say "Formatting and lints"
  timed "cargo fmt --check" cargo fmt --all --check
  timed "cargo clippy" cargo clippy --locked --all-targets -- -D warnings
  # The browser build too: some of its code exists only on wasm32.
  timed "cargo clippy (wasm)" cargo clippy --locked -p frontend --target wasm32-unknown-unknown -- -D warnings
  # And as a split build compiles it (app/build.rs: lazily loaded pages), in its own target
  # directory so that neither build undoes the other's.
  timed "cargo clippy (wasm, split)" env CARGO_TARGET_DIR=target/clippy-split \
    cargo clippy --locked -p frontend --target wasm32-unknown-unknown \
    --config 'build.rustflags = ["--cfg", "lazy_pages"]' -- -D warnings

  say "Unit, property, HTTP-contract and restart tests"
  timed "cargo test" cargo test --locked -p app -p server

  say "Building the site (wasm + server) for the browser tests"
  timed "cargo leptos build" cargo leptos build --cargo-locked

  say "Benchmarks, quick form in the debug build: proves they run (no figures kept, nothing asserted)"
  timed "cargo build --examples" cargo build --locked -p server --examples
  run_benchmarks debug --quick >/dev/null

  say "API fuzz: schemathesis against /api/openapi.json (fixed seed, ${FUZZ_SECS:-60} s)"
  timed "schemathesis" run_fuzz

  say "Browser tests: Playwright in Debian's Chromium"
  # The config starts target/debug/server on a free port with a fresh database.
  timed "playwright" bash -c 'cd end2end && npx playwright test'

  say "The release build (what ships): its download size, and the browser tests against it"
  timed "cargo leptos build --release" build_release_site
  bundle_report
  # E2E_SPLIT: this build's sessions and admin pages are lazily loaded (the debug one's are not).
  timed "playwright (release)" bash -c 'cd end2end && E2E_PROFILE=release E2E_SPLIT=1 npx playwright test'
}

# `cargo leptos build --release`, as the README says to ship it: wasm-opt (npm binaryen, from
# end2end/node_modules) shrinks the wasm, and --split puts the lazily loaded pages in files
# of their own. Overwrites the debug build's target/site.
build_release_site() {
  PATH="$NPM_BIN:$PATH" cargo leptos build --cargo-locked --release --split "$@"
}

# The stock Leptos start-axum-workspace counter's wasm + JS, brotli -q 11, built with this
# project's toolchain, lock file and wasm-release profile (its code is not part of this
# repository, so it is not rebuilt here; it rebuilt to the same byte on two days).
STOCK_COUNTER_BROTLI=101364

# wasm-opt (npm binaryen) is installed with the end-to-end test packages.
NPM_BIN="$PWD/end2end/node_modules/.bin"

wasm_opt_version() { PATH="$NPM_BIN:$PATH" wasm-opt --version | awk '{print $3}'; }

# Prints the release build's download sizes as Markdown: raw, gzip -9 and brotli -q 11 of what
# every page loads (the app's wasm and JS, and the loader of the split files), then of each
# file loaded only by the page that needs it. Leaves the first total, brotli, in BUNDLE_BROTLI.
bundle_report() {
  local pkg=target/site/pkg f raw gz br
  local total_raw=0 total_gz=0 total_br=0
  echo "| file | raw | gzip | brotli |"
  echo "|---|---|---|---|"
  for f in "$pkg"/solotab.wasm "$pkg"/solotab.js "$pkg"/__wasm_split.*.js; do
    [ -f "$f" ] || continue
    raw=$(stat -c %s "$f"); gz=$(gzip -9c "$f" | wc -c); br=$(brotli -q 11 -c "$f" | wc -c)
    total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz)); total_br=$((total_br + br))
    echo "| \`${f##*/}\` | $raw | $gz | $br |"
  done
  echo "| **loaded by every page** | **$total_raw** | **$total_gz** | **$total_br** |"
  BUNDLE_BROTLI=$total_br
  for f in "$pkg"/split_*.wasm "$pkg"/chunk_*.wasm; do
    [ -f "$f" ] || continue
    echo "| \`${f##*/}\` (on demand) | $(stat -c %s "$f") | $(gzip -9c "$f" | wc -c) | $(brotli -q 11 -c "$f" | wc -c) |"
  done
}

# Starts the built server on a free port with a fresh database, lets schemathesis fuzz every
# operation of its OpenAPI description: no 5xx, every status, type and body as described.
run_fuzz() {
  local dir base="" rc=0 pid
  dir=$(mktemp -d)
  SOLOTAB_DB="$dir/solotab.db" LEPTOS_SITE_ADDR=127.0.0.1:0 NO_COLOR=1 \
    target/debug/server >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    base=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.log" | sed 's/listening on //' || true)
    [ -n "$base" ] && break
    sleep 0.1
  done
  if [ -z "$base" ]; then
    kill "$pid" 2>/dev/null || true
    cat "$dir/server.log" >&2
    die "the server did not start for the API fuzz"
  fi
  "$SCHEMATHESIS_VENV/bin/st" run "$base/api/openapi.json" --seed 1 --max-time "${FUZZ_SECS:-60}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --warnings off || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q 'panicked' "$dir/server.log"; then
    grep -B2 -A8 'panicked' "$dir/server.log" >&2
    rc=1
  fi
  rm -rf "$dir"
  return $rc
}

# Runs every benchmark in the build `profile` (release or debug); prints their Markdown.
run_benchmarks() {
  local dir=target/$1/examples; shift
  # One socket per channel on each side: 10,000 channels need more than the usual 1,024 files.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  timed "core_bench" "$dir/core_bench" "$@"
  timed "http_bench" "$dir/http_bench" "$@"
  timed "push_bench" "$dir/push_bench" "$@"
  timed "instances_bench" "$dir/instances_bench" "$@"
}

# `./dev.sh bench [--quick]`: release build; a full run writes a dated section into
# docs/BENCHMARKS.md (a quick one only prints).
run_bench() {
  # Its own PostgreSQL, with pg_stat_statements loaded to count statements per request.
  trap stop_private_stores EXIT
  SOLOTAB_PRIVATE_POSTGRES=1 PG_EXTRA_OPTIONS="-c shared_preload_libraries=pg_stat_statements" \
    timed "postgresql" find_or_start_postgres
  timed "redis" find_or_start_redis
  say "Building the server and the benchmarks (release)"
  timed "cargo build --release" cargo build --locked --release -p server --bins --examples
  timed "cargo leptos build --release" build_release_site
  say "Measuring (loopback only)"
  local out
  out=$(mktemp)
  {
    echo "## Benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC') (\`./dev.sh bench $*\`)"
    echo
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo
    run_benchmarks release "$@"
    echo "### Download size of the release build (target 7)"
    echo
    echo "\`cargo leptos build --release --split\`, wasm-opt $(wasm_opt_version); sizes in bytes."
    echo
    bundle_report
    echo
    echo "Brotli of what every page loads / the stock start-axum-workspace counter's wasm + JS \
($STOCK_COUNTER_BROTLI B, same toolchain and profile; docs/BENCHMARKS.md says how it was built): \
**$(awk -v b="$BUNDLE_BROTLI" -v s="$STOCK_COUNTER_BROTLI" 'BEGIN {printf "%.2f", b / s}')** (target <= 1.5)."
  } | tee "$out"
  if [[ " $* " != *" --quick "* ]]; then
    cat "$out" >>docs/BENCHMARKS.md
    say "Appended to docs/BENCHMARKS.md"
  fi
  rm -f "$out"
}

run_soak() {
  local secs=${1:-600}
  say "Load + kill -9 history check for $secs s (release build; the summary is printed)"
  timed "history soak" env SOLOTAB_HISTORY_SECS="$secs" \
    cargo test --locked --release -p server --test history -- --nocapture --test-threads 1
}

summary() {
  say "Timings"
  printf '  %s\n' "${TIMINGS[@]}" "total: $((SECONDS - START)) s"
}

case "${1:-}" in
  run)
    setup no
    say "Starting Solotab on ${LEPTOS_SITE_ADDR:-127.0.0.1:3000} (database: ${SOLOTAB_DB:-solotab.db})"
    exec cargo leptos watch
    ;;
  test)
    setup yes
    run_tests
    summary
    ;;
  bench)
    shift
    setup no
    run_bench "$@"
    summary
    ;;
  bundle)
    setup no
    timed "cargo leptos build --release" build_release_site
    bundle_report
    summary
    ;;
  soak)
    shift
    setup no
    run_soak "$@"
    summary
    ;;
  setup)
    setup yes
    summary
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
