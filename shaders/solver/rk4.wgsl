// The classical RK4 step one coordinate at a time: the WGSL twin of `solver::rk4`
// (src/solver/rk4.rs), in its order of operations. After the slope k of stage st
// (0 … 3), `rk4_coord` gives the weighted sum of the slopes so far (weights 1, 2, 2, 1,
// summed left to right) and the coordinate of the next stage point, x0 + (h/2)k,
// x0 + (h/2)k, x0 + h k; after stage 3, the coordinate at the end of the step,
// x0 + h6·sum (h6 = h/6, as the caller rounds it). Each engine keeps its state where it must (registers, storage, one
// dispatch per stage) and calls this for every coordinate.
// Needs `alias real`.

struct Rk4Coord {
    sum: real,
    next: real,
}

fn rk4_coord(st: u32, x0: real, sum: real, k: real, h: real, h6: real) -> Rk4Coord {
    if (st == 0u) {
        return Rk4Coord(k, x0 + real(0.5) * h * k);
    }
    if (st == 1u) {
        let s = sum + real(2.0) * k;
        return Rk4Coord(s, x0 + real(0.5) * h * k);
    }
    if (st == 2u) {
        let s = sum + real(2.0) * k;
        return Rk4Coord(s, x0 + h * k);
    }
    let s = sum + k;
    return Rk4Coord(s, x0 + h6 * s);
}
