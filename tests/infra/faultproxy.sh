# faultproxy.sh: start and stop tests/infra/faultproxy.py from bash tests.
#   proxy_start UPSTREAM_PORT [faultproxy.py flags...]
#       starts the proxy in front of 127.0.0.1:UPSTREAM_PORT and sets
#       PROXY_PID and PROXY_PORT (a free port at the first start; later
#       starts reuse it, so clients keep their URL across a restart); the
#       log (one line per injected fault) goes to $PROXY_LOG
#   proxy_stop      stops it (call it from the test's EXIT trap too)
#   proxy_count TEXT   how many log lines contain TEXT
# Needs PROXY_LOG (a file) and PROXY_STATE (a folder) set by the caller.
PROXY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROXY_PID=
PROXY_PORT=0

proxy_start() {
	local upstream=$1 i; shift
	rm -f "$PROXY_STATE/proxy.port"
	python3 "$PROXY_DIR/faultproxy.py" --upstream "127.0.0.1:$upstream" --port "$PROXY_PORT" \
		--port-file "$PROXY_STATE/proxy.port" --log "$PROXY_LOG" "$@" &
	PROXY_PID=$!
	for i in $(seq 1 100); do
		[ -s "$PROXY_STATE/proxy.port" ] && { PROXY_PORT=$(cat "$PROXY_STATE/proxy.port"); return 0; }
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "fault proxy did not start" >&2
	return 1
}
proxy_stop() { [ -n "${PROXY_PID:-}" ] && { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }; return 0; }
proxy_count() { grep -c -- "$1" "$PROXY_LOG" 2>/dev/null || true; }
