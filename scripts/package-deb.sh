#!/usr/bin/env bash
# Builds the Debian package of sms-reseller and prints its path on the last line:
#   bash scripts/package-deb.sh                 release build (Swift's runtime linked in statically), then the .deb
#   OUT=dir VERSION=1.2.3 bash scripts/package-deb.sh
# What the package holds (docs/deployment.md):
#   /usr/lib/sms-reseller/sms-reseller                      the binary, stripped of debug information
#   /usr/lib/sms-reseller/sms-reseller_ResellerCore.resources/Migrations/   the migrations: SwiftPM's resource bundle,
#                                                           which the binary looks for beside its real path
#   /usr/bin/sms-reseller -> ../lib/sms-reseller/sms-reseller
#   /lib/systemd/system/sms-reseller.service, sms-reseller-migrate.service   (deploy/systemd/)
#   /etc/sms-reseller/env                                   a conffile, 0640 root:sms-reseller (deploy/debian/env)
#   /usr/share/doc/sms-reseller/                            deployment.md, configuration.md, operations.md
# and postinst/prerm/postrm from deploy/debian/. Depends: what dpkg-shlibdeps finds the binary links (libpq5, libhpdf,
# zlib, libstdc++, libc), plus fonts-dejavu-core (invoice PDFs), ca-certificates (an https upstream) and adduser.
# SMS_RESELLER_BIN=path packages that binary instead of building (its resource bundle must sit beside it, and it must
# not link Swift's runtime from the toolchain: build it with --static-swift-stdlib).
set -euo pipefail
SCRIPT_NAME=package-deb
cd "$(dirname "$0")/.."
project=$(pwd)
source scripts/lib/common.sh

ensure_packages dpkg-dev binutils libpq-dev zlib1g-dev pkg-config libhpdf-dev

if [ -n "${SMS_RESELLER_BIN:-}" ]; then
    binary=$SMS_RESELLER_BIN
    [ -x "$binary" ] || die "SMS_RESELLER_BIN=$binary is not an executable file"
else
    ensure_swift
    log "building sms-reseller (release, Swift's runtime linked statically)"
    swift build -c release --product sms-reseller --static-swift-stdlib
    binary="$(swift build -c release --show-bin-path)/sms-reseller"
fi
bindir=$(cd "$(dirname "$binary")" && pwd -P)

# The toolchain is not on the machines the package goes to: nothing may come from it.
if ldd "$binary" | grep -q '/opt/swift\|not found'; then
    ldd "$binary" | grep '/opt/swift\|not found' >&2
    die "$binary links libraries from the Swift toolchain or missing ones; build it with --static-swift-stdlib"
fi

version=${VERSION:-0+git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S).$(git rev-parse --short=10 HEAD)}
architecture=$(dpkg --print-architecture)
out=${OUT:-$project/.build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/sms-reseller-deb.XXXXXX)
at_exit "rm -rf $(printf %q "$work")"
root=$work/root
log "staging version $version in $root"

install -d "$root/usr/lib/sms-reseller" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/sms-reseller" \
    "$root/usr/share/doc/sms-reseller" "$root/DEBIAN"
strip --strip-debug -o "$root/usr/lib/sms-reseller/sms-reseller" "$binary"
chmod 0755 "$root/usr/lib/sms-reseller/sms-reseller"
# Every resource bundle the binary names (SwiftPM's generated accessor looks for <package>_<target>.resources
# beside the executable's real path, so a symlink in /usr/bin finds them).
bundles=$(strings "$binary" | grep -oE '^[A-Za-z0-9_.-]+_[A-Za-z0-9_]+\.resources$' | sort -u)
[ -n "$bundles" ] || die "no resource bundle named in $binary (the migrations live in one)"
for bundle in $bundles; do
    [ -d "$bindir/$bundle" ] || die "$bundle is missing beside $binary"
    cp -R "$bindir/$bundle" "$root/usr/lib/sms-reseller/"
done
[ -n "$(ls "$root/usr/lib/sms-reseller/sms-reseller_ResellerCore.resources/Migrations/"*.sql 2>/dev/null)" ] \
    || die "no migrations in the resource bundle"
ln -s ../lib/sms-reseller/sms-reseller "$root/usr/bin/sms-reseller"
install -m 0644 deploy/systemd/sms-reseller.service deploy/systemd/sms-reseller-migrate.service "$root/lib/systemd/system/"
install -m 0640 deploy/debian/env "$root/etc/sms-reseller/env"
install -m 0644 docs/deployment.md docs/configuration.md docs/operations.md "$root/usr/share/doc/sms-reseller/"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
printf '/etc/sms-reseller/env\n' >"$root/DEBIAN/conffiles"
find "$root" -type d -exec chmod 0755 {} +

# The run-time libraries, as dpkg-shlibdeps works them out (it wants a debian/control beside it).
mkdir -p "$work/src/debian"
printf 'Source: sms-reseller\n\nPackage: sms-reseller\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/lib/sms-reseller/sms-reseller" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies"
depends="$shlibs, fonts-dejavu-core, ca-certificates, adduser"

cat >"$root/DEBIAN/control" <<EOF
Package: sms-reseller
Version: $version
Architecture: $architecture
Maintainer: sms-reseller operators <root@localhost>
Section: net
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Suggests: postgresql, postgresql-15-partman, nginx
Description: multi-tenant SMS reseller and billing backend
 The sms-reseller service in front of the 1601SMS HTTP gateway: resellers, sub-accounts,
 a double-entry ledger, versioned price lists, sending through a transactional outbox,
 delivery reports, webhooks and invoices. Its state is in PostgreSQL.
 .
 Configure /etc/sms-reseller/env, then: systemctl enable --now sms-reseller
EOF

deb="$out/sms-reseller_${version}_${architecture}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
log "Depends: $depends"
log "built $deb ($(du -h "$deb" | cut -f1))"
printf '%s\n' "$deb"
