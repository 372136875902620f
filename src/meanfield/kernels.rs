//! The CPU mean-field drift's hot loops, in lanes of `J` samples: a neuron's
//! pre-activations u_kj = w_k·θ_j, σ(u_kj) and σ'(u_kj) for J samples are one vector,
//! the dot products of G neurons run side by side in registers, and σ runs over blocks
//! of neurons small enough to stay in L1. The forward pass reads each neuron once, the
//! update pass reads it once more and writes its Δz (or, for an Euler step, z itself)
//! once; no n × B activations go through memory unless `drift::add_correction` needs them
//! kept. No GEMM packs the state: with d ≈ 16 and B ≈ 8 these products are too thin to
//! amortise packing (27% of the n = 2^16 bench under `matrixmultiply`, which this
//! replaced).
//!
//! Every sum runs in the scalar reference's order, each step `Real::add_product` or
//! `sub_product` as there (f64: a multiply then an add; f32: a fused multiply-add):
//! dot products over i from −0 as `model::dot`, the residual sums over k, Δa and Δw over
//! j from +0. So these loops give `drift::drift_reference`'s bits, in f64 and f32, at every
//! SIMD level (`per_level!`): `tests/meanfield_cpu.rs` and `tests/simd_levels.rs`.

use super::model::Activation;
use super::real::Real;

/// Samples per chunk, the lanes of one neuron's registers: one AVX-512 f64 vector, one
/// AVX2 f32 vector.
pub const J: usize = 8;

/// J values, one per sample of a chunk.
pub type Chunk<R> = [R; J];

/// The batch inputs `x` (B × d, row-major) as chunks: `xt[c·d + i][l] = θ_{cJ+l, i}`,
/// zero past B.
pub fn transpose_batch<R: Real>(x: &[R], d: usize, xt: &mut Vec<Chunk<R>>) {
    let b = x.len() / d;
    let chunks = b.div_ceil(J);
    xt.clear();
    xt.resize(chunks * d, [R::zero(); J]);
    for (j, row) in x.chunks_exact(d).enumerate() {
        for (i, v) in row.iter().enumerate() {
            xt[(j / J) * d + i][j % J] = *v;
        }
    }
}

/// The batch inputs `x` (B × d) as rows of chunks: `xr[j·⌈d/J⌉ + c][l] = θ_{j, cJ+l}`,
/// zero past d (the update pass's Δw, J coordinates at a time).
pub fn row_chunks<R: Real>(x: &[R], d: usize, xr: &mut Vec<Chunk<R>>) {
    let dc = d.div_ceil(J);
    xr.clear();
    xr.resize(x.len() / d * dc, [R::zero(); J]);
    for (j, row) in x.chunks_exact(d).enumerate() {
        for (i, v) in row.iter().enumerate() {
            xr[j * dc + i / J][i % J] = *v;
        }
    }
}

/// `v` per sample as chunks, zero past its length (c_j r_j for the update pass).
pub fn chunked<R: Real>(v: &[R], out: &mut Vec<Chunk<R>>) {
    out.clear();
    out.resize(v.len().div_ceil(J), [R::zero(); J]);
    for (j, x) in v.iter().enumerate() {
        out[j / J][j % J] = *x;
    }
}

/// Neurons whose sums run side by side. Each sum is a chain of dependent adds in the
/// reference's order (over i for u, over j for Δw); G independent chains keep the
/// pipeline busy where one would wait on each add's latency.
const G: usize = 8;

/// Values (neurons × samples) of a block's activations: u, σ and σ' of a block take
/// 24 KB in f64, within L1.
const BLOCK_VALUES: usize = 1024;

/// Neurons per block when each has `nc` chunks of samples: a multiple of G.
fn block_neurons(nc: usize) -> usize {
    (BLOCK_VALUES / (nc * J)).max(1).div_ceil(G) * G
}

