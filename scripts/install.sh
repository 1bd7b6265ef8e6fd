#!/usr/bin/env bash
# install.sh — install Ferry under a prefix, or remove exactly what it installed.
#
#   scripts/install.sh install   [PREFIX]    (also: make install PREFIX=…)
#   scripts/install.sh uninstall [PREFIX]    (also: make uninstall PREFIX=…)
#
# PREFIX defaults to $PREFIX, else /usr/local. What goes where:
#   PREFIX/bin/ferry                                   the host
#   PREFIX/lib/ferry/plugins/libFerry*.so              the built-in plugins (the
#                                                      installed ferry's default
#                                                      plugin folder)
#   PREFIX/include/ferry/ferry_plugin.h                the plugin ABI, for C plugins
#   PREFIX/lib/pkgconfig/ferry-plugin.pc               cc $(pkg-config --cflags ferry-plugin)
#   PREFIX/share/ferry/swift/FerryPluginKit/           the Swift SDK as a package a
#                                                      plugin's Package.swift depends on by path
#   PREFIX/share/doc/ferry/{writing-a-plugin,plugin-abi}.md  the plugin author's guide and contract
#   PREFIX/share/ferry/install-manifest                every file above, for uninstall
#
# Install builds the release (`swift build -c release`, host and each plugin
# product of Package.swift) first; FERRY_INSTALL_NO_BUILD=1 installs the
# release build as it is (every file must be there), and
# FERRY_INSTALL_CONFIGURATION=debug installs the debug build instead (for tests
# that have just built it and need an installed tree, not speed). DESTDIR stages the files
# under another root (as a package build or the Containerfile does) while the
# paths written into the pkg-config file stay PREFIX's.
#
# Files are installed 0755/0644 and folders 0755: ferry refuses plugins that a
# user other than root or the one running it can write (docs/07-production.md).
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'install: %s\n' "$*" >&2; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 2; }

action="${1:-}"
case "$action" in
    install | uninstall) ;;
    *) die "usage: scripts/install.sh install|uninstall [PREFIX]" ;;
esac
prefix="${2:-${PREFIX:-/usr/local}}"
[ -n "$prefix" ] || die "PREFIX is empty"
case "$prefix" in
    /*) ;;
    *) prefix="$(pwd)/$prefix" ;;
esac
prefix="${prefix%/}"
[ -n "$prefix" ] || prefix="/"
root="${DESTDIR:-}${prefix}"
manifest_rel="share/ferry/install-manifest"

uninstall() {
    local manifest="$root/$manifest_rel"
    [ -f "$manifest" ] || die "$manifest: not found (nothing installed under $prefix, or installed another way)"
    local count=0 path
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        case "$path" in /* | *..*) die "$manifest: refusing the entry '$path'" ;; esac
        if [ -e "$root/$path" ] || [ -L "$root/$path" ]; then
            rm -f -- "$root/$path"
            count=$((count + 1))
        fi
    done <"$manifest"
    rm -f -- "$manifest"
    # Only folders Ferry owns, and only once empty; bin, lib, include, share stay.
    find "$root/share/ferry" "$root/share/doc/ferry" "$root/lib/ferry" "$root/include/ferry" -depth -type d -empty -delete 2>/dev/null || true
    log "removed $count files from $prefix"
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi

# Non-login shells (e.g. CI) may not have sourced /etc/profile.d/swift.sh.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi
cd "$REPO_ROOT"

# Every `.dynamic` library product of Package.swift is a plugin.
mapfile -t plugins < <(sed -n 's/^ *\.library(name: "\([A-Za-z0-9]*\)", type: \.dynamic.*/\1/p' Package.swift)
[ "${#plugins[@]}" -gt 0 ] || die "no dynamic library products found in Package.swift"

configuration="${FERRY_INSTALL_CONFIGURATION:-release}"
case "$configuration" in
    release | debug) ;;
    *) die "FERRY_INSTALL_CONFIGURATION must be release or debug (got '$configuration')" ;;
