//! A table-driven DES and triple-DES (EDE) core, written from FIPS 46-3.
//!
//! # How it is built
//!
//! Every table below the FIPS ones is computed at compile time by `const fn`s from the FIPS
//! tables, so nothing here is a pasted magic number that has to be trusted:
//!
//! - [`SP`]: for each S-box, its 64 outputs already placed in their nibble and sent through the
//!   permutation P (the "SP" tables, 8 x 64 `u32`), so a round's f function is eight lookups
//!   and seven ORs or XORs.
//! - [`PC1_NIBBLE`] and [`PC2_PIECES`]: PC-1 by the key's sixteen nibbles and PC-2 (with the
//!   packing of the round key) by seven-bit pieces of C‖D, so a key schedule is 16 + 16 x 8
//!   lookups with no bit loops.
//!
//! The initial permutation IP and its inverse are the usual five swap-and-mask steps (a bit
//! matrix transpose); the expansion E is not done at all, because the halves are kept rotated
//! left by one bit, which puts every S-box's six input bits at a byte boundary of either the
//! half or the half rotated by four bits. Compile-time assertions check the swap steps against
//! the IP and IP⁻¹ tables, the extraction of the S-box inputs against the E table, and the
//! packing of the round keys against that extraction, on every single input bit; all of them
//! are linear in the bits, so that proves them equal on every input.
//!
//! Triple DES (EDE) does IP once, 48 rounds, and IP⁻¹ once: the IP of the second and third
//! passes would only undo the IP⁻¹ of the pass before.
//!
//! # Secrets
//!
//! A [`DesKeySchedule`] holds key-derived round keys; it zeroizes them on drop, is not
//! `Clone`, and its `Debug` shows nothing of them. Table lookups are indexed by key- and
//! data-dependent values, like every table-driven DES: this code is not hardened against
//! cache-timing observers sharing the CPU.

use core::fmt;

use zeroize::Zeroize;

// ---------------------------------------------------------------------------------------
// The FIPS 46-3 tables. Bit numbers are 1-based and count from the most significant bit,
// as in the standard.
// ---------------------------------------------------------------------------------------

/// The initial permutation IP: output bit i is input bit `IP[i - 1]`.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, //
    60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, //
    64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, //
    59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, //
    63, 55, 47, 39, 31, 23, 15, 7, //
];

/// The final permutation IP⁻¹.
const FP: [u8; 64] = [
    40, 8, 48, 16, 56, 24, 64, 32, //
    39, 7, 47, 15, 55, 23, 63, 31, //
    38, 6, 46, 14, 54, 22, 62, 30, //
    37, 5, 45, 13, 53, 21, 61, 29, //
    36, 4, 44, 12, 52, 20, 60, 28, //
    35, 3, 43, 11, 51, 19, 59, 27, //
    34, 2, 42, 10, 50, 18, 58, 26, //
    33, 1, 41, 9, 49, 17, 57, 25, //
];

/// The expansion E (32 -> 48 bits). Not used at run time (see the module documentation); the
/// compile-time checks [`extraction_matches_e`] and [`round_key_meets_its_groups`] hold the
/// round function to it.
const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, //
    4, 5, 6, 7, 8, 9, //
    8, 9, 10, 11, 12, 13, //
    12, 13, 14, 15, 16, 17, //
    16, 17, 18, 19, 20, 21, //
    20, 21, 22, 23, 24, 25, //
    24, 25, 26, 27, 28, 29, //
    28, 29, 30, 31, 32, 1, //
];

/// The permutation P applied to the S-box outputs.
const P: [u8; 32] = [
    16, 7, 20, 21, //
    29, 12, 28, 17, //
    1, 15, 23, 26, //
    5, 18, 31, 10, //
    2, 8, 24, 14, //
    32, 27, 3, 9, //
    19, 13, 30, 6, //
    22, 11, 4, 25, //
];

/// Permuted choice 1 (64 key bits -> C0 and D0, 28 bits each; the parity bits 8, 16, ..., 64
/// are not selected).
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, //
    1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, //
    19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, //
    7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, //
    21, 13, 5, 28, 20, 12, 4, //
];

/// Permuted choice 2 (CD, 56 bits -> the 48-bit round key).
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, //
    3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, //
    16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, //
    30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, //
    46, 42, 50, 36, 29, 32, //
];