/// u[g][l] = w_g·θ_l for the N neuron rows of `rows` (each d + 1 long, a then w) and the
/// chunk's samples (`xc`: its d rows), each summed over i in order from −0 (`model::dot`).
#[inline(always)]
fn pre_activations<R: Real, const N: usize>(rows: &[R], xc: &[Chunk<R>]) -> [Chunk<R>; N] {
    let (d, per) = (xc.len(), xc.len() + 1);
    // Each w_g sliced to exactly d, so that indexing it by i < d needs no bounds check.
    // (A loop, not `array::from_fn`, which stays an out-of-line call.)
    let mut w: [&[R]; N] = [&[]; N];
    for (g, wg) in w.iter_mut().enumerate() {
        *wg = &rows[g * per + 1..g * per + 1 + d];
    }
    let mut u = [[-R::zero(); J]; N];
    for (i, x) in xc.iter().enumerate() {
        for (ug, wg) in u.iter_mut().zip(&w) {
            let wi = wg[i];
            for l in 0..J {
                ug[l] = ug[l].add_product(wi, x[l]);
            }
        }
    }
    u
}

/// u, σ(u), σ'(u) of the m neurons of `rows` (rows of d + 1) at every chunk of the
/// batch (`xt`: d rows per chunk) into the first m·nc chunks of `u`, `s`, `ds` (neuron k,
/// chunk c at k·nc + c). The dot products G neurons at a time; then σ in one flat loop,
/// whose iterations are independent, so the CPU overlaps the long chain of each σ (a
/// polynomial by Horner, a division) with the next ones. A loop, not `array::map`: that
/// stays an out-of-line call, compiled without the caller's SIMD level.
#[inline(always)]
fn block_activations<R: Real>(
    act: Activation,
    rows: &[R],
    d: usize,
    xt: &[Chunk<R>],
    [u, s, ds]: [&mut [Chunk<R>]; 3],
) {
    let (per, nc) = (d + 1, xt.len() / d);
    let m = rows.len() / per;
    let whole = m / G * G;
    for (q, group) in rows[..whole * per].chunks_exact(G * per).enumerate() {
        for (c, xc) in xt.chunks_exact(d).enumerate() {
            let ug = pre_activations::<R, G>(group, xc);
            for (g, v) in ug.into_iter().enumerate() {
                u[(q * G + g) * nc + c] = v;
            }
        }
    }
    for k in whole..m {
        for (c, xc) in xt.chunks_exact(d).enumerate() {
            u[k * nc + c] = pre_activations::<R, 1>(&rows[k * per..(k + 1) * per], xc)[0];
        }
    }
    let len = m * nc;
    let values = s[..len].as_flattened_mut().iter_mut();
    for ((sv, dsv), uv) in values
        .zip(ds[..len].as_flattened_mut())
        .zip(u[..len].as_flattened())
    {
        let v = act.f(*uv);
        *sv = v;
        *dsv = act.df_given(*uv, v);
    }
}

/// Activations of every neuron, kept by the forward pass: u, σ(u), σ'(u) of neuron k at
/// the samples of chunk c at `k·⌈B/J⌉ + c` (lanes past B undefined), or nothing when
/// empty. The update pass then reads σ and σ' instead of recomputing them, and
/// `drift::add_correction` reads all three; `u` may be left empty when nothing needs it
/// (an Euler step), and is then not written.
pub struct Cache<'a, R> {
    pub u: &'a mut [Chunk<R>],
    pub s: &'a mut [Chunk<R>],
    pub ds: &'a mut [Chunk<R>],
}

impl<R> Cache<'_, R> {
    /// Keep nothing.
    pub fn none() -> Self {
        Cache {
            u: &mut [],
            s: &mut [],
            ds: &mut [],
        }
    }
    fn is_empty(&self) -> bool {
        self.s.is_empty()
    }
}

/// Block work space: u, σ, σ' of one block of neurons.
struct BlockBuffers<R> {
    u: Vec<Chunk<R>>,
    s: Vec<Chunk<R>>,
    ds: Vec<Chunk<R>>,
}

impl<R: Real> BlockBuffers<R> {
    /// Sized for `nb` neurons of `nc` chunks, unless `cache` holds everything (u only
    /// where the cache does not keep it).
    fn new(nb: usize, nc: usize, cache: &Cache<'_, R>) -> Self {
        let len = if cache.is_empty() { nb * nc } else { 0 };
        let len_u = if cache.u.is_empty() { nb * nc } else { 0 };
        BlockBuffers {
            u: vec![[R::zero(); J]; len_u],
            s: vec![[R::zero(); J]; len],
            ds: vec![[R::zero(); J]; len],
        }
    }

