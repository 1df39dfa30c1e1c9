# shellcheck shell=bash
# The one nightly toolchain of this project, sourced (not run) by the nightly-only gates:
# scripts/miri.sh (Miri), scripts/sanitizers.sh (ASan and TSan with -Zbuild-std) and
# scripts/fuzz.sh (cargo-fuzz). They build with `cargo +"$FFID_NIGHTLY"` and never with
# the undated `nightly`, which nothing here installs, updates or uses.
#
# The toolchain is dated so that every machine (a fresh CI machine included) runs the same
# compiler and the same Miri: an undated nightly moves under the gates from one day to
# the next. Moving it is a deliberate edit of the one line below, and of nothing else;
# rerun scripts/miri.sh, scripts/sanitizers.sh asan|tsan and scripts/fuzz.sh on the new
# date before landing it.
FFID_NIGHTLY=nightly-2026-10-29
export FFID_NIGHTLY

# ffid_nightly_install [component...]
# Installs the pinned toolchain (profile minimal) with the given rustup components, but
# only when the toolchain or one of those components is missing; otherwise it does not
# touch rustup at all. Miri needs `miri rust-src`, -Zbuild-std needs `rust-src`,
# cargo-fuzz needs the toolchain alone.
ffid_nightly_install() {
    local c host installed missing=()
    if host=$(rustup run "$FFID_NIGHTLY" rustc -vV 2>/dev/null | sed -n 's/^host: //p') &&
        [ -n "$host" ] &&
        installed=$(rustup component list --toolchain "$FFID_NIGHTLY" --installed 2>/dev/null); then
        for c in "$@"; do
            # Installed components are listed with the host triple (miri-x86_64-...), or
            # bare when they are target-independent (rust-src).
            grep -qxF -e "$c" -e "$c-$host" <<<"$installed" || missing+=("$c")
        done
        [ ${#missing[@]} -gt 0 ] || return 0
        echo "== installing ${missing[*]} for $FFID_NIGHTLY"
    else
        echo "== installing $FFID_NIGHTLY${1:+ with $*}"
    fi
    local args=(toolchain install "$FFID_NIGHTLY" --profile minimal --no-self-update)
    if [ $# -gt 0 ]; then
        args+=(--component "$(
            IFS=,
            echo "$*"
        )")
    fi
    rustup "${args[@]}"
}
