# shellcheck shell=bash
# Helpers every engine uses (sourced by scripts/engines.sh after its settings).

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() { printf 'engines.sh: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for failed starts).
log_tail() {
  [[ -f $1 ]] || return 0
  warn "---- last lines of $1 ----"
  tail -n "${2:-30}" "$1" >&2 || true
  warn "----"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  # shellcheck disable=SC2016 # $1 expands in the child shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True when pid $1 is alive and its command name is $2.
pid_is() {
  local pid=$1 name=$2 comm
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/comm ]]; then comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  else comm=$(ps -o comm= -p "$pid" 2>/dev/null || true); comm=${comm##*/}
  fi
  [[ $comm == "$name"* ]]
}

# Print the pid in pid file $1 (its first line) when that process is alive and named $2; else fail.
# Only our own pid files are trusted, never a process name: another checkout's servers look the same.
pid_file_pid() {
  local pid
  [[ -r $1 ]] || return 1
  pid=$(head -n 1 "$1" | tr -dc '0-9')
  pid_is "$pid" "$2" || return 1
  echo "$pid"
}

# $1 when it is a port number (the running server's), else the requested port $2.
port_or() { if [[ $1 =~ ^[0-9]+$ ]]; then echo "$1"; else echo "$2"; fi; }

# Field $3 of state file $2 ("<port> ..." written at start) while engine $1 runs, else empty.
state_field() {
  local f=
  if "$1_running" && [[ -r $2 ]]; then f=$(cut -d' ' -f"$3" "$2"); fi
  echo "$f"
}

# Engine $1 already runs on port $3 while its variable $2 asks for another one: say how to move it.
note_port() {
  local name=$1 var=$2 port=$3
  [[ $port == "${!var}" ]] || warn "$name: note: $var=${!var} requested; run 'down $name' then 'up $name' to move it"
}

# Die when one of the ports ($3...) is taken; $2 ends the message (what to do about it).
need_free_ports() {
  local name=$1 advice=$2 port; shift 2
  for port in "$@"; do
    port_open "$port" && die "$name: port 127.0.0.1:$port is already in use by another process$advice"
  done
  return 0
}

# Start "$3..." in the background, in directory $1, appending its output to log $2; LAUNCHER = its pid.
# setsid: detach from the caller's process group so the server outlives it; 9>&-: not our lock.
LAUNCHER=
launch() {
  local dir=$1 log=$2; shift 2
  (cd "$dir" && exec setsid "$@") >>"$log" 2>&1 </dev/null 9>&- &
  # shellcheck disable=SC2034 # read by the engine files
  LAUNCHER=$!
}

# The start-up wait of every server launched in the background: runs "$5..." every $2 s for up to $1 s.
# $3: the launcher's pid (empty: none); $4: the function that tells whether the server process lives.
# Returns 0 once "$5..." succeeds, 2 when the launcher has exited and the server is gone too (it died
# starting), 1 on timeout.
wait_ready() {
  local secs=$1 step=$2 launcher=$3 running=$4 deadline; shift 4
  deadline=$(( SECONDS + secs ))
  while (( SECONDS < deadline )); do
    "$@" && return 0
    if [[ -n $launcher ]] && ! kill -0 "$launcher" 2>/dev/null && ! "$running"; then
      sleep "$step"   # the server may still be writing its pid file
      "$running" || return 2
    fi
    sleep "$step"
  done
  return 1
}

# The stop of every server we track by a pid file: SIGTERM, wait up to $4 s, then SIGKILL.
# $1 engine, $2 pid file, $3 command name of the server process.
stop_pid_file() {
  local name=$1 file=$2 comm=$3 secs=$4 pid i
  if ! pid=$(pid_file_pid "$file" "$comm"); then rm -f "$file"; say "$name: not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true   # a frozen (SIGSTOP) server must run to handle TERM
  for (( i = 0; i < secs * 10; i++ )); do
    pid_is "$pid" "$comm" || { rm -f "$file"; say "$name: stopped"; return 0; }
    sleep 0.1
  done
  warn "$name: still running after ${secs}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do pid_is "$pid" "$comm" || break; sleep 0.1; done
  rm -f "$file"
  say "$name: killed"
}

APT_UPDATED=0
# As root: apt-get install the packages. Otherwise: say what to install, exit 1.
need_packages() {
  local what=$1; shift
  if (( ! IS_ROOT )); then
    die "$what is not installed. Install it first, e.g.: sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null || die "$what is not installed and apt-get is not available; install: $*"
  say "installing $* (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  if (( ! APT_UPDATED )); then apt-get update -qq; APT_UPDATED=1; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# As root, servers run as OS users (PostgreSQL and Elasticsearch refuse root): runuser switches.
need_runuser() {
  (( IS_ROOT )) || return 0
  command -v runuser >/dev/null || die "runuser (util-linux) is required when running as root"
}

# As root: make the directories above $2 traversable (o+x) for OS user $1.
ensure_traversable() {
  local user=$1 d=$2
  (( IS_ROOT )) && id "$user" >/dev/null 2>&1 || return 0
  runuser -u "$user" -- test -x "$d" 2>/dev/null && return 0
  while [[ $d != / ]]; do
    d=$(dirname "$d")
    if [[ $(stat -c %A "$d") != *x ]] && [[ $(stat -c %A "$d") != *t ]]; then
      chmod o+x "$d"
      say "note: made $d traversable (o+x) so the $user user can reach $2"
    fi
  done
}

# Base directories. As root, make sure the postgres OS user can reach $DATA.
ensure_dirs() {
  local old_umask
  old_umask=$(umask); umask 022
  mkdir -p "$DATA" "$LOG"
  umask "$old_umask"
  chmod 755 "$DATA" "$LOG"
  ensure_traversable postgres "$DATA"
}

# Serialise up/down runs (tests may call them concurrently).
take_lock() {
  command -v flock >/dev/null || return 0
  exec 9>>"$DATA/.engines.lock"
  flock -w 120 9 || die "timed out waiting for another engines.sh run ($DATA/.engines.lock)"
}