    /// The activations of neurons k0.. (`rows`): the cache's, or computed into the block
    /// buffers. Returns (σ, σ') of the block, neuron-major.
    #[inline(always)]
    fn of<'a>(
        &'a mut self,
        act: Activation,
        rows: &[R],
        (k0, d): (usize, usize),
        xt: &[Chunk<R>],
        cache: &'a Cache<'_, R>,
    ) -> (&'a [Chunk<R>], &'a [Chunk<R>]) {
        let nc = xt.len() / d;
        let len = rows.len() / (d + 1) * nc;
        if !cache.is_empty() {
            let at = k0 * nc..k0 * nc + len;
            return (&cache.s[at.clone()], &cache.ds[at]);
        }
        block_activations(
            act,
            rows,
            d,
            xt,
            [&mut self.u[..], &mut self.s[..], &mut self.ds[..]],
        );
        (&self.s[..len], &self.ds[..len])
    }
}

crate::per_level! {
    /// The forward pass: `acc[c][l] += a_k σ(u_k,cJ+l)` over the neurons `z` (rows
    /// (a_k, w_k) of d + 1), in order of k; `acc` has one chunk per chunk of `xt`. Keeps
    /// the activations in `cache` unless it is empty.
    pub fn forward_at<R: Real>(act: Activation, z: &[R], d: usize, xt: &[Chunk<R>], acc: &mut [Chunk<R>], cache: Cache<'_, R>) => forward_body
}

crate::per_level! {
    /// The update pass: Δz_k = (−Σ_j cr_j σ(u_kj), −Σ_j cr_j a_k σ'(u_kj) θ_j) of every
    /// neuron into `out` (the rows of Δz), with `cr` = c_j r_j as chunks, the batch as
    /// `xt` (`transpose_batch`) and `xr` (`row_chunks`), and the forward pass's `cache`.
    pub fn update_into_at<R: Real>(act: Activation, z: &[R], d: usize, xt: &[Chunk<R>], xr: &[Chunk<R>], cr: &[Chunk<R>], cache: &Cache<'_, R>, out: &mut [R]) => update_into_body
}

crate::per_level! {
    /// `update_into_at` added to `z` in place, block by block (each Δz_k depends only on
    /// z_k and the residuals): the Euler step with its Δz never stored.
    pub fn update_in_place_at<R: Real>(act: Activation, z: &mut [R], d: usize, xt: &[Chunk<R>], xr: &[Chunk<R>], cr: &[Chunk<R>], cache: &Cache<'_, R>) => update_in_place_body
}

/// One copy of the loop per activation (each passes `act` as a constant, so the inlined
/// `f` and `df_given` lose their `match`).
macro_rules! per_activation {
    ($act:expr, $each:ident($($arg:expr),*)) => {
        match $act {
            Activation::Tanh => $each(Activation::Tanh, $($arg),*),
            Activation::Sigmoid => $each(Activation::Sigmoid, $($arg),*),
            Activation::Relu => $each(Activation::Relu, $($arg),*),
            Activation::Linear => $each(Activation::Linear, $($arg),*),
        }
    };
}

#[inline(always)]
fn forward_body<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    xt: &[Chunk<R>],
    acc: &mut [Chunk<R>],
    cache: Cache<'_, R>,
) {
    #[inline(always)]
    fn each<R: Real>(
        act: Activation,
        z: &[R],
        d: usize,
        xt: &[Chunk<R>],
        acc: &mut [Chunk<R>],
        mut cache: Cache<'_, R>,
    ) {
        let (per, nc) = (d + 1, acc.len());
        let nb = block_neurons(nc);
        let mut buf = BlockBuffers::new(nb, nc, &cache);
        for (q, rows) in z.chunks(nb * per).enumerate() {
            let len = rows.len() / per * nc;
            let s: &[Chunk<R>] = if cache.is_empty() {
                block_activations(act, rows, d, xt, [&mut buf.u, &mut buf.s, &mut buf.ds]);
                &buf.s[..len]
            } else {
                let at = q * nb * nc..q * nb * nc + len;
                let Cache { u, s, ds } = &mut cache;
                // u into the cache when it keeps u, else into the block's own buffer.
                let u = if u.is_empty() {
                    &mut buf.u[..len]
                } else {
                    &mut u[at.clone()]
                };
                block_activations(
                    act,
                    rows,
                    d,
                    xt,
                    [u, &mut s[at.clone()], &mut ds[at.clone()]],
                );
                &cache.s[at]
            };
            // Each chunk's sums in registers over the block's neurons, added in order of
            // k as before (read-modify-writes of `acc` per neuron stayed scalar).
            for (c, sum) in acc.iter_mut().enumerate() {
                let mut t = *sum;
                for (zk, sk) in rows.chunks_exact(per).zip(s.chunks_exact(nc)) {
                    let (a, sc) = (zk[0], &sk[c]);
                    for l in 0..J {
                        t[l] = t[l].add_product(a, sc[l]);
                    }
                }
                *sum = t;
            }
        }
    }
    per_activation!(act, each(z, d, xt, acc, cache))
}

/// Work rows of the update of N neurons: M_gj = cr_j a_g σ'(u_gj) (`m[c][g]`: chunk c
/// of neuron g, one vector each), and Δw_g as chunks.
struct GroupWork<R, const N: usize> {
    m: Vec<[Chunk<R>; N]>,
    dw: Vec<[Chunk<R>; N]>,
}

impl<R: Real, const N: usize> GroupWork<R, N> {
    fn new(d: usize, cr: &[Chunk<R>]) -> Self {
        GroupWork {
            m: vec![[[R::zero(); J]; N]; cr.len()],
            dw: vec![[[R::zero(); J]; N]; d.div_ceil(J)],
        }
    }

    /// Δz of N neurons with outer weights `a` and activations `s`, `ds` (N·nc chunks,
    /// neuron-major), given the batch rows as chunks (`xr`) and c_j r_j in `cr`: returns
    /// each Δa and leaves Δw in `self.dw`. Both sums run over j in order from +0, as the
    /// reference's zeroed Δz rows; Δw J coordinates at a time, its partial sums in
    /// registers.
    #[inline(always)]
    fn delta(
        &mut self,
        a: [R; N],
        (s, ds): (&[Chunk<R>], &[Chunk<R>]),
        xr: &[Chunk<R>],
        cr: &[Chunk<R>],
    ) -> [R; N] {
        let (nc, dc) = (cr.len(), self.dw.len());
        let b = xr.len() / dc;
        let mut da = [R::zero(); N];
        for (c, crc) in cr.iter().enumerate() {
            for g in 0..N {
                let (sg, dsg) = (&s[g * nc + c], &ds[g * nc + c]);
                for l in 0..J.min(b - c * J) {
                    da[g] = da[g].sub_product(crc[l], sg[l]);
                }
                for l in 0..J {
                    self.m[c][g][l] = crc[l] * a[g] * dsg[l];
                }
            }
        }
        for (ic, dw) in self.dw.iter_mut().enumerate() {
            let mut acc = [[R::zero(); J]; N];
            for j in 0..b {
                let (x, mc) = (&xr[j * dc + ic], &self.m[j / J]);
                for (ag, mg) in acc.iter_mut().zip(mc) {
                    let mj = mg[j % J];
                    for l in 0..J {
                        ag[l] = ag[l].sub_product(mj, x[l]);
                    }
                }
            }
            *dw = acc;
        }
        da
    }

    /// Δz of the N neurons of `rows` (activations `s`, `ds`) into `out` (their rows of
    /// Δz).
    #[inline(always)]
    fn write(
        &mut self,
        rows: &[R],
        acts: (&[Chunk<R>], &[Chunk<R>]),
        xr: &[Chunk<R>],
        cr: &[Chunk<R>],
        out: &mut [R],
    ) {
        let per = rows.len() / N;
        let mut a = [R::zero(); N];
        for (g, ag) in a.iter_mut().enumerate() {
            *ag = rows[g * per];
        }
        let da = self.delta(a, acts, xr, cr);
        for (g, o) in out.chunks_exact_mut(per).enumerate() {
            o[0] = da[g];
            for (v, dw) in o[1..].chunks_mut(J).zip(&self.dw) {
                // A whole chunk as one fixed-size copy: `copy_from_slice` of a run-time
                // length is a memmove call per neuron and chunk (5% of the f32 run).
                match <&mut [R; J]>::try_from(&mut *v) {
                    Ok(whole) => *whole = dw[g],
                    Err(_) => v.copy_from_slice(&dw[g][..v.len()]),
                }
            }
        }
    }
}

/// Work space of the update pass.
struct UpdateWork<R> {
    buf: BlockBuffers<R>,
    group: GroupWork<R, G>,
    one: GroupWork<R, 1>,
}

impl<R: Real> UpdateWork<R> {
    fn new(d: usize, cr: &[Chunk<R>], cache: &Cache<'_, R>) -> Self {
        UpdateWork {
            buf: BlockBuffers::new(block_neurons(cr.len()), cr.len(), cache),
            group: GroupWork::new(d, cr),
            one: GroupWork::new(d, cr),
        }
    }

    /// Δz of the block of neurons k0.. (`rows`) into `out` (its rows of Δz).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn block(
        &mut self,
        act: Activation,
        (rows, k0): (&[R], usize),
        (d, xt, xr): (usize, &[Chunk<R>], &[Chunk<R>]),
        cr: &[Chunk<R>],
        cache: &Cache<'_, R>,
        out: &mut [R],
    ) {
        let (per, nc) = (d + 1, cr.len());
        let (s, ds) = self.buf.of(act, rows, (k0, d), xt, cache);
        let whole = rows.len() / (G * per) * G;
        let groups = rows
            .chunks_exact(G * per)
            .zip(out.chunks_exact_mut(G * per));
        for (q, (r, o)) in groups.enumerate() {
            let at = q * G * nc..(q + 1) * G * nc;
            self.group.write(r, (&s[at.clone()], &ds[at]), xr, cr, o);
        }
        let rest = rows[whole * per..]
            .chunks_exact(per)
            .zip(out[whole * per..].chunks_exact_mut(per));
        for (k, (r, o)) in (whole..).zip(rest) {
            let at = k * nc..(k + 1) * nc;
            self.one.write(r, (&s[at.clone()], &ds[at]), xr, cr, o);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update_into_body<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    xt: &[Chunk<R>],
    xr: &[Chunk<R>],
    cr: &[Chunk<R>],
    cache: &Cache<'_, R>,
    out: &mut [R],
) {
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn each<R: Real>(
        act: Activation,
        z: &[R],
        d: usize,
        xt: &[Chunk<R>],
        xr: &[Chunk<R>],
        cr: &[Chunk<R>],
        cache: &Cache<'_, R>,
        out: &mut [R],
    ) {
        let mut work = UpdateWork::new(d, cr, cache);
        let len = block_neurons(cr.len()) * (d + 1);
        for (q, (rows, o)) in z.chunks(len).zip(out.chunks_mut(len)).enumerate() {
            let k0 = q * block_neurons(cr.len());
            work.block(act, (rows, k0), (d, xt, xr), cr, cache, o);
        }
    }
    per_activation!(act, each(z, d, xt, xr, cr, cache, out))
}

#[inline(always)]
fn update_in_place_body<R: Real>(
    act: Activation,
    z: &mut [R],
    d: usize,
    xt: &[Chunk<R>],
    xr: &[Chunk<R>],
    cr: &[Chunk<R>],
    cache: &Cache<'_, R>,
) {
    #[inline(always)]
    fn each<R: Real>(
        act: Activation,
        z: &mut [R],
        d: usize,
        xt: &[Chunk<R>],
        xr: &[Chunk<R>],
        cr: &[Chunk<R>],
        cache: &Cache<'_, R>,
    ) {
        let mut work = UpdateWork::new(d, cr, cache);
        let nb = block_neurons(cr.len());
        let mut dz = vec![R::zero(); nb * (d + 1)];
        for (q, rows) in z.chunks_mut(nb * (d + 1)).enumerate() {
            let dz = &mut dz[..rows.len()];
            work.block(act, (rows, q * nb), (d, xt, xr), cr, cache, dz);
            rows.iter_mut().zip(dz.iter()).for_each(|(v, dv)| *v += *dv);
        }
    }
    per_activation!(act, each(z, d, xt, xr, cr, cache))
}
