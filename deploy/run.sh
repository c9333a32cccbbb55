#!/bin/sh
# run.sh [serve options...] — install what is missing, build, prepare the
# default model on first start (cached under models/), and start the server
# on 127.0.0.1:8080.  This is the README's run command.  Extra arguments are
# passed to `embedsrv serve`.
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh deploy/packages-build.txt deploy/packages-model.txt
sh deploy/build.sh build
sh deploy/default-model.sh build/embedsrv
exec ./build/embedsrv serve "$@"
