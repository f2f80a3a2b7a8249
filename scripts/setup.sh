#!/usr/bin/env bash
# Installs what opsgate's lab, tests and benchmarks need on a Debian machine, or says exactly
# what is missing. Sourced by the other scripts; safe to run again.
set -euo pipefail

need_packages=()
[ -x /usr/sbin/sshd ] || need_packages+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_packages+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need_packages+=(openssh-client)
command -v sha256sum >/dev/null 2>&1 || need_packages+=(coreutils)
command -v sqlite3 >/dev/null 2>&1 || need_packages+=(sqlite3)
command -v sudo >/dev/null 2>&1 || need_packages+=(sudo)
# The gate tests run opsgate as real OS accounts: useradd creates them, runuser and sudo switch.
command -v useradd >/dev/null 2>&1 || need_packages+=(passwd)
command -v runuser >/dev/null 2>&1 || need_packages+=(util-linux)
# Backups are tar + zstd (the tests name .tar.zst files); gzip is only the fallback.
command -v zstd >/dev/null 2>&1 || need_packages+=(zstd)
# Root labs build each host's filesystem with unshare, mount and setsid (docs/lab.md).
command -v unshare >/dev/null 2>&1 || need_packages+=(util-linux)
command -v mount >/dev/null 2>&1 || need_packages+=(mount)
# The provision-web test lists listening sockets with ss.
command -v ss >/dev/null 2>&1 || need_packages+=(iproute2)
# The PostgreSQL tests (tests/run/postgres.rs) start a throwaway cluster of their own on
# 127.0.0.x with the server programs in /usr/lib/postgresql/<version>/bin, and the shipped
# postgres runbooks run pg_dump/pg_restore (package postgresql-client, a dependency). Debian's
# postinst also creates the system cluster `main` and may start it on localhost:5432 (loopback
# only, Debian's default); the tests never use it.
postgres_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
postgres_server || need_packages+=(postgresql)
# The package tests build .deb fixtures and a flat apt repository for isolated lab hosts.
command -v dpkg-deb >/dev/null 2>&1 || need_packages+=(dpkg)
command -v dpkg-scanpackages >/dev/null 2>&1 || need_packages+=(dpkg-dev)

if [ ${#need_packages[@]} -gt 0 ]; then
  echo "setup: installing ${need_packages[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install ${need_packages[*]}; run: sudo apt-get install -y ${need_packages[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get not found; install ${need_packages[*]} with your package manager" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || { echo "setup: apt-get update failed (no package mirror reachable?)" >&2; exit 1; }
  apt-get install -y -qq "${need_packages[@]}" >/dev/null \
    || { echo "setup: apt-get install ${need_packages[*]} failed" >&2; exit 1; }
  if ! postgres_server; then
    echo "setup: apt-get installed postgresql, but no server programs are in /usr/lib/postgresql/*/bin; the PostgreSQL tests need them (is a postgresql-NN package installed? dpkg -l 'postgresql-[0-9]*')" >&2
    exit 1
  fi
fi

# nginx, for the provision-web tests (tests/run/services.rs). Lab hosts see this machine's `/`
# through a private overlay, so the package must be installed here — but never started here:
# Debian's default site listens on 0.0.0.0:80, and only lab hosts may run it, with the default
# site removed first. invoke-rc.d (which the package's maintainer scripts call to start it)
# asks /usr/sbin/policy-rc.d first; exit 101 means "not allowed". An existing policy-rc.d is
# put back afterwards, ours is removed.
# The body is a subshell so that its EXIT trap restores the guard however it ends; each step
# checks its own status because `set -e` does not apply inside a `cmd || …` list.
install_nginx_unstarted() (
  local guard=/usr/sbin/policy-rc.d saved=""
  if [ -e "$guard" ]; then
    saved=$(mktemp) && cp -p "$guard" "$saved" || return 1
  fi
  restore_guard() {
    if [ -n "$saved" ]; then mv -f "$saved" "$guard"; else rm -f "$guard"; fi
  }
  trap restore_guard EXIT
  printf '#!/bin/sh\n# opsgate setup.sh: no service starts while nginx is installed\nexit 101\n' >"$guard" \
    && chmod 0755 "$guard" || return 1
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq nginx >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx >/dev/null
  fi
)

if [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Those tests need root anyway (they skip without it), so this is not fatal here.
    echo "setup: nginx is missing; the provision-web tests need it: run scripts/setup.sh as root (it installs nginx without starting it)" >&2
  elif ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get not found; install nginx without starting it (the tests start it only inside lab hosts)" >&2
    exit 1
  else
    echo "setup: installing nginx (not started: a policy-rc.d guard is in place during the install)" >&2
    install_nginx_unstarted \
      || { echo "setup: installing nginx failed (no package mirror reachable?); the provision-web tests need it" >&2; exit 1; }
  fi
fi

# sshd's privilege separation directory; Debian creates it only when the service starts.
if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
