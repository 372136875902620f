// Minibatch indices: the GPU twin of `data::sampling` (sample_index, permute), for
// every engine that draws from a finite data set (the trainer, mean-field). Composed
// after philox.wgsl and a mulhilo; the sampling scheme (EPOCHS) and the Feistel width
// (FEISTEL_H, `data::sampling::feistel_half_bits(n)`) are the composer's constants, the
// set's size n and the stream tag are arguments.

// Draw with replacement from 0..n: a Philox word u → ⌊u·n / 2^32⌋ (`rng::index_below`).
fn sample_below(u: u32, n: u32) -> u32 {
    return mulhilo(u, n).x;
}

// π_{(replica, epoch)}(pos): 4-round Feistel network on 2·FEISTEL_H bits with cycle
// walking (data::sampling::permute), a bijection of 0..n.
fn sample_permute(replica: u32, epoch: u32, pos: u32, n: u32, tag: u32) -> u32 {
    let mask = (1u << FEISTEL_H) - 1u;
    var v = pos;
    loop {
        var l = v >> FEISTEL_H;
        var r = v & mask;
        for (var round = 0u; round < 4u; round++) {
            let f = philox4x32_10(vec4<u32>(replica, epoch, r | (round << 16u), tag ^ 0x5EED0000u), KEY).x;
            let nl = r;
            r = l ^ (f & mask);
            l = nl;
        }
        v = (l << FEISTEL_H) | r;
        if (v < n) {
            break;
        }
    }
    return v;
}

// Draw j of step k (batch b) without replacement: position p = k·b + j of the replica's
// stream of permutations, π_{p / n}(p mod n).
fn sample_epoch(replica: u32, k: u32, j: u32, b: u32, n: u32, tag: u32) -> u32 {
    let p = k * b + j;
    return sample_permute(replica, p / n, p % n, n, tag);
}

// Draw j of step k, whatever the scheme (one Philox block per draw with replacement:
// callers drawing 4 at a time use sample_below on the block's words).
fn sample_index(replica: u32, k: u32, j: u32, b: u32, n: u32, tag: u32) -> u32 {
    if (EPOCHS) {
        return sample_epoch(replica, k, j, b, n, tag);
    }
    let bits = philox4x32_10(vec4<u32>(replica, k, j / 4u, tag), KEY);
    return sample_below(bits[j % 4u], n);
}
