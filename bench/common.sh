# What the bench scripts share (sourced, not run): installing tools,
# waiting for a server, accounts and tokens.

PASSWORD='violet hamster teapot 47'

need() { # command package: installs Debian's package unless the command is there
  command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; }
}

wait_up() { # url [tries, 50 ms apart; default 200]: until it answers 2xx
  for _ in $(seq 1 "${2:-200}"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "not up: $1" >&2; return 1
}

wait_listening() { # url: until it answers at all, whatever the status
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != 000 ] && return 0; sleep 0.05
  done
  echo "not listening: $1" >&2; return 1
}

# The first string member `$1` of the JSON on stdin, on a line of its own.
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

register() { # base email → the whole JSON answer
  curl -fs -X POST "$1/api/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"$PASSWORD\",\"name\":\"Bench\"}"
}

# Distinct valid access tokens, one a line: the session of a refresh token
# refreshed that many times (each refresh issues a new access token; the
# earlier ones stay valid).
refreshed_tokens() { # base refresh_token count file
  local refresh=$2 answer
  : >"$4"
  for _ in $(seq 1 "$3"); do
    answer=$(curl -fs -X POST "$1/api/auth/refresh" -H 'Content-Type: application/json' \
      -d "{\"refresh_token\":\"$refresh\"}")
    echo "$answer" | json_field access_token >>"$4"
    refresh=$(echo "$answer" | json_field refresh_token)
  done
}

# A scratch directory `$work`, removed on exit, and `$server`, the pid of a
# server a script started (killed on exit if still set).
scratch() { # name
  work="$(mktemp -d "/tmp/$1.XXXXXX")"
  server=""
  trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}
