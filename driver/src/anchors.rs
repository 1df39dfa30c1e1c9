//! nim-ffi's figures, the anchors each row is set beside.

use crate::knobs::Setup;

/// nim-ffi's event delivery figures (events/s, p50 µs), 512 B payloads.
pub(crate) fn nim_ffi_events(threads: usize) -> Option<(f64, Option<f64>)> {
    Some(match threads {
        1 => (42_600.0, Some(17.7)),
        2 => (69_800.0, Some(31.5)),
        4 => (86_000.0, Some(38.9)),
        _ => return None,
    })
}

/// nim-ffi's figure for a row (calls/s, p50 µs), from `../shared/anchors.md`.
pub(crate) fn nim_ffi(setup: Setup, lane: &str, threads: usize) -> Option<(f64, Option<f64>)> {
    // nim-ffi's sync calls block: both our sync (host spins) and blocking lanes compare.
    let sync = lane == "sync" || lane == "blocking";
    Some(match (setup, sync, threads) {
        (Setup::Scalar, true, 1) => (76_800.0, Some(13.6)),
        (Setup::Scalar, true, 2) => (114_000.0, Some(13.3)),
        (Setup::Scalar, true, 4) => (143_000.0, Some(23.3)),
        (Setup::Scalar, false, 1) => (66_700.0, None),
        (Setup::Scalar, false, 2) => (62_800.0, None),
        (Setup::Scalar, false, 4) => (58_200.0, None),
        (Setup::Payload(64), true, 1) => (76_600.0, Some(11.1)),
        (Setup::Payload(512), true, 1) => (66_800.0, Some(15.3)),
        (Setup::Payload(4096), true, 1) => (31_000.0, Some(32.3)),
        (Setup::Payload(65536), true, 1) => (3_100.0, Some(318.0)),
        (Setup::Payload(64), false, 1) => (63_400.0, None),
        (Setup::Payload(512), false, 1) => (60_000.0, None),
        (Setup::Payload(4096), false, 1) => (34_100.0, None),
        (Setup::Payload(65536), false, 1) => (3_190.0, None),
        _ => return None,
    })
}
