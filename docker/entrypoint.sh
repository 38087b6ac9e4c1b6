#!/bin/sh
# Container entrypoint for ingressproxy (see Dockerfile and docs/ci.md).
#
#   (no arguments), or options first  ingressproxy serve $INGRESSPROXY_MANIFESTS
#                                     --host $INGRESSPROXY_HOST --port $INGRESSPROXY_PORT
#                                     --admin-host ... --admin-port ... [your options]
#   -  [options]                      the same, manifests read from standard input (docker run -i)
#   serve|check|echo|explain ...      that ingressproxy command, exactly as given
#   healthcheck                       exit 0 when the admin /ping answers 200 (HEALTHCHECK)
#   anything else                     run it (a shell, for instance)
#
# exec replaces this shell, so ingressproxy is PID 1 and receives SIGTERM itself.
set -eu

manifests=${INGRESSPROXY_MANIFESTS:-/manifests}
host=${INGRESSPROXY_HOST:-0.0.0.0}
port=${INGRESSPROXY_PORT:-8080}
admin_host=${INGRESSPROXY_ADMIN_HOST:-0.0.0.0}
admin_port=${INGRESSPROXY_ADMIN_PORT:-9000}

case "${1:-}" in
    "")
        exec ingressproxy serve "$manifests" --host "$host" --port "$port" \
            --admin-host "$admin_host" --admin-port "$admin_port"
        ;;
    -)
        shift
        exec ingressproxy serve - --host "$host" --port "$port" \
            --admin-host "$admin_host" --admin-port "$admin_port" "$@"
        ;;
    -*)
        exec ingressproxy serve "$manifests" --host "$host" --port "$port" \
            --admin-host "$admin_host" --admin-port "$admin_port" "$@"
        ;;
    serve | check | echo | explain)
        exec ingressproxy "$@"
        ;;
    healthcheck)
        # The image has no curl: ask with the Python that runs the proxy.
        exec python -c 'import sys, urllib.request
try:
    ok = urllib.request.urlopen(sys.argv[1], timeout=2).status == 200
except OSError:
    ok = False
sys.exit(0 if ok else 1)' "http://127.0.0.1:${admin_port}/ping"
        ;;
    *)
        exec "$@"
        ;;
esac