esac
if [ "${FERRY_INSTALL_NO_BUILD:-0}" != 1 ]; then
    # One build of every product (ferry and each plugin): one plan, one wait for .build's lock.
    log "swift build -c $configuration (ferry and ${#plugins[@]} plugins)"
    swift build -c "$configuration"
fi
bin="$(swift build -c "$configuration" --show-bin-path)"
[ -x "$bin/ferry" ] || die "$bin/ferry: not built"
for plugin in "${plugins[@]}"; do [ -f "$bin/lib$plugin.so" ] || die "$bin/lib$plugin.so: not built"; done

installed=()
put() { # put MODE SOURCE RELATIVE-DESTINATION
    install -D -m "$1" "$2" "$root/$3"
    installed+=("$3")
}

put 0755 "$bin/ferry" bin/ferry
for plugin in "${plugins[@]}"; do put 0755 "$bin/lib$plugin.so" "lib/ferry/plugins/lib$plugin.so"; done
put 0644 Sources/CFerryPlugin/include/ferry_plugin.h include/ferry/ferry_plugin.h
for doc in writing-a-plugin.md plugin-abi.md; do put 0644 "docs/$doc" "share/doc/ferry/$doc"; done

version="$(sed -n 's/^#define FERRY_ABI_MAJOR \([0-9]*\).*/\1/p' Sources/CFerryPlugin/include/ferry_plugin.h).$(sed -n 's/^#define FERRY_ABI_MINOR \([0-9]*\).*/\1/p' Sources/CFerryPlugin/include/ferry_plugin.h)"
[ "$version" != "." ] || die "cannot read FERRY_ABI_MAJOR/MINOR from ferry_plugin.h"
pc="$(mktemp)"
trap 'rm -f "$pc"' EXIT
cat >"$pc" <<EOF
prefix=$prefix
includedir=\${prefix}/include
plugindir=\${prefix}/lib/ferry/plugins
swiftsdkdir=\${prefix}/share/ferry/swift/FerryPluginKit

Name: ferry-plugin
Description: The Ferry plugin ABI (ferry_plugin.h); batches are BSON, read and written with libbson-1.0
Version: $version
Cflags: -I\${includedir}/ferry
EOF
put 0644 "$pc" lib/pkgconfig/ferry-plugin.pc

# The Swift SDK: its sources, the ABI target it wraps, libbson's module map,
# and a manifest of its own so a package outside this tree can depend on it.
sdk=share/ferry/swift/FerryPluginKit
while IFS= read -r file; do
    put 0644 "$file" "$sdk/$file"
done < <(find Sources/FerryPluginKit Sources/CFerryPlugin Sources/CLibBSON -type f | sort)
sdk_manifest="$(mktemp)"
trap 'rm -f "$pc" "$sdk_manifest"' EXIT
cat >"$sdk_manifest" <<'EOF'
// swift-tools-version:6.0
import PackageDescription

// FerryPluginKit, the Swift SDK for Ferry plugins, as installed by
// `make install`: a plugin package depends on it with .package(path: …).
// Build plugins with the toolchain that built the ferry they load into.
let package = Package(
    name: "FerryPluginKit",
    products: [
        .library(name: "FerryPluginKit", targets: ["FerryPluginKit"]),
    ],
    targets: [
        .target(name: "CFerryPlugin", path: "Sources/CFerryPlugin"),
        .systemLibrary(
            name: "CLibBSON", path: "Sources/CLibBSON", pkgConfig: "libbson-1.0",
            providers: [.apt(["libbson-dev"])]),
        .target(
            name: "FerryPluginKit", dependencies: ["CFerryPlugin", "CLibBSON"],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
    ]
)
EOF
put 0644 "$sdk_manifest" "$sdk/Package.swift"

manifest="$(mktemp)"
trap 'rm -f "$pc" "$sdk_manifest" "$manifest"' EXIT
printf '%s\n' "${installed[@]}" "$manifest_rel" >"$manifest"
install -D -m 0644 "$manifest" "$root/$manifest_rel"
log "installed ${#installed[@]} files under ${DESTDIR:+$DESTDIR}$prefix (ferry, ${#plugins[@]} plugins, ferry_plugin.h, ferry-plugin.pc, the Swift SDK, the plugin docs)"
