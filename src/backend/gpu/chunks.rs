//! Chunk sizing, shared by every GPU driver (small-d, finite-data trainer, mean-field):
//! how many replicas one chunk of device buffers holds. Each buffer must fit the
//! adapter's binding and buffer limits (llvmpipe binds 128 MiB), all of a chunk's
//! per-replica buffers together stay within one memory budget, and the driver's own
//! dispatch grid bounds the count. Results never depend on the chunk size (replicas
//! draw by their global index), so this only trades memory for fewer dispatches.

use anyhow::{bail, Result};

/// Device memory one chunk's per-replica buffers may take.
pub const MEMORY_BUDGET: u64 = 512 << 20;

/// What one replica of a job needs on the device.
pub struct ReplicaNeeds<'a> {
    /// Bytes per replica of each buffer (0: none; a fraction where a buffer holds one
    /// entry per group of replicas, e.g. per-workgroup partial sums).
    pub bytes: &'a [f64],
    /// Most replicas one chunk may hold (the driver's dispatch grid).
    pub max: u64,
    /// Chunks hold a multiple of this many replicas (the workgroup size, or 1).
    pub align: u64,
    /// The replica, for the error message (e.g. "width 4096, 64 samples").
    pub what: &'a str,
}

/// Replicas per chunk: the largest multiple of `align` within every limit above, then no
/// more than `forced` and than the `total` the job needs (each rounded down to `align`,
/// but at least `align`). Fails, naming the bytes a replica needs, when not even
/// `align` replicas fit.
pub fn chunk_replicas(
    limits: &wgpu::Limits,
    needs: &ReplicaNeeds,
    forced: Option<u64>,
    total: u64,
) -> Result<u64> {
    let align = needs.align.max(1);
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size) as f64;
    let mut fit = needs.max as f64;
    for &b in needs.bytes.iter().filter(|&&b| b > 0.0) {
        fit = fit.min(binding / b);
    }
    let sum: f64 = needs.bytes.iter().sum();
    fit = fit.min(MEMORY_BUDGET as f64 / sum.max(f64::MIN_POSITIVE));
    let fit = fit.floor().min(u64::MAX as f64) as u64 / align * align;
    if fit < align {
        bail!(
            "one replica ({}) needs {} bytes of GPU buffers, largest {}; the adapter binds at most \
             {binding} bytes per buffer and smflow gives a chunk {MEMORY_BUDGET} bytes: too large \
             for this device (use --backend cpu)",
            needs.what,
            sum.ceil(),
            needs.bytes.iter().cloned().fold(0.0, f64::max).ceil(),
        );
    }
    let want = forced
        .unwrap_or(u64::MAX)
        .min(fit)
        .min(total.max(1).div_ceil(align).saturating_mul(align));
    Ok((want / align * align).max(align))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(binding: u64) -> wgpu::Limits {
        wgpu::Limits {
            max_storage_buffer_binding_size: binding,
            max_buffer_size: u64::MAX,
            ..wgpu::Limits::default()
        }
    }

    fn needs(bytes: &[f64], max: u64, align: u64) -> ReplicaNeeds<'_> {
        ReplicaNeeds {
            bytes,
            max,
            align,
            what: "test",
        }
    }

    #[test]
    fn each_limit_binds() {
        let l = limits(128 << 20);
        // Binding: 128 MiB / 64 B = 2^21 replicas.
        let n = needs(&[64.0, 4.0], u64::MAX, 64);
        assert_eq!(chunk_replicas(&l, &n, None, u64::MAX).unwrap(), 1 << 21);
        // Budget: 512 MiB / (48 + 48 + 32) B = 2^22 replicas (bindings of 1 GiB).
        let n = needs(&[48.0, 48.0, 32.0], u64::MAX, 64);
        assert_eq!(
            chunk_replicas(&limits(1 << 30), &n, None, u64::MAX).unwrap(),
            1 << 22
        );
        // The dispatch grid, rounded down to the alignment.
        let n = needs(&[4.0], 65_535 * 64 + 5, 64);
        assert_eq!(chunk_replicas(&l, &n, None, u64::MAX).unwrap(), 65_535 * 64);
        // A per-workgroup buffer counts 1/64 per replica.
        let n = needs(&[4.0, 16.0 / 64.0], u64::MAX, 64);
        let got = chunk_replicas(&limits(1 << 16), &n, None, u64::MAX).unwrap();
        assert_eq!(got, 1 << 14);
    }

    #[test]
    fn forced_and_total_cap_it_and_alignment_holds() {
        let l = limits(128 << 20);
        let n = needs(&[8.0], u64::MAX, 64);
        assert_eq!(chunk_replicas(&l, &n, Some(1000), u64::MAX).unwrap(), 960);
        assert_eq!(chunk_replicas(&l, &n, Some(10), u64::MAX).unwrap(), 64);
        assert_eq!(chunk_replicas(&l, &n, None, 100).unwrap(), 128);
        assert_eq!(chunk_replicas(&l, &n, None, 0).unwrap(), 64);
        let n = needs(&[8.0], 65_535, 1);
        assert_eq!(chunk_replicas(&l, &n, Some(7), 1000).unwrap(), 7);
        assert_eq!(chunk_replicas(&l, &n, None, 3).unwrap(), 3);
    }

    #[test]
    fn too_large_a_replica_is_an_error_naming_it() {
        let n = needs(&[(200u64 << 20) as f64], u64::MAX, 1);
        let e = chunk_replicas(&limits(128 << 20), &n, None, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("one replica (test) needs 209715200 bytes"),
            "{e}"
        );
        assert!(e.contains("--backend cpu"), "{e}");
        let n = needs(&[(1u64 << 20) as f64], u64::MAX, 256);
        assert!(chunk_replicas(&limits(128 << 20), &n, None, 10).is_err());
    }
}
