#!/usr/bin/env bash
# Debian packages the docs need: libjs-mathjax (the local MathJax 2 that typesets the
# formulas; nothing is loaded from the web) and chromium (the headless browser of
# `make docs-check`). Each is installed only when it is missing, quietly; without root
# (and sudo) nothing is installed, and the build or the check says what is missing.
set -u
need=()
[ -f /usr/share/javascript/mathjax/MathJax.js ] || [ -n "${PIXYZ_PYRO_MATHJAX:-}" ] || \
  need+=(libjs-mathjax)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
  [ -n "${CHROMIUM:-}" ] || need+=(chromium fonts-liberation)
if [ ${#need[@]} -eq 0 ]; then
  echo "docs tools present: MathJax, chromium"; exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "no root: not installing ${need[*]} (install them with apt-get)"; exit 0; fi
fi
if ! command -v apt-get >/dev/null; then
  echo "no apt-get: install ${need[*]} by hand"; exit 0
fi
echo "installing ${need[*]} (Debian)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || \
  { $SUDO apt-get update -qq >/dev/null 2>&1 && \
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; } || \
  echo "apt-get failed to install ${need[*]}"