/// The left rotations of C and D before each of the 16 rounds.
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// The S-boxes S1..S8: row (outer bits b1 b6) by column (inner bits b2..b5).
const S: [[[u8; 16]; 4]; 8] = [
    [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7],
        [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
        [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0],
        [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    ],
    [
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10],
        [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
        [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15],
        [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    ],
    [
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8],
        [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
        [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7],
        [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    ],
    [
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15],
        [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
        [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4],
        [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    ],
    [
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9],
        [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
        [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14],
        [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    ],
    [
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11],
        [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
        [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6],
        [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    ],
    [
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1],
        [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
        [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2],
        [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    ],
    [
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7],
        [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
        [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8],
        [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ],
];

// ---------------------------------------------------------------------------------------
// Compile-time construction of the working tables.
// ---------------------------------------------------------------------------------------

/// Applies a FIPS-style permutation table: `input` holds `in_bits` bits (right-aligned), and
/// output bit i (1-based from the most significant of `table.len()` bits) is input bit
/// `table[i - 1]` (1-based from the most significant of `in_bits`).
const fn permute(input: u64, in_bits: u32, table: &[u8]) -> u64 {
    let mut out = 0u64;
    let mut i = 0;
    while i < table.len() {
        let bit = (input >> (in_bits - table[i] as u32)) & 1;
        out = (out << 1) | bit;
        i += 1;
    }
    out
}

/// S-box `j`'s output for the six-bit input `v` (`v`'s most significant bit is b1), placed in
/// the nibble S-box `j` fills (bits 4j+1..4j+4 of the 32), permuted by P, then rotated left
/// by one bit to match the rotated halves the rounds work on.
const fn sp_entry(j: usize, v: usize) -> u32 {
    let row = ((v >> 4) & 2) | (v & 1);
    let col = (v >> 1) & 0xF;
    let nibble = S[j][row][col] as u64;
    let placed = nibble << (28 - 4 * j);
    let permuted = permute(placed, 32, &P) as u32;
    permuted.rotate_left(1)
}

const fn sp_tables() -> [[u32; 64]; 8] {
    let mut t = [[0u32; 64]; 8];
    let mut j = 0;
    while j < 8 {
        let mut v = 0;
        while v < 64 {
            t[j][v] = sp_entry(j, v);
            v += 1;
        }
        j += 1;
    }
    t
}

/// The combined S-box and P tables, one per S-box, in the rotated representation.
static SP: [[u32; 64]; 8] = sp_tables();

/// PC-1 by nibble: `PC1_NIBBLE[n][v]` is the 56-bit C‖D that PC-1 makes from a key whose
/// nibble `n` (0 = the most significant) is `v` and all other bits are zero. PC-1 of a key is
/// the OR over its sixteen nibbles.
const fn pc1_tables() -> [[u64; 16]; 16] {
    let mut t = [[0u64; 16]; 16];
    let mut n = 0;
    while n < 16 {
        let mut v = 0;
        while v < 16 {
            t[n][v] = permute((v as u64) << (60 - 4 * n), 64, &PC1);
            v += 1;
        }
        n += 1;
    }
    t
}

static PC1_NIBBLE: [[u64; 16]; 16] = pc1_tables();

/// Packs the eight six-bit groups g0..g7 of a 48-bit round key into two words, one group
/// per byte: `[g0 g2 g4 g6]` and `[g1 g3 g5 g7]`.
const fn pack_groups(k48: u64) -> [u32; 2] {
    [
        (group(k48, 0) << 24) | (group(k48, 2) << 16) | (group(k48, 4) << 8) | group(k48, 6),
        (group(k48, 1) << 24) | (group(k48, 3) << 16) | (group(k48, 5) << 8) | group(k48, 7),
    ]
}

/// A 48-bit round key as the round function takes it: [`pack_groups`] with the first word
/// rotated left by four bits (see [`sbox_inputs`]).
const fn pack_round_key(k48: u64) -> [u32; 2] {
    let [even, odd] = pack_groups(k48);
    [even.rotate_left(4), odd]
}

/// Six-bit group `j` (0 = the first, for S1) of a 48-bit round key.
const fn group(k48: u64, j: u32) -> u32 {
    ((k48 >> (42 - 6 * j)) & 0x3F) as u32
}

/// PC-2 by seven-bit pieces of C‖D: entry `[m][v]` is the round key, packed by
/// [`pack_round_key`] into one `u64` (first word in the low half), that PC-2 makes when piece
/// `m` of the 56-bit C‖D (0 = the most significant; 0..3 are C, 4..7 are D) is `v` and every
/// other bit is zero. PC-2 and the packing only move bits, so the round key of any C‖D is the
/// OR of its eight pieces' entries.
const fn pc2_tables() -> [[u64; 128]; 8] {
    let mut t = [[0u64; 128]; 8];
    let mut m = 0;
    while m < 8 {
        let mut v = 0;
        while v < 128 {
            let [k0, k1] = pack_round_key(permute((v as u64) << (49 - 7 * m), 56, &PC2));
            t[m][v] = ((k1 as u64) << 32) | k0 as u64;
            v += 1;
        }
        m += 1;
    }
    t
}

static PC2_PIECES: [[u64; 128]; 8] = pc2_tables();

// ---------------------------------------------------------------------------------------
// IP and IP⁻¹ by swap-and-mask.
// ---------------------------------------------------------------------------------------

/// Exchanges the bits of `a` selected by `mask << shift` with the bits of `b` selected by
/// `mask`.
#[inline(always)]
const fn swap_bits(a: u32, b: u32, shift: u32, mask: u32) -> (u32, u32) {
    let t = ((a >> shift) ^ b) & mask;
    (a ^ (t << shift), b ^ t)
}

/// IP of the block `(l, r)` (its first and last four bytes, big-endian): a transpose of the
/// 8 x 8 bit matrix of the block, done as five exchanges of bit groups between the halves.
/// Returns (L0, R0).
#[inline(always)]
const fn initial_permutation(l: u32, r: u32) -> (u32, u32) {
    let (l, r) = swap_bits(l, r, 4, 0x0F0F_0F0F);
    let (l, r) = swap_bits(l, r, 16, 0x0000_FFFF);
    let (r, l) = swap_bits(r, l, 2, 0x3333_3333);
    let (r, l) = swap_bits(r, l, 8, 0x00FF_00FF);
    swap_bits(l, r, 1, 0x5555_5555)
}

/// IP⁻¹ of the preoutput `(l, r)` = (R16, L16): the same exchanges in reverse order (each is
/// its own inverse). Returns the first and last four bytes of the output block.
#[inline(always)]
const fn final_permutation(l: u32, r: u32) -> (u32, u32) {
    let (l, r) = swap_bits(l, r, 1, 0x5555_5555);
    let (r, l) = swap_bits(r, l, 8, 0x00FF_00FF);
    let (r, l) = swap_bits(r, l, 2, 0x3333_3333);
    let (l, r) = swap_bits(l, r, 16, 0x0000_FFFF);
    swap_bits(l, r, 4, 0x0F0F_0F0F)
}

/// True if [`initial_permutation`] and [`final_permutation`] are the FIPS IP and IP⁻¹ on every
/// single input bit (both are bit permutations, so this proves them equal on all inputs).
const fn permutations_match_tables() -> bool {
    let mut bit = 0;
    while bit < 64 {
        let x = 1u64 << bit;
        let (l, r) = initial_permutation((x >> 32) as u32, x as u32);
        if (((l as u64) << 32) | r as u64) != permute(x, 64, &IP) {
            return false;
        }
        let (l, r) = final_permutation((x >> 32) as u32, x as u32);
        if (((l as u64) << 32) | r as u64) != permute(x, 64, &FP) {
            return false;
        }
        bit += 1;
    }
    true
}

/// The six-bit inputs of S1..S8 in a round, from `w` = x ^ k0 and `z` = x ^ k1, where x is
/// the right half rotated left by one bit and (k0, k1) the round key as [`pack_round_key`]
/// packs it. With x rotated, the groups for S2, S4, S6 and S8 are the low six bits of each
/// byte of x, and those for S1, S3, S5, S7 the same of x rotated right by four; k0 carries
/// that rotation in advance so it is not on the round's critical path, which leaves S1's
/// input as the one that wraps around.
#[inline(always)]
const fn sbox_inputs(w: u32, z: u32) -> [usize; 8] {
    [
        (w.rotate_left(4) & 0x3F) as usize,
        ((z >> 24) & 0x3F) as usize,
        ((w >> 20) & 0x3F) as usize,
        ((z >> 16) & 0x3F) as usize,
        ((w >> 12) & 0x3F) as usize,
        ((z >> 8) & 0x3F) as usize,
        ((w >> 4) & 0x3F) as usize,
        (z & 0x3F) as usize,
    ]
}

/// The 48 bits that [`sbox_inputs`] hands to S1..S8, concatenated in order.
const fn concat_groups(groups: [usize; 8]) -> u64 {
    let mut out = 0u64;
    let mut j = 0;
    while j < 8 {
        out = (out << 6) | groups[j] as u64;
        j += 1;
    }
    out
}

/// True if, with a zero round key, [`sbox_inputs`] of the rotated half gives the expansion E
/// of the half, on every single bit of it.
const fn extraction_matches_e() -> bool {
    let mut bit = 0;
    while bit < 32 {
        let r = 1u32 << bit;
        let x = r.rotate_left(1);
        if concat_groups(sbox_inputs(x, x)) != permute(r as u64, 32, &E) {
            return false;
        }
        bit += 1;
    }
    true
}

/// True if, with a zero half, [`sbox_inputs`] of a round key packed by [`pack_round_key`]
/// gives back the 48-bit round key, on every single bit of it: each key bit meets the
/// expanded bit it is XORed with in FIPS 46-3.
const fn round_key_meets_its_groups() -> bool {
    let mut bit = 0;
    while bit < 48 {
        let k48 = 1u64 << bit;
        let [k0, k1] = pack_round_key(k48);
        if concat_groups(sbox_inputs(k0, k1)) != k48 {
            return false;
        }
        bit += 1;
    }
    true
}

const _: () = assert!(permutations_match_tables());
const _: () = assert!(extraction_matches_e());
const _: () = assert!(round_key_meets_its_groups());

// ---------------------------------------------------------------------------------------
// The key schedule and the rounds.
// ---------------------------------------------------------------------------------------

/// The 16 round keys of one DES key, each packed by [`pack_round_key`] into one `u64` (first
/// word in the low half). Zeroized on drop; not `Clone`; `Debug` shows nothing of the keys.
pub(crate) struct DesKeySchedule {
    round_keys: [u64; 16],
}

impl Drop for DesKeySchedule {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

impl fmt::Debug for DesKeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesKeySchedule(<redacted>)")
    }
}

/// How far C and D are rotated left in total before each round: the running sum of
/// [`SHIFTS`].
const ROTATIONS: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut sum = 0;
    let mut i = 0;
    while i < 16 {
        sum += SHIFTS[i];
        t[i] = sum;
        i += 1;
    }
    t
};

// After 16 rounds C and D are back where they started, so no rotation exceeds 28.
const _: () = assert!(ROTATIONS[15] == 28);

/// The round key for C and D rotated left by `s` (1..=28), from C and D each stored twice
/// side by side (`cc` = C‖C, `dd` = D‖D, 56 bits each): there, C rotated left by `s` is the
/// 28 bits that end `28 - s` bits from the bottom, so the seven-bit pieces are plain shifts.
/// Called with constant `s` only, so every shift is a constant.
#[inline(always)]
fn round_key(cc: u64, dd: u64, s: u32) -> u64 {
    let t = &PC2_PIECES;
    let piece = |h: u64, m: u32| ((h >> (49 - s - 7 * m)) & 0x7F) as usize;
    (t[0][piece(cc, 0)] | t[1][piece(cc, 1)])
        | (t[2][piece(cc, 2)] | t[3][piece(cc, 3)])
        | (t[4][piece(dd, 0)] | t[5][piece(dd, 1)])
        | (t[6][piece(dd, 2)] | t[7][piece(dd, 3)])
}

/// The f function on a rotated half `x` with a round key packed by [`pack_round_key`]; the
/// result is in the rotated representation.
///
/// The eight table outputs occupy disjoint bits, so OR and XOR combine them alike; they are
/// combined as a balanced tree of alternating ORs and XORs so the compiler keeps it a tree
/// (three operations deep) instead of reassociating it into a chain of eight: f is on the
/// critical path of every round.
#[inline(always)]
fn f(x: u32, k: u64) -> u32 {
    let [i1, i2, i3, i4, i5, i6, i7, i8] = sbox_inputs(x ^ k as u32, x ^ (k >> 32) as u32);
    let s12 = SP[0][i1 & 0x3F] | SP[1][i2 & 0x3F];
    let s34 = SP[2][i3 & 0x3F] | SP[3][i4 & 0x3F];
    let s56 = SP[4][i5 & 0x3F] | SP[5][i6 & 0x3F];
    let s78 = SP[6][i7 & 0x3F] | SP[7][i8 & 0x3F];
    (s12 ^ s34) | (s56 ^ s78)
}

impl DesKeySchedule {
    /// The schedule of an 8-byte DES key. The parity bits (the last bit of each byte) are
    /// ignored, as PC-1 ignores them.
    pub(crate) fn new(key: &[u8; 8]) -> Self {
        let mut k = u64::from_be_bytes(*key);
        let mut cd = 0u64;
        let mut n = 0;
        while n < 16 {
            cd |= PC1_NIBBLE[n][((k >> (60 - 4 * n)) & 0xF) as usize];
            n += 1;
        }
        let (c, d) = (cd >> 28, cd & 0x0FFF_FFFF);
        let (mut cc, mut dd) = ((c << 28) | c, (d << 28) | d);
        // Written out so that each call's rotation is a constant.
        let r = ROTATIONS;
        let round_keys = [
            round_key(cc, dd, r[0]),
            round_key(cc, dd, r[1]),
            round_key(cc, dd, r[2]),
            round_key(cc, dd, r[3]),
            round_key(cc, dd, r[4]),
            round_key(cc, dd, r[5]),
            round_key(cc, dd, r[6]),
            round_key(cc, dd, r[7]),
            round_key(cc, dd, r[8]),
            round_key(cc, dd, r[9]),
            round_key(cc, dd, r[10]),
            round_key(cc, dd, r[11]),
            round_key(cc, dd, r[12]),
            round_key(cc, dd, r[13]),
            round_key(cc, dd, r[14]),
            round_key(cc, dd, r[15]),
        ];
        k.zeroize();
        cd.zeroize();
        cc.zeroize();
        dd.zeroize();
        Self { round_keys }
    }

    /// The 16 rounds with this schedule's keys in order, on rotated halves; leaves
    /// `(l, r)` = (L16, R16).
    #[inline(always)]
    fn encrypt_rounds(&self, l: &mut u32, r: &mut u32) {
        for [k1, k2] in self.round_keys.as_chunks::<2>().0 {
            *l ^= f(*r, *k1);
            *r ^= f(*l, *k2);
        }
    }

    /// The 16 rounds with this schedule's keys in reverse order (decryption).
    #[inline(always)]
    fn decrypt_rounds(&self, l: &mut u32, r: &mut u32) {
        for [k1, k2] in self.round_keys.as_chunks::<2>().0.iter().rev() {
            *l ^= f(*r, *k2);
            *r ^= f(*l, *k1);
        }
    }

    /// Encrypts one block in place.
    #[inline]
    pub(crate) fn encrypt(&self, block: &mut [u8; 8]) {
        let (mut l, mut r) = enter(block);
        self.encrypt_rounds(&mut l, &mut r);
        leave(l, r, block);
    }

    /// Decrypts one block in place.
    #[inline]
    pub(crate) fn decrypt(&self, block: &mut [u8; 8]) {
        let (mut l, mut r) = enter(block);
        self.decrypt_rounds(&mut l, &mut r);
        leave(l, r, block);
    }
}

/// Loads a block, applies IP and rotates both halves left by one bit.
#[inline(always)]
fn enter(block: &[u8; 8]) -> (u32, u32) {
    let [a0, a1, a2, a3, b0, b1, b2, b3] = *block;
    let (l, r) = initial_permutation(
        u32::from_be_bytes([a0, a1, a2, a3]),
        u32::from_be_bytes([b0, b1, b2, b3]),
    );
    (l.rotate_left(1), r.rotate_left(1))
}

/// Takes the rotated (L16, R16), undoes the rotation, applies IP⁻¹ to R16‖L16 and stores the
/// block.
#[inline(always)]
fn leave(l: u32, r: u32, block: &mut [u8; 8]) {
    let (hi, lo) = final_permutation(r.rotate_right(1), l.rotate_right(1));
    let [a0, a1, a2, a3] = hi.to_be_bytes();
    let [b0, b1, b2, b3] = lo.to_be_bytes();
    *block = [a0, a1, a2, a3, b0, b1, b2, b3];
}

/// Triple-DES EDE encryption, `E(k3, D(k2, E(k1, block)))`, with one IP and one IP⁻¹: after
/// each pass the halves are swapped, which is what IP⁻¹ followed by IP would leave.
/// Two-key triple DES passes the first schedule as `k3`.
#[inline]
pub(crate) fn ede_encrypt(
    k1: &DesKeySchedule,
    k2: &DesKeySchedule,
    k3: &DesKeySchedule,
    block: &mut [u8; 8],
) {
    let (mut l, mut r) = enter(block);
    k1.encrypt_rounds(&mut l, &mut r);
    k2.decrypt_rounds(&mut r, &mut l);
    k3.encrypt_rounds(&mut l, &mut r);
    leave(l, r, block);
}

/// Triple-DES EDE decryption, `D(k1, E(k2, D(k3, block)))`, with one IP and one IP⁻¹.
#[inline]
pub(crate) fn ede_decrypt(
    k1: &DesKeySchedule,
    k2: &DesKeySchedule,
    k3: &DesKeySchedule,
    block: &mut [u8; 8],
) {
    let (mut l, mut r) = enter(block);
    k3.decrypt_rounds(&mut l, &mut r);
    k2.encrypt_rounds(&mut r, &mut l);
    k1.decrypt_rounds(&mut l, &mut r);
    leave(l, r, block);
}

#[cfg(test)]
mod tests {
    use super::*;
    use des::cipher::{Array, BlockCipherEncrypt, KeyInit};

    fn b8(hex_str: &str) -> [u8; 8] {
        hex::decode(hex_str).unwrap().try_into().unwrap()
    }

    /// The RustCrypto single DES, to confirm that the published vectors were typed right.
    fn reference(key: &[u8; 8], block: [u8; 8]) -> [u8; 8] {
        let mut b = Array(block);
        des::Des::new(&Array(*key)).encrypt_block(&mut b);
        b.0
    }

    /// Encrypts `pt` under `key` to exactly `ct`, decrypts it back, and agrees with the
    /// reference implementation.
    fn check(key: &str, pt: &str, ct: &str) {
        let (key, pt, ct) = (b8(key), b8(pt), b8(ct));
        let ks = DesKeySchedule::new(&key);
        let mut block = pt;
        ks.encrypt(&mut block);
        assert_eq!(block, ct, "key {key:02X?} plaintext {pt:02X?}");
        ks.decrypt(&mut block);
        assert_eq!(block, pt, "key {key:02X?} ciphertext {ct:02X?}");
        assert_eq!(reference(&key, pt), ct, "the vector itself");
    }

    #[test]
    fn classic_vectors() {
        // "Now is t" under 0123456789ABCDEF.
        check("0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815");
        // The FIPS 46 worked example.
        check("133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405");
        check("0123456789ABCDEF", "0123456789ABCDE7", "C95744256A5ED31D");
    }

    /// NIST SP 800-17 / SP 800-20 variable-plaintext known-answer test (key 0101...01, one
    /// plaintext bit set).
    #[test]
    fn variable_plaintext() {
        let k = "0101010101010101";
        check(k, "8000000000000000", "95F8A5E5DD31D900");
        check(k, "4000000000000000", "DD7F121CA5015619");
        check(k, "2000000000000000", "2E8653104F3834EA");
        check(k, "1000000000000000", "4BD388FF6CD81D4F");
        check(k, "0800000000000000", "20B9E767B2FB1456");
        check(k, "0400000000000000", "55579380D77138EF");
        check(k, "0200000000000000", "6CC5DEFAAF04512F");
        check(k, "0100000000000000", "0D9F279BA5D87260");
        check(k, "0000000000000001", "166B40B44ABA4BD6");
    }

    /// NIST SP 800-17 / SP 800-20 variable-key known-answer test (plaintext zero, one key bit
    /// set besides the parity bits).
    #[test]
    fn variable_key() {
        let z = "0000000000000000";
        check("8001010101010101", z, "95A8D72813DAA94D");
        check("4001010101010101", z, "0EEC1487DD8C26D5");
        check("2001010101010101", z, "7AD16FFB79C45926");
        check("1001010101010101", z, "D3746294CA6A6CF3");
        check("0801010101010101", z, "809F5F873C1FD761");
        check("0401010101010101", z, "C02FAFFEC989D1FC");
        check("0201010101010101", z, "4615AA1D33E72F10");
    }

    #[test]
    fn parity_bits_are_ignored() {
        let key = b8("0123456789ABCDEF");
        let flipped = key.map(|b| b ^ 1);
        let pt = b8("4E6F772069732074");
        let (mut a, mut b) = (pt, pt);
        DesKeySchedule::new(&key).encrypt(&mut a);
        DesKeySchedule::new(&flipped).encrypt(&mut b);
        assert_eq!(a, b);
        assert_eq!(a, b8("3FA40E8A984D4815"));
    }

    fn ede(keys: [&str; 3], pt: &str, ct: &str) {
        let [k1, k2, k3] = keys.map(|k| DesKeySchedule::new(&b8(k)));
        let (pt, ct) = (b8(pt), b8(ct));
        let mut block = pt;
        ede_encrypt(&k1, &k2, &k3, &mut block);
        assert_eq!(block, ct, "keys {keys:?} plaintext {pt:02X?}");
        ede_decrypt(&k1, &k2, &k3, &mut block);
        assert_eq!(block, pt, "keys {keys:?} ciphertext {ct:02X?}");
    }

    /// The NIST SP 800-67 three-key example ("The qufck brown fox jump").
    #[test]
    fn three_key_ede() {
        let keys = ["0123456789ABCDEF", "23456789ABCDEF01", "456789ABCDEF0123"];
        ede(keys, "5468652071756663", "A826FD8CE53B855F");
        ede(keys, "6B2062726F776E20", "CCE21C8112256FE6");
        ede(keys, "666F78206A756D70", "68D5C05DD9B6B900");
    }

    /// Two-key EDE (K3 = K1): the usual test key's check value block, which the KCV tests of
    /// the crate also rely on.
    #[test]
    fn two_key_ede() {
        let (k1, k2) = ("0123456789ABCDEF", "FEDCBA9876543210");
        ede([k1, k2, k1], "0000000000000000", "08D7B4FB629D0885");
    }

    /// With K1 = K2 = K3 the middle decryption undoes the first encryption: single DES.
    #[test]
    fn ede_with_one_key_is_des() {
        let k = "0101010101010101";
        ede([k, k, k], "8000000000000000", "95F8A5E5DD31D900");
        let k = "0123456789ABCDEF";
        ede([k, k, k], "4E6F772069732074", "3FA40E8A984D4815");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ks = DesKeySchedule::new(&b8("0123456789ABCDEF"));
        assert_eq!(format!("{ks:?}"), "DesKeySchedule(<redacted>)");
    }

    /// The compile-time checks, also run as tests so that a failure names itself.
    #[test]
    fn permutation_shortcuts_match_the_fips_tables() {
        assert!(permutations_match_tables());
        assert!(extraction_matches_e());
        assert!(round_key_meets_its_groups());
    }

    /// The key schedule against the definition: rotate C and D, then PC-2 bit by bit.
    #[test]
    fn key_schedule_matches_the_definition() {
        let mut seed = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..200 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = seed.to_be_bytes();
            let ks = DesKeySchedule::new(&key);
            let cd = permute(seed, 64, &PC1);
            let rotate28 = |x: u64, s: u32| ((x << s) | (x >> (28 - s))) & 0x0FFF_FFFF;
            let (mut c, mut d) = (cd >> 28, cd & 0x0FFF_FFFF);
            for (round, shift) in SHIFTS.into_iter().enumerate() {
                c = rotate28(c, shift);
                d = rotate28(d, shift);
                let [k0, k1] = pack_round_key(permute((c << 28) | d, 56, &PC2));
                let expected = (u64::from(k1) << 32) | u64::from(k0);
                assert_eq!(ks.round_keys[round], expected, "round {round}");
            }
        }
    }
}
