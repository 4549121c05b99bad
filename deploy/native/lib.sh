# Shared helpers of the native scripts; sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${THUMBQ_RUN_DIR:-$ROOT/.run}

log() { printf '[thumbq] %s\n' "$*"; }
die() { printf '[thumbq] error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "'$*' needs root and sudo is not installed"; fi
}

# Installs Debian packages that are missing (apt-get update only when something is).
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and this is not a Debian-like system: install them yourself"
  log "installing ${missing[*]} from Debian's packages"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# True when something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when the server on 127.0.0.1:$1 answers the bytes $2 with a reply starting with the bytes $3 (printf
# escapes) within 10 seconds. A hung server accepts TCP connections but answers nothing.
answers() {
  timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "$1" >&3 && [ "$(head -c "$3" <&3 | od -An -tx1)" = "$(printf "$2" | od -An -tx1)" ]' \
    "$1" "$2" "$3" "$(printf "$3" | wc -c)" 2>/dev/null
}

# Waits up to $2 seconds for port $1 to listen.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + $2))
  until listening "$port"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# A durable redis-server on 127.0.0.1:$2, its data, pid and log files under folder $1 (the cluster scripts' layout:
# $1/redis-PORT/, $1/pids/redis-PORT.pid, $1/logs/redis-PORT.log); further arguments go to redis-server.
redis_daemon() {
  local folder=$1 port=$2; shift 2
  mkdir -p "$folder/redis-$port" "$folder/pids" "$folder/logs"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$folder/redis-$port" --appendonly yes \
    --pidfile "$folder/pids/redis-$port.pid" --logfile "$folder/logs/redis-$port.log" "$@"
}

# The pid in pid file $1 when that process is alive and is one of ours.
running_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q thumbq && echo "$pid"
}

# The workspace's rust-version (Cargo.toml): the oldest Rust that builds it.
rust_needed() { sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml"; }

# True when rustc is at least rust_needed.
rust_is_recent() {
  local need have
  need=$(rust_needed)
  have=$(rustc --version 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" = "$need" ]
}

# Makes the build possible: a C toolchain, cmake and nasm (libjpeg-turbo is built from its vendored sources; rav1e,
# the AVIF encoder, assembles its kernels with nasm), libtiff's and libheif's headers and libraries (the worker links
# Debian's libtiff for every TIFF layout, and its libheif with the HEVC and AV1 decoders for HEIC and AVIF), FFmpeg's
# ffprobe and ffmpeg (the worker runs them for a video's poster frame), and stable Rust no older than the workspace's rust-version
# (rustup's, installed for this user when missing; Debian's cargo is too old).
ensure_cargo() {
  apt_install build-essential cmake nasm libtiff-dev libheif-dev ffmpeg
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  rust_is_recent && return 0
  if command -v rustup >/dev/null; then
    log "updating the stable Rust toolchain with rustup ($(rustc --version 2>/dev/null || echo 'none') is too old)"
    rustup toolchain install stable --profile minimal >/dev/null && rustup default stable >/dev/null
  else
    apt_install curl ca-certificates
    log "installing the stable Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    . "$HOME/.cargo/env"
  fi
  rust_is_recent || die "thumbq needs Rust $(rust_needed) or newer; rustc says: $(rustc --version 2>&1)"
}

# Builds the release binaries of `make start` (the API, the worker and the `thumbq` command line, with the features
# that build resolves), with
# cargo's progress shown. The first build compiles every dependency: 5 to 7 minutes on 2 cores; later ones take
# seconds. Other commands use these binaries rather than `cargo run`, which resolves features differently, recompiles
# and replaces them.
build_release() {
  if [ -x "$ROOT/target/release/thumbq-api" ] && [ -x "$ROOT/target/release/thumbq-worker" ]; then
    log "building release binaries (only what changed)"
  else
    log "building release binaries: the first build compiles every dependency, 5 to 7 minutes on 2 cores"
  fi
  (cd "$ROOT" && cargo build --release --locked -p thumbq-api -p thumbq-worker -p thumbq-client)
}

# The settings of this shell: its THUMBQ_* variables and WORKERS, one `NAME <hash of the value>` a line, sorted.
# Values are hashed: some are secrets, and the record only has to tell whether a setting changed.
settings_fingerprint() {
  local name
  for name in $(compgen -e | grep -E '^(THUMBQ_[A-Z0-9_]+|WORKERS)$'); do
    printf '%s %s\n' "$name" "$(printf '%s' "${!name}" | sha256sum | cut -c1-16)"
  done | LC_ALL=C sort
}

# python_tool NAME VERSION PACKAGES CHECK: installs PACKAGES (space-separated pins) from PyPI into a virtualenv of
# their own, .run/tools/NAME, unless CHECK (run in the venv's bin folder) prints VERSION.
python_tool() {
  local name=$1 version=$2 package=$3 check=$4 venv="$RUN_DIR/tools/$1"
  if [ "$(cd "$venv/bin" 2>/dev/null && eval "$check" 2>/dev/null)" != "$version" ]; then
    apt_install python3 python3-venv
    log "installing $name $version into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    local packages
    read -ra packages <<<"$package"
    "$venv/bin/pip" install -q --disable-pip-version-check "${packages[@]}"
  fi
}

# moto's S3-compatible server (the object-store tests and `make cluster`): .run/tools/moto/bin/moto_server.
install_moto() {
  python_tool moto 5.2.5 'moto[server]==5.2.5' './python -c "import moto; print(moto.__version__)"'
}

# deb_tool NAME PACKAGE BINARY: unpacks Debian's PACKAGE into .run/tools/NAME without installing it, for a static
# binary (promtool, from the `prometheus` package) whose package would also install and start a service.
deb_tool() {
  local name=$1 package=$2 binary=$3 dir="$RUN_DIR/tools/$1"
  [ -x "$dir/usr/bin/$binary" ] && return 0
  log "unpacking $binary from Debian's $package into $dir"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && chmod 755 . && as_root apt-get update -q >/dev/null && apt-get download -q "$package" >/dev/null 2>&1) \
    || { rm -rf "$tmp"; die "could not download Debian's $package"; }
  mkdir -p "$dir" && dpkg-deb -x "$tmp"/*.deb "$dir"
  rm -rf "$tmp"
}

# node_tool NAME PACKAGE...: installs npm PACKAGEs (pinned versions) into .run/tools/NAME/node_modules unless there.
node_tool() {
  local name=$1 dir="$RUN_DIR/tools/$1"
  shift
  local stamp="$dir/.installed" want="$*"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing $want into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && echo '{"private": true, "type": "module"}' > package.json && npm install -s --no-audit --no-fund "$@") \
    || die "npm could not install $want"
  echo "$want" > "$stamp"
}
