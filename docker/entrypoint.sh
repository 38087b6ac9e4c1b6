#!/bin/sh
# Container entrypoint for ingressproxy (see Dockerfile and docs/ci.md).
#
#   (no arguments), or options first  ingressproxy serve [your options]
#   -  [options]                      the same, manifests read from standard input (docker run -i)
#   serve|check|echo|explain|convert  that ingressproxy command, exactly as given
#   --version, --help                 ingressproxy's own
#   healthcheck                       exit 0 when the admin /ping answers 200 (HEALTHCHECK)
#   anything else                     run it (a shell, for instance)
#
# `serve` takes each setting from its flag, else from INGRESSPROXY_<FLAG> (the image sets
# MANIFESTS, HOST, PORT, ADMIN_HOST and ADMIN_PORT), else its default: the rule it follows
# everywhere (docs/cli.md, Environment), so this script passes the options on untouched.
#
# exec replaces this shell, so ingressproxy is PID 1 and receives SIGTERM itself.
set -eu

case "${1:-}" in
    --version | --help | -h)
        exec ingressproxy "$@"
        ;;
    "" | -*)
        exec ingressproxy serve "$@"
        ;;
    serve | check | echo | explain | convert)
        exec ingressproxy "$@"
        ;;
    healthcheck)
        # The image has no curl: ask with the Python that runs the proxy.
        exec python -c 'import sys, urllib.request
try:
    ok = urllib.request.urlopen(sys.argv[1], timeout=2).status == 200
except OSError:
    ok = False
sys.exit(0 if ok else 1)' "http://127.0.0.1:${INGRESSPROXY_ADMIN_PORT:-9000}/ping"
        ;;
    *)
        exec "$@"
        ;;
esac
